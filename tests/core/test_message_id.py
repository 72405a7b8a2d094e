"""The Message-ID an import records: the first header line of that name, in any case."""

from __future__ import annotations

import pytest

from vault.mailformat import message_id_of


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"Message-ID: <a@b>\n\nbody", "<a@b>"),
        (b"Subject: x\nmessage-id:\n <folded@b>\n\n", "<folded@b>"),
        (b"X: 1\nMESSAGE-ID: no brackets\nMessage-Id: <second@d>\n\n", "<second@d>"),
        (b"X: 1\r\nMessage-ID: <crlf@n>\r\n\r\nbody", "<crlf@n>"),
        (b"X: 1\nmessage-id: <no-body@f>", "<no-body@f>"),
        (b"X-Message-ID: <not-this@x>\n\n", None),
        (b"Subject: x\n\nMessage-ID: <in-the-body@x>\n", None),
        (b"Message-ID:", None),
        (b"", None),
    ],
)
def test_the_first_message_id_header_of_the_header_block(data, expected):
    assert message_id_of(data) == expected
