"""Productions for review platforms: ``search --export --load-file concordance|edrm``.

The DAT file is read back with ``csv`` (field separator 0x14, qualifier þ) and the EDRM XML with
``xml.etree``, neither of them vault's code; every native's MD5, SHA-1 and SHA-256 are
recomputed, families checked against an independent MIME parse (the stdlib's ``policy.default``
walk), control numbers must be contiguous, and ``verify-export`` must catch any altered native,
text or load file."""

from __future__ import annotations

import csv
import email
import email.policy
import email.utils
import hashlib
import json
import xml.etree.ElementTree as ET
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.data import DATA
from vault.model import parse_time
from vault.testing.cli import vaultctl

REQUIRED = (
    "BEGDOC ENDDOC DOCID PARENTID ATTACHIDS BEGATTACH ENDATTACH CUSTODIAN ALLCUSTODIANS FROM TO CC BCC "
    "SUBJECT DATESENT DATERECEIVED FOLDER MESSAGEID FILENAME FILESIZE MD5HASH SHA1HASH SHA256HASH "
    "NATIVEPATH TEXTPATH"
).split()
UNSAFE_NAMES = ["../../evil.pdf", "CON.txt", 'a<b>:c"|?*.txt']


def run(home, *args, check=True):
    done = vaultctl(home, *args)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def crafted_messages(root: Path) -> Path:
    """Multipart messages with attachments, written by the stdlib (not by vault)."""
    root.mkdir()
    inner = EmailMessage()
    inner["From"] = "inner@example.org"
    inner["Subject"] = "the attached one"
    inner["Date"] = "Mon, 02 Feb 2026 10:00:00 -0500"
    inner.set_content("inside the attached message\n")
    inner.add_attachment(
        b"\x00\x01inner", maintype="application", subtype="octet-stream", filename="inner.bin"
    )

    msg = EmailMessage()
    msg["From"] = "Þóra <thora@example.is>"
    msg["To"] = "jane@example.org, Bob <bob@example.org>"
    msg["Cc"] = "cc@example.org"
    msg["Bcc"] = "hidden@example.org"
    msg["Subject"] = "Þetta er próf: the production þ test"
    msg["Date"] = "Tue, 03 Feb 2026 09:15:00 +0200"
    msg["Message-ID"] = "<production-1@example.is>"
    msg.set_content("Plain body line one.\nLine two.\n")
    msg.add_alternative("<html><body><p>HTML body</p><p>second</p></body></html>", subtype="html")
    msg.add_attachment("notes: þ\nsecond line\n", filename="notes.txt")
    for name in UNSAFE_NAMES:
        msg.add_attachment(
            f"payload of {name}".encode(), maintype="application", subtype="pdf", filename=name
        )
    msg.add_attachment(inner)
    (root / "production-1.eml").write_bytes(msg.as_bytes())

    plain = EmailMessage()
    plain["From"] = "solo@example.org"
    plain["To"] = "jane@example.org"
    plain["Subject"] = "production without attachments"
    plain["Date"] = "Wed, 04 Feb 2026 11:00:00 +0000"
    plain["Message-ID"] = "<production-2@example.org>"
    plain.set_content("nothing attached\n")
    (root / "production-2.eml").write_bytes(plain.as_bytes())
    return root


@pytest.fixture(scope="module")
def vault(spamassassin_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("loadfile")
    home = base / "vault"
    run(home, "init")
    run(home, "import", str(spamassassin_dir / "spam-1"), "--mailbox", "user/bob/Junk")
    run(home, "import", str(spamassassin_dir / "hard-ham-1"), "--mailbox", "user/alice/Archive")
    run(home, "import", str(spamassassin_dir / "hard-ham-1"), "--mailbox", "user/bob/INBOX")
    run(home, "import", str(DATA / "mail"), "--mailbox", "user/carol/INBOX", check=False)  # some are broken
    run(home, "import", str(crafted_messages(base / "crafted")), "--mailbox", "user/carol/Projects")
    return home


def export(home, target, query, *extra):
    return json.loads(run(home, "search", query, "--export", str(target), "--json", *extra).stdout)


def verify(home, path):
    return vaultctl(None, "verify-export", str(path), "--key", str(home / "keys" / "ledger.ed25519.pub"))


def read_dat(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM"
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\x14", quotechar="\u00fe", doublequote=True))
    header, body = rows[0], rows[1:]
    assert all(len(r) == len(header) for r in body)
    return [{k: v.replace("\u00ae", "\n") for k, v in zip(header, r)} for r in body]


def local(target: Path, windows_path: str) -> Path:
    assert not windows_path.startswith(("\\", "/")) and ".." not in windows_path.split("\\")
    return target / Path(*windows_path.split("\\"))


def check_documents(target: Path, docs: list[dict], prefix: str, start: int) -> None:
    """Control numbers contiguous, families consistent, every native's hashes right."""
    ids = [d["DOCID"] for d in docs]
    assert ids == [f"{prefix}{n:07d}" for n in range(start, start + len(docs))]
    by_id = {d["DOCID"]: d for d in docs}
    for d in docs:
        assert d["BEGDOC"] == d["ENDDOC"] == d["DOCID"]
        native = local(target, d["NATIVEPATH"]).read_bytes()
        assert int(d["FILESIZE"]) == len(native)
        assert d["MD5HASH"] == hashlib.md5(native).hexdigest()
        assert d["SHA1HASH"] == hashlib.sha1(native).hexdigest()
        assert d["SHA256HASH"] == hashlib.sha256(native).hexdigest()
        assert local(target, d["TEXTPATH"]).read_bytes().startswith(b"\xef\xbb\xbf")
        children = [c for c in d["ATTACHIDS"].split("; ") if c]
        assert children == [c["DOCID"] for c in docs if c["PARENTID"] == d["DOCID"]]
        if d["PARENTID"]:
            parent = by_id[d["PARENTID"]]
            assert parent["DOCID"] < d["DOCID"]
            assert (d["BEGATTACH"], d["ENDATTACH"]) == (parent["BEGATTACH"], parent["ENDATTACH"])
            assert d["CUSTODIAN"] == parent["CUSTODIAN"] and d["FOLDER"] == parent["FOLDER"]
        else:  # a family: the message and every document after it up to ENDATTACH
            family = [x for x in docs if d["DOCID"] <= x["DOCID"] <= d["ENDATTACH"]]
            assert d["BEGATTACH"] == d["DOCID"]
            assert all(x["PARENTID"] for x in family[1:])
            assert d["NATIVEPATH"].startswith("messages\\") and d["DATERECEIVED"]


def leaf_attachments(data: bytes) -> int:
    """What the stdlib calls attachments, counted its own way (nested messages not entered)."""

    def count(part, top=False) -> int:
        if part.get_content_type() == "message/rfc822" and not top:
            return 1
        if part.is_multipart():
            return sum(count(p) for p in part.iter_parts())
        named = part.get_content_disposition() == "attachment" or part.get_filename()
        return int(bool(named) or part.get_content_maintype() != "text")

    return count(email.message_from_bytes(data, policy=email.policy.default), top=True)


def test_concordance_production_reads_back_with_an_independent_reader(vault, tmp_path):
    target = tmp_path / "prod"
    report = export(vault, target, "has:attachment OR custodian:carol", "--load-file", "concordance",
                    "--prefix", "ABC", "--start", "100")  # fmt: skip
    docs = read_dat(target / "loadfile.dat")
    header = list(docs[0])
    assert all(name in header for name in REQUIRED)
    assert report["documents"] == len(docs) > report["items"] and report["load_file"] == "concordance"
    check_documents(target, docs, "ABC", 100)
    assert not list(target.glob("*.opt")) and not list(target.glob("*.OPT"))  # no images, no OPT

    manifest = json.loads((target / "manifest.json").read_text())
    items = {i["item"]: i for i in manifest["items"]}
    tops = [d for d in docs if not d["PARENTID"]]
    assert len(tops) == report["items"] == len(items)
    for d in tops:
        item = items[d["VAULTITEM"]]
        native = local(target, d["NATIVEPATH"]).read_bytes()
        assert d["NATIVEPATH"].replace("\\", "/") == item["file"] and d["SHA256HASH"] == item["sha256"]
        received = datetime.fromisoformat(d["DATERECEIVED"])
        assert received.tzinfo is not None and received == parse_time(item["internal_date"]).replace(
            microsecond=0
        )
        date = email.message_from_bytes(native, policy=email.policy.compat32)["Date"]
        if d["DATESENT"]:
            sent = datetime.fromisoformat(d["DATESENT"])
            assert sent.tzinfo is not None and sent == email.utils.parsedate_to_datetime(date)
        descendants = [x for x in docs if d["DOCID"] < x["DOCID"] <= d["ENDATTACH"]]
        assert len([x for x in descendants if x["PARENTID"] == d["DOCID"]]) == leaf_attachments(native)

    # the crafted message: every field, its attachments as children, names made safe
    msg = next(d for d in docs if d["MESSAGEID"] == "production-1@example.is")
    assert msg["SUBJECT"] == "Þetta er próf: the production þ test"  # þ survives its doubling
    assert msg["FROM"] == "Þóra <thora@example.is>" and "Bob <bob@example.org>" in msg["TO"]
    assert (msg["CC"], msg["BCC"], msg["CUSTODIAN"], msg["FOLDER"]) == (
        "cc@example.org", "hidden@example.org", "carol", "Projects")  # fmt: skip
    assert msg["DATESENT"] == "2026-02-03T07:15:00+00:00"
    kids = [d for d in docs if d["PARENTID"] == msg["DOCID"]]
    assert [k["FILENAME"] for k in kids] == ["notes.txt", *UNSAFE_NAMES, "message.eml"]
    for kid in kids:
        path = local(target, kid["NATIVEPATH"])
        assert path.parent == target / "natives" and path.name.startswith(kid["DOCID"] + "_")
        assert not set('<>:"|?*\\/') & set(path.name.removeprefix(kid["DOCID"] + "_"))
    assert local(target, kids[0]["NATIVEPATH"]).read_text(encoding="utf-8") == "notes: þ\nsecond line\n"
    assert "notes: þ" in local(target, kids[0]["TEXTPATH"]).read_text(encoding="utf-8-sig")
    attached = kids[-1]
    assert attached["SUBJECT"] == "the attached one" and attached["DOCTYPE"] == "Email"
    assert [d["FILENAME"] for d in docs if d["PARENTID"] == attached["DOCID"]] == ["inner.bin"]
    text = local(target, msg["TEXTPATH"]).read_text(encoding="utf-8-sig")
    assert "Subject: Þetta er próf" in text and "Plain body line one.\nLine two." in text
    assert "HTML body" not in text  # one version of a multipart/alternative body
    assert verify(vault, target).returncode == 0


def test_edrm_xml_has_the_same_documents_fields_and_files(vault, tmp_path):
    query = "custodian:carol OR subject:money"
    export(vault, tmp_path / "dat", query, "--load-file", "concordance", "--prefix", "X-", "--start", "7")
    docs = read_dat(tmp_path / "dat" / "loadfile.dat")
    target = tmp_path / "xml"
    report = export(vault, target, query, "--load-file", "edrm", "--prefix", "X-", "--start", "7")
    root = ET.parse(target / "loadfile.xml").getroot()
    assert (root.tag, root.get("MajorVersion"), root.get("MinorVersion")) == ("Root", "1", "2")
    elements = root.findall("./Batch/Documents/Document")
    assert len(elements) == len(docs) == report["documents"]
    xml_docs = []
    for el, dat in zip(elements, docs):
        tags = {t.get("TagName"): t.get("TagValue") for t in el.findall("./Tags/Tag")}
        assert el.get("DocID") == tags["DOCID"] == dat["DOCID"]
        assert {k: v for k, v in dat.items() if v} == tags
        types = {t.get("TagName"): t.get("TagDataType") for t in el.findall("./Tags/Tag")}
        assert types.get("DATESENT", "DateTime") == "DateTime" and types["FILESIZE"] == "LongInteger"
        for file_type, key in (("Native", "NATIVEPATH"), ("Text", "TEXTPATH")):
            (ext,) = el.findall(f"./Files/File[@FileType='{file_type}']/ExternalFile")
            where = ext.get("FilePath", "") + "\\" + ext.get("FileName", "")
            data = local(target, where).read_bytes()
            assert where == dat[key]
            assert (int(ext.get("FileSize", "")), ext.get("Hash")) == (
                len(data),
                hashlib.md5(data).hexdigest(),
            )
        assert el.findtext("./Locations/Location/Custodian") == dat["CUSTODIAN"]
        xml_docs.append({**dat, **tags})
    check_documents(target, [{k: d.get(k, "") for k in docs[0]} for d in xml_docs], "X-", 7)
    relations = [
        (r.get("Type"), r.get("ParentDocId"), r.get("ChildDocId")) for r in root.iter("Relationship")
    ]
    assert relations == [("Attachment", d["PARENTID"], d["DOCID"]) for d in docs if d["PARENTID"]]
    assert relations and verify(vault, target).returncode == 0


def test_dedupe_gives_one_document_per_content_with_all_custodians(vault, tmp_path):
    query = "custodian:alice OR custodian:bob"
    total = json.loads(run(vault, "search", query, "--json").stdout)["total"]
    target = tmp_path / "dedupe"
    export(vault, target, query, "--dedupe", "--load-file", "concordance")
    docs = read_dat(target / "loadfile.dat")
    tops = [d for d in docs if not d["PARENTID"]]
    assert len(tops) == len({d["SHA256HASH"] for d in tops}) == total
    both = [d for d in tops if d["ALLCUSTODIANS"] == "alice; bob"]
    assert both and all(d["CUSTODIAN"] in ("alice", "bob") for d in both)  # hard-ham-1 is in both
    assert all(d["ALLCUSTODIANS"] == "bob" for d in tops if d["FOLDER"] == "Junk")
    check_documents(target, docs, "", 1)


@pytest.mark.parametrize("tamper", ["remove a native", "alter a text", "alter the load file"])
def test_a_changed_production_fails_verify_export(vault, tmp_path, tamper):
    target = tmp_path / "prod"
    export(vault, target, "custodian:carol", "--load-file", "concordance")
    assert verify(vault, target).returncode == 0
    if tamper == "remove a native":
        sorted((target / "natives").iterdir())[0].unlink()
    elif tamper == "alter a text":
        text = sorted((target / "text").iterdir())[0]
        text.write_bytes(text.read_bytes() + b"edited")
    else:
        dat = target / "loadfile.dat"
        dat.write_bytes(dat.read_bytes().replace(b"carol", b"mallory", 1))
    done = verify(vault, target)
    assert done.returncode != 0 and "FAILED" in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--load-file", "edrm", "--format", "mbox"], "one native file per message"),
        (["--load-file", "edrm", "--prefix", "../x"], "bad control-number prefix"),
        (["--prefix", "ABC"], "number the documents of a --load-file"),
    ],
)
def test_bad_production_options_are_refused(vault, tmp_path, args, message):
    done = run(vault, "search", "custodian:carol", "--export", str(tmp_path / "x"), *args, check=False)
    assert done.returncode != 0 and message in done.stderr
    assert not (tmp_path / "x" / "messages").exists() or not any((tmp_path / "x" / "messages").iterdir())
