"""What the index reads out of a message: decoded headers, bodies in their charsets, HTML
reduced to text, attachment names; never an exception, whatever the bytes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.corpus import message_files
from vault.index.text import extract


def encoded_word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def test_every_edge_case_extracts(edge_cases_dir):
    files = message_files(edge_cases_dir)
    assert len(files) >= 100
    for path in files:
        fields = extract(path.read_bytes())
        assert fields.size == path.stat().st_size
        assert isinstance(fields.body, str) and isinstance(fields.subject, str)


def test_encoded_words_and_charsets():
    subject = "会議の議事録"
    body = "添付ファイルを確認してください。"
    msg = (
        f"From: {encoded_word('山田 太郎', 'iso-2022-jp')} <taro@example.jp>\r\n"
        f"To: hanako@example.jp\r\nSubject: {encoded_word(subject, 'shift_jis')}\r\n"
        "Date: Mon, 2 Feb 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
    ).encode() + body.encode("iso-2022-jp")
    fields = extract(msg)
    assert fields.subject == subject
    assert fields.from_ == "山田 太郎 <taro@example.jp>"
    assert body in fields.body
    assert fields.date == datetime(2026, 2, 2, 1, 0, tzinfo=UTC)


def test_utf7_body_html_and_attachment_names():
    utf7 = "Grüße aus Köln".encode("utf-7")
    msg = (
        b"From: a@example.org\r\nSubject: mixed\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=UTF-7\r\n\r\n" + utf7 + b"\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><style>p {color: red}</style><p>Caf&eacute; <b>menu</b></p></html>\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
    )
    fields = extract(msg)
    assert "Grüße aus Köln" in fields.body
    assert "Café menu" in " ".join(fields.body.split())
    assert "color" not in fields.body and "<b>" not in fields.body
    assert fields.filenames == ["Rechnung März.pdf"] and fields.has_attachment


def test_raw_8bit_headers_and_file_names():
    msg = (
        "Subject: Grüße =?utf-8?q?caf=C3=A9?= =?utf-8?b?5Lit5paH?= 東京\r\nFrom: Jörg <j@example.de>\r\n"
        'Content-Type: text/plain\r\nContent-Disposition: inline; filename="März.txt"\r\n\r\nx\r\n'
    ).encode()
    fields = extract(msg)
    assert fields.subject == "Grüße café中文 東京"  # no space between adjacent encoded words
    assert fields.from_ == "Jörg <j@example.de>"
    assert fields.filenames == ["März.txt"]
    assert extract("Subject: Grüße\r\n\r\n".encode("latin-1")).subject == "Grüße"


def test_malformed_encoded_words_are_kept_as_written():
    assert (
        extract(b"Subject: =?utf-8?B?###?= =?utf-8?x?y?= ok\r\n\r\n").subject
        == "=?utf-8?B?###?= =?utf-8?x?y?= ok"
    )


def test_html_quoted_angle_brackets_and_stray_less_than():
    msg = (
        b"Content-Type: text/html\r\n\r\n"
        b'<p title="a>hidden">shown &amp; seen</p>1 < 2<script>var secret;</script>'
        b'<a href="x"">after</a> a stray " quote <i>kept</i>'
    )
    words = extract(msg).body.split()
    assert words == ["shown", "&", "seen", "1", "<", "2", "after", "a", "stray", '"', "quote", "kept"]


def test_unknown_charset_and_bad_date_still_index():
    msg = (
        b"Subject: =?x-no-such-charset?Q?caf=E9?=\r\nDate: the day after tomorrow\r\n"
        b"Content-Type: text/plain; charset=x-klingon\r\n\r\nplain words\r\n"
    )
    fields = extract(msg)
    assert "caf" in fields.subject
    assert "plain words" in fields.body
    assert fields.date is None and any("Date" in p for p in fields.problems)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data):
    fields = extract(data)
    assert fields.size == len(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_random_headers_never_raise(text):
    extract(f"Subject: {text}\r\nFrom: {text}\r\nDate: {text}\r\n\r\n{text}".encode("utf-8", "surrogatepass"))
