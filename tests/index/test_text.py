"""What the index reads out of a message: decoded headers, bodies in their charsets, HTML
reduced to text, attachment names; never an exception, whatever the bytes."""

from __future__ import annotations

import base64
import html
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.corpus import message_files
from vault.index.text import extract, html_text


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


# The tag pattern as first written (one alternation a step, the whole of it case-blind): the
# reference the faster one must match everywhere.
_REFERENCE_TAG = re.compile(
    r"<(script|style)\b.*?</\1\s*>|<!--.*?-->"
    r"|</?[A-Za-z!?](?>[^>\"'=]++|=\s*\"[^\"]{0,2000}\"|=\s*'[^']{0,2000}'|[^>])*+>",
    re.S | re.I,
)
_MARKUP = ["<", ">", "/", "!", "?", "--", "=", '="', '"', "'", " ", "\n", "a", "b", "p title", "x"]
_MARKUP += [
    "script",
    "SCRIPT",
    "Style",
    "<script>",
    "<SCRIPT a='>'>",
    "<Style>",
    "s",
    "<!--",
    "-->",
    "</script >",
    "</STYLE\n>",
    "K",
    "\u212a",
    "\u017f",
]
_MARKUP += ["\u0130", "\u0131", "é", "&amp;", "'>'", '">"']


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_MARKUP), max_size=40), st.integers(0, 2100))
def test_html_text_strips_what_the_reference_pattern_strips(pieces, long_value):
    markup = "".join(pieces)
    for text in (markup, markup.replace('="', '="' + "v" * long_value)):
        assert html_text(text) == html.unescape(_REFERENCE_TAG.sub(" ", text))


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


def _same_as_full_parse(data: bytes) -> None:
    fast, full = extract(data), extract(data, fast=False)
    assert fast == full, data[:300]


def test_fast_path_reads_every_corpus_message_as_the_full_parse(spamassassin_dir, edge_cases_dir):
    files = message_files(spamassassin_dir) + message_files(edge_cases_dir)
    assert len(files) >= 3000
    for path in files:
        _same_as_full_parse(path.read_bytes())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n",
        b"\n\nbody only",
        b"Subject: no body",
        b"Subject: no blank line\nthis line is no header\n\nbody\n",
        b"Subject: bare\rCR\n\nbody\n",
        b"Subject: x\r\n continued\r\n\tagain\r\n\r\nbody\r\n",
        b"From someone Mon Jan  1 00:00:00 2001\nSubject: envelope\n\nbody\n",
        b" leading continuation\nSubject: x\n\nbody\n",
        b"Subject: x\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner body\n",
        b"Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nnot closed",
        b"Content-Type: text/plain; name*0*=utf-8''a%C3%A4; name*1=.txt\n\nbody",
        b'Content-Disposition: inline; FILENAME="x.txt"\nContent-Transfer-Encoding: base64\n\nYWJj\n',
        b"Subject: \xff\xfe raw\nContent-Type: text/html; charset=latin-1\n\n<p>caf\xe9</p>",
        b"From x\rSubject: after a bare CR\n\nbody\n",
        b"Content-Type: multipart/mixed; boundary=b\n\npre\n--b\n\none\n--b \t\nContent-Type: text/html\n\n"
        b"<b>two</b>\r\n--b--\nepilogue\n--b\n\nnot a part\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\nafter doubled delimiters\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b--\nclose swallowed\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nno close\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b--\nclose first\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--bx\n--b-\n\nno delimiter\n",
        b"Content-Type: multipart/mixed\n\n--b\n\nno boundary\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64\n\n--b\n\nx\n--b--\n",
        b"Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: digest\n\nx\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nSubject: in\n\nx\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/alternative; "
        b'boundary="b--"\r\n\r\n--b----\r\n--b--\r\ninner delimiter, outer close\r\n--b--\r\n',
        b"Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=i\n\n"
        b"--i\n\ninner one\n--i\nContent-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9\n--i--\n\n--o\n"
        b'Content-Disposition: attachment; filename="a.txt"\nContent-Transfer-Encoding: base64\n\nYWJj\n--o--\n',
        b"Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=i\n\n"
        b"--i\n\nthe outer boundary ends the inner part\n--o\n\nlast\n--o--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\rContent-Type: text/plain\r\rbare CRs\r--b--\r",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\r--b\n\ntwo\r\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nno blank line: a body line\n\nx\n--b--\n",
        b'Content-Type: multipart/mixed; boundary="a\n b"\n\n--a\n b\n\nx\n--a\n b--\n',
    ],
)
def test_fast_path_edge_cases_read_as_the_full_parse(data):
    _same_as_full_parse(data)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"Subject: s",
                b"X",
                b" cont",
                b"",
                b"\r",
                b"From a",
                b"Content-Type: text/html",
                b"Content-Type: multipart/mixed; boundary=q",
                b"--q",
                b"--q--",
                b"body \xe9",
            ]
        ),
        max_size=12,
    ),
    st.sampled_from([b"\n", b"\r\n"]),
)
def test_fast_path_random_shapes_read_as_the_full_parse(lines, end):
    _same_as_full_parse(end.join(lines))


_BOUNDARIES = ["q", "q--", "r", "q r"]
_LEAF_FIELDS = [
    "Content-Type: text/plain",
    "Content-Type: text/html; charset=utf-8",
    "Content-Type: text/plain; charset=iso-8859-1",
    "Content-Type: application/octet-stream; name=b.bin",
    "Content-Transfer-Encoding: base64",
    "Content-Transfer-Encoding: quoted-printable",
    "Content-Disposition: attachment; filename=a.txt",
    "Content-Disposition: inline",
    "Subject: part",
    "X-Other: x",
    "X",
]
_MULTIPART_FIELDS = [
    "Content-Transfer-Encoding: 7bit",
    "Content-Transfer-Encoding: base64",
    "Subject: s",
    "X-Other: x",
]
_BODY_LINES = [
    "YWJj",
    "caf=E9 <b>bold</b>",
    "body \udce9",
    "",
    " ",
    "--",
    "--q-",
    "--qx",
    "--q--x",
    "--r ",
    "--q\t",
]


@st.composite
def _mime(draw, depth=0):
    """A message's lines, multipart or not, well formed or nearly (the shapes a real
    multipart takes, and its common faults)."""
    if depth == 0 or (depth < 3 and draw(st.integers(0, 2)) == 2):
        boundary = draw(st.sampled_from(_BOUNDARIES))
        kind = draw(st.sampled_from(["mixed", "alternative", "related"]))
        lines = [f'Content-Type: multipart/{kind}; boundary="{boundary}"']
        lines += draw(st.lists(st.sampled_from(_MULTIPART_FIELDS), max_size=1))
        lines += [""] + draw(st.lists(st.sampled_from(_BODY_LINES), max_size=2))  # preamble
        for _ in range(draw(st.sampled_from([1, 2, 3, 0]))):
            lines += [f"--{boundary}"] * draw(st.sampled_from([1, 1, 1, 2]))
            lines += draw(_mime(depth + 1))
        if draw(st.integers(0, 5)) < 5:
            lines.append(f"--{boundary}--" + draw(st.sampled_from(["", " ", "\t "])))
        return lines + draw(st.lists(st.sampled_from(_BODY_LINES), max_size=2))  # epilogue
    fields = draw(st.lists(st.sampled_from(_LEAF_FIELDS), max_size=3))
    return [
        *fields,
        *draw(st.sampled_from([[""]] * 5 + [[]])),
        *draw(st.lists(st.sampled_from(_BODY_LINES), max_size=3)),
    ]


@settings(max_examples=500, deadline=None)
@given(
    _mime(),
    st.one_of(
        st.sampled_from([["\n"], ["\r\n"]]),  # one line end throughout, or a mixture
        st.lists(st.sampled_from(["\n", "\r\n"]), min_size=1, max_size=40),
        st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=40),
    ),
)
def test_fast_path_random_multiparts_read_as_the_full_parse(lines, ends):
    """Multipart messages of random shapes (nested, delimiters doubled or missing, a boundary
    a prefix of another, transport padding, line ends of every kind, mixed) read as the full
    parse reads them."""
    text = "".join(line + ends[i % len(ends)] for i, line in enumerate(lines))
    _same_as_full_parse(text.encode("ascii", "surrogateescape"))
