"""Chinese, Japanese and Korean words are findable: in subjects, bodies, names and attachment
names, in the charsets mail uses for them (ISO-2022-JP, Shift_JIS, UTF-8, GB2312, GBK, EUC-KR).

Messages are built with the standard library's email package, imported with ``vaultctl import``
and searched with ``vaultctl search``. Every expected result is computed here from the text as
the standard library decodes it (email.policy.default): a CJK word is found where it occurs as a
substring, as written, and nowhere its characters occur only apart."""

from __future__ import annotations

import email
import email.policy
import json
import re
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr
from pathlib import Path

import pytest
import tantivy
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.helpers import write_maildir
from vault.index import schema as index_schema
from vault.index.words import has_cjk, index_tokens, query_terms
from vault.testing.cli import vaultctl_run


def message(
    charset: str,
    sender: tuple[str, str],
    subject: str,
    body: str,
    n: int,
    attachment: tuple[str, str] | None = None,
    to: str = "review@example.org",
) -> bytes:
    """A message whose headers and body are in ``charset``; the attachment name as RFC 2231
    (``("2231", name)``) or as an RFC 2047 encoded word (``("2047", name)``)."""
    text = MIMEText(body, "plain", charset)
    msg: MIMEBase = text
    if attachment:
        msg = MIMEMultipart()
        msg.attach(text)
        part = MIMEApplication(b"%PDF-1.4 not really", "octet-stream")
        how, name = attachment
        if how == "2231":
            part.add_header("Content-Disposition", "attachment", filename=(charset, "", name))
        else:
            part.add_header("Content-Disposition", "attachment", filename=Header(name, charset).encode())
        msg.attach(part)
    msg["From"] = formataddr(sender, charset=charset)
    msg["To"] = to
    # typeshed types the value as str; email.header documents a Header as a header value too
    msg["Subject"] = Header(subject, charset)  # type: ignore[assignment]
    msg["Message-ID"] = f"<cjk{n}@example.org>"
    msg["Date"] = f"Mon, {n + 1} Feb 2026 10:00:00 +0900"
    return msg.as_bytes()


MESSAGES = {
    "jp_iso": message(
        "iso-2022-jp",
        ("山田 太郎", "taro@example.jp"),
        "明日の会議について",
        "会議の資料を添付します。ご確認ください。",
        0,
        ("2231", "議事録.pdf"),
    ),
    "jp_utf8": message(
        "utf-8",
        ("Alice Smith", "alice@example.org"),
        "会議室の予約",
        "来週の打ち合わせは第二会議室で行います。Project X 会議 agenda attached.",
        1,
        ("2047", "予定表.xlsx"),
    ),
    "jp_sjis_decoy": message(
        "shift_jis",
        ("佐藤 花子", "hanako@example.jp"),
        "会社の議題",
        "議会と会 議の話。議論の記録ではありません",
        2,
    ),
    "zh_gb": message(
        "gb2312",
        ("Alice Smith", "alice@example.org"),
        "关于明天的会议",
        "请查看附件中的会议记录。",
        3,
        ("2231", "会议记录.doc"),
    ),
    "zh_gbk": message(
        "gbk",
        ("王小明", "wang@example.cn"),
        "項目預算 朱镕基",  # 镕, traditional: GBK, not GB2312
        "預算表已更新。",
        4,
    ),
    "zh_decoy": message("gb2312", ("李四", "li@example.cn"), "会员的建议", "议程与会员名单。", 5),
    "kr": message(
        "euc-kr",
        ("김철수", "kim@example.kr"),
        "내일 회의 일정",
        "회의는 오후 3시에 시작합니다.",
        6,
        ("2231", "회의록.hwp"),
    ),
    "kr_decoy": message("euc-kr", ("박영희", "park@example.kr"), "의회 소식", "회사 의견을 보냅니다.", 7),
    "latin": message(
        "us-ascii",
        ("Bob", "bob@example.org"),
        "Meeting agenda",
        "Project X meeting: the agenda is attached.",
        8,
    ),
}


class Decoded:
    """One message's fields as the standard library decodes them."""

    def __init__(self, data: bytes):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        self.fields = {
            "subject": str(msg["subject"] or ""),
            "from": " ".join(str(v) for v in msg.get_all("from") or []),
            "to": " ".join(str(v) for v in msg.get_all("to") or []),
            "body": " ".join(
                p.get_content()
                for p in msg.walk()
                if p.get_content_maintype() == "text" and p.get_content_disposition() != "attachment"
            ),
            "filename": " ".join(name for p in msg.walk() if (name := p.get_filename())),
        }

    def text(self, field: str | None) -> str:
        return " ".join(self.fields.values()) if field is None else self.fields[field]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("cjk")
    box = write_maildir(work / "box", {f"{name}:2,S": data for name, data in MESSAGES.items()})
    home = work / "vault"
    assert vaultctl_run(home, "init").code == 0
    r = vaultctl_run(home, "import", str(box), "--mailbox", "user/review/INBOX")
    assert r.code == 0, r
    return home


DECODED = {name: Decoded(data) for name, data in MESSAGES.items()}
BLOBS: dict[str, str] = {}  # blob id -> message name, filled on first use


def search(home: Path, query: str) -> set[str]:
    r = vaultctl_run(home, "search", query, "--json", "--limit", "1000")
    assert r.code == 0, r
    out = json.loads(r.out)
    if not BLOBS:
        import hashlib

        BLOBS.update({"sha256:" + hashlib.sha256(d).hexdigest(): n for n, d in MESSAGES.items()})
    names = {BLOBS[h["blob"]] for h in out["hits"]}
    assert out["total"] == len(names)
    return names


def having(word: str, field: str | None = None) -> set[str]:
    return {name for name, d in DECODED.items() if word in d.text(field)}


def test_the_standard_library_reads_what_was_written():
    assert DECODED["jp_iso"].fields["subject"] == "明日の会議について"
    assert "山田 太郎" in DECODED["jp_iso"].fields["from"]
    assert DECODED["jp_iso"].fields["filename"] == "議事録.pdf"
    assert DECODED["jp_utf8"].fields["filename"] == "予定表.xlsx"
    assert "镕" in DECODED["zh_gbk"].fields["subject"]
    assert DECODED["kr"].fields["filename"] == "회의록.hwp"
    with pytest.raises(UnicodeEncodeError):
        "镕".encode("gb2312")


@pytest.mark.parametrize(
    "word",
    [
        "会議",
        "会议",
        "회의",
        "会議室",
        "打ち合わせ",
        "議事録",
        "予定表",
        "会议记录",
        "记录",
        "镕基",
        "朱镕基",
        "預算",
        "山田",
        "太郎",
        "김철수",
        "의회",
        "会",
        "議",
        "의",
    ],
)
@pytest.mark.parametrize("field", [None, "subject", "body", "from", "filename"])
def test_cjk_words_found_where_they_stand_together(home, word, field):
    expected = having(word, field)
    query = word if field is None else f"{field}:{word}"
    assert search(home, query) == expected, query


def test_characters_only_apart_are_not_a_match(home):
    for word, decoys in (("会議", {"jp_sjis_decoy"}), ("会议", {"zh_decoy"}), ("회의", {"kr_decoy"})):
        for decoy in decoys:  # every character is there, never side by side in this order
            text = DECODED[decoy].text(None)
            assert set(word) <= set(text) and word not in text
        found = search(home, word)
        assert found and not found & decoys, word
        assert found == having(word)
    assert search(home, "議会") == having("議会") == {"jp_sjis_decoy"}


def test_mixed_with_operators_and_latin(home):
    assert (
        search(home, "subject:会議 from:alice")
        == {n for n in having("会議", "subject") if "alice" in DECODED[n].fields["from"]}
        == {"jp_utf8"}
    )
    assert search(home, "会議 -from:alice") == having("会議") - {"jp_utf8", "zh_gb"} == {"jp_iso"}
    assert search(home, "from:alice") == {"jp_utf8", "zh_gb"}
    assert search(home, "会议 OR 회의") == having("会议") | having("회의")
    assert search(home, "agenda") == {"jp_utf8", "latin"}
    assert search(home, "subject:meeting") == {"latin"}


def test_cjk_phrases(home):
    assert search(home, '"会議の資料"') == having("会議の資料") == {"jp_iso"}
    assert search(home, 'body:"会議室で行います"') == having("会議室で行います", "body") == {"jp_utf8"}
    # a phrase across scripts: the words in order, anything but letters and digits between them
    pattern = re.compile(r"(?i)(?<![^\W_])project[\W_]+x[\W_]*会議")
    expected = {n for n, d in DECODED.items() if pattern.search(d.text("body"))}
    assert search(home, 'body:"project x 会議"') == expected == {"jp_utf8"}
    assert search(home, '"会議 資料"') == {
        n for n, d in DECODED.items() if re.search(r"会議[\W_]*資料", d.text(None))
    }
    assert search(home, '"会議の資料" OR "会议记录"') == having("会議の資料") | having("会议记录")


def test_tokens():
    assert query_terms("明日の会議について abc") == [
        (0, "明日"),
        (1, "日の"),
        (2, "の会"),
        (3, "会議"),
        (4, "議に"),
        (5, "につ"),
        (6, "つい"),
        (7, "いて"),
        (9, "abc"),
    ]
    assert query_terms("会") == [(0, "会")]
    assert query_terms("x会議Y") == [(0, "x"), (1, "会議"), (3, "y")]
    assert index_tokens("会議は ok") == [
        ("会", 0, 0, 1),
        ("会議", 0, 0, 2),
        ("議", 1, 1, 2),
        ("議は", 1, 1, 3),
        ("は", 2, 2, 3),
        ("ok", 3, 4, 6),
    ]
    assert has_cjk("東京") and has_cjk("회의") and has_cjk("カタカナ") and not has_cjk("Grüße, ça va? ½ Ω")


DEFAULT = (
    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    .filter(tantivy.Filter.remove_long(40))
    .filter(tantivy.Filter.lowercase())
    .build()
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="abcXYZ019äöüßÉçøΩ _-.,@'\"", max_size=12),
            st.just("x" * 39),
            st.just("y" * 40),
            st.just("é" * 20),
        ),
        max_size=12,
    ).map(" ".join)
)
def test_latin_words_are_the_default_tokenizers(text):
    """Without CJK, the query's terms and positions are those Tantivy's default tokenizer gives."""
    assert not has_cjk(text)
    assert query_terms(text) == [(t.position, t.text) for t in DEFAULT.pre_tokenize(text).tokens]


def test_an_index_split_the_old_way_is_rebuilt(home, tmp_path, monkeypatch):
    """An index whose text was tokenised by the default tokenizer alone (whole CJK sentences as
    one token) is refused by readers and rebuilt by the vault's writer."""
    import shutil

    from vault.archive import Vault
    from vault.config import Config
    from vault.index import indexer

    copy = tmp_path / "vault"
    shutil.copytree(home, copy)
    config = Config.load(copy)
    shutil.rmtree(config.path("index"))
    with monkeypatch.context() as m:  # the index as the previous version built it
        m.setattr(index_schema, "TOKENIZER", "default")
        m.setattr(index_schema, "register", lambda index: None)
        m.setattr(indexer, "has_cjk", lambda text: False)
        Vault.open(config, writer=True).close()
        old = indexer.SearchIndex.open(config.path("index"))
        whole = tantivy.Query.term_query(old.schema, "subject", "明日の会議について")
        # tantivy's stub lacks SearchResult.count, which the library has
        found = old.index.searcher().search(whole, 10).count  # type: ignore[attr-defined]
        assert found == 1  # the sentence was one token
        assert search(copy, "会議") == {"jp_utf8"}  # only where spaces set the word apart
    r = vaultctl_run(copy, "search", "会議")
    assert r.code == 1 and "built by another version of vault" in r.err
    Vault.open(config, writer=True).close()  # any writer: the vault's broker, an import, rebuild
    assert search(copy, "会議") == having("会議")
