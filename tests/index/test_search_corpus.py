"""Search over the SpamAssassin corpus imported into a real vault. Every expected result set is
computed here from the message files with the standard library's own parser (email.policy.default),
not from the index."""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import hashlib
import html.parser
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fixtures.corpus import message_files
from vault.archive import Vault
from vault.config import Config
from vault.index.indexer import SearchIndex
from vault.testing import cli

WORD = re.compile(r"[^\W_]+")


def vaultctl(home, *args):
    done = cli.vaultctl(home, *args)
    assert done.returncode == 0, done.stderr
    return done


class Known:
    """One corpus message as the standard library reads it."""

    def __init__(self, path: Path):
        self.data = path.read_bytes()
        self.blob = "sha256:" + hashlib.sha256(self.data).hexdigest()
        self.msg = email.message_from_bytes(self.data, policy=email.policy.default)
        self.raw = email.message_from_bytes(self.data)

    def header_words(self, name: str) -> list[str]:
        """Words of the header as written (encoded words decoded), not as re-rendered by the
        address parser, which turns "To: <Undisclosed-Recipient:;@example.org>" into a group."""
        words = []
        for value in self.raw.get_all(name) or []:
            try:
                text = str(email.header.make_header(email.header.decode_header(value)))
            except Exception:
                text = str(value)
            words += [w.lower() for w in WORD.findall(text)]
        return words

    def body_words(self) -> list[str]:
        """Words of the inline text parts; HTML read with html.parser, script and style left out."""
        words = []
        for part in self.msg.walk():
            if (
                part.is_multipart()
                or part.get_content_maintype() != "text"
                or part.get_content_disposition() == "attachment"
            ):
                continue
            try:
                text = part.get_content()
            except Exception:
                raw = part.get_payload(decode=True) or b""
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            if part.get_content_subtype() == "html":
                text = HtmlWords.text(text)
            words += [w.lower() for w in WORD.findall(text)]
        return words

    def filenames(self) -> list[str]:
        try:
            return [
                w.lower()
                for part in self.msg.walk()
                if not part.is_multipart() and (name := part.get_filename())
                for w in WORD.findall(name)
            ]
        except Exception:
            return []

    def has_attachment(self) -> bool:
        try:
            return any(part.get_filename() for part in self.msg.walk() if not part.is_multipart())
        except Exception:
            return False

    def date(self):
        try:
            when = email.utils.parsedate_to_datetime(self.msg["date"])
        except Exception:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)


class HtmlWords(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("script", "style")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.chunks.append(data)

    @classmethod
    def text(cls, markup: str) -> str:
        parser = cls()
        parser.feed(markup)
        parser.close()
        return " ".join(parser.chunks)


def contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


@pytest.fixture(scope="module")
def corpus(spamassassin_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("search") / "vault"
    vaultctl(home, "init")
    folders = {
        "easy-ham-1": ["user/alice"],
        "spam-1": ["user/bob/Junk"],
        "hard-ham-1": ["user/alice/Archive", "user/bob"],
    }
    known: dict[str, list[Known]] = {}
    for source, mailboxes in folders.items():
        for mailbox in mailboxes:
            vaultctl(home, "import", str(spamassassin_dir / source), "--mailbox", mailbox)
        known[source] = [Known(p) for p in message_files(spamassassin_dir / source)]
    config = Config.load(home)
    vault = Vault.open(config)
    index = SearchIndex.open(config.path("index"))
    yield home, vault, index, known
    vault.close()


def found(corpus, query: str, custodian: str | None = None) -> set[str]:
    _, vault, index, _ = corpus
    hits = index.search(query, vault.catalog, custodian=custodian, limit=100_000)
    assert index.count(query, vault.catalog, custodian) == len(hits)
    return {h.blob for h in hits}


def every(corpus, *sources):
    return [k for s in (sources or corpus[3].keys()) for k in corpus[3][s]]


def test_one_document_per_content(corpus):
    _, _, index, _ = corpus
    assert len(index) == len({k.blob for k in every(corpus)})


def test_subject_word(corpus):
    expected = {k.blob for k in every(corpus) if "money" in k.header_words("subject")}
    assert len(expected) > 10
    assert found(corpus, "subject:money") == expected


def test_from_address_as_phrase(corpus):
    expected = {k.blob for k in every(corpus) if contains(k.header_words("from"), ["yahoo", "com"])}
    assert len(expected) > 5
    assert found(corpus, "from:yahoo.com") == expected


def test_body_word_and_bare_phrase(corpus):
    expected = {k.blob for k in every(corpus) if "unsubscribe" in k.body_words()}
    assert len(expected) > 100
    assert found(corpus, "body:unsubscribe") == expected
    phrase = ["mailing", "list"]
    fields = ("from", "to", "cc", "subject")
    expected = {
        k.blob
        for k in every(corpus)
        if contains(k.body_words(), phrase)
        or contains(k.filenames(), phrase)
        or any(contains(k.header_words(f), phrase) for f in fields)
    }
    assert len(expected) > 50
    assert found(corpus, '"mailing list"') == expected
    assert found(corpus, "mailing list") >= expected  # both words, anywhere


def test_to_cc_and_filename(corpus):
    for field in ("to", "cc"):
        expected = {k.blob for k in every(corpus) if "spamassassin" in k.header_words(field)}
        assert len(expected) > 10, field
        assert found(corpus, f"{field}:spamassassin") == expected
    named = [k for k in every(corpus) if k.filenames()]
    word = max(
        {w for k in named for w in k.filenames()}, key=lambda w: sum(w in k.filenames() for k in named)
    )
    expected = {k.blob for k in named if word in k.filenames()}
    assert found(corpus, f"filename:{word}") == expected


def test_has_attachment(corpus):
    expected = {k.blob for k in every(corpus) if k.has_attachment()}
    assert len(expected) > 10
    assert found(corpus, "has:attachment") == expected


def test_size(corpus):
    expected = {k.blob for k in every(corpus) if len(k.data) > 20 * 1024}
    assert found(corpus, "size:>20K") == expected


def test_sentbefore_and_sentafter_are_exact(corpus):
    cut = datetime(2002, 8, 1, tzinfo=UTC)
    dated = [k for k in every(corpus) if k.date() is not None]
    before = {k.blob for k in dated if k.date() < cut}
    after = {k.blob for k in dated if k.date() >= cut}
    assert before and after
    assert found(corpus, "sentbefore:2002-08-01") == before
    assert found(corpus, "sentafter:2002-08-01") == after
    # the same instant written in another zone gives the same answer
    assert found(corpus, "sentbefore:2002-08-01T02:00:00+02:00") == before


def test_custodian_folder_and_boolean(corpus):
    spam, hard, easy = ({k.blob for k in every(corpus, s)} for s in ("spam-1", "hard-ham-1", "easy-ham-1"))
    assert found(corpus, "custodian:bob size:>0") == spam | hard
    assert found(corpus, "in:Archive size:>0") == hard
    assert found(corpus, "in:INBOX size:>0") == easy | hard  # alice's and bob's INBOX
    assert found(corpus, "custodian:alice -in:Archive size:>0") == easy - hard
    money = {k.blob for k in every(corpus) if "money" in k.header_words("subject")}
    assert found(corpus, "subject:money", custodian="bob") == money & (spam | hard)
    free = {k.blob for k in every(corpus) if "free" in k.header_words("subject")}
    assert found(corpus, "subject:money OR subject:free") == money | free
    assert found(corpus, "subject:free NOT subject:money") == free - money


def test_messageid(corpus):
    k = every(corpus, "easy-ham-1")[7]
    mid = k.msg["message-id"].strip().strip("<>")
    assert found(corpus, f"messageid:<{mid}>") == {
        x.blob for x in every(corpus) if (x.msg["message-id"] or "").strip().strip("<>") == mid
    }


def test_cli_table_json_and_bad_query(corpus):
    home = corpus[0]
    out = json.loads(
        vaultctl(home, "search", "subject:money", "--custodian", "bob", "--json", "--limit", "3").stdout
    )
    assert len(out["hits"]) == 3 and out["total"] >= 3
    assert all("bob" in h["custodians"] for h in out["hits"])
    dates = [h["date"] for h in out["hits"]]
    assert dates == sorted(dates, reverse=True)  # newest first
    table = vaultctl(home, "search", "subject:money").stdout
    assert "shown" in table
    bad = cli.vaultctl(home, "search", "(money")
    assert bad.returncode != 0 and 'position 1: unclosed "("' in bad.stderr
    audit = json.loads(vaultctl(home, "audit", "--json").stdout)
    assert [e["data"]["query"] for e in audit if e["kind"] == "search.run"] == [
        "subject:money",
        "subject:money",
    ]
