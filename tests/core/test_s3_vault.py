"""The whole archive cycle with the blob store on S3 (real HTTP endpoint)."""

from __future__ import annotations

import json

import pytest

from tests.core.helpers import init_s3_vault, maildir_file, make_maildir, read_maildir, sha
from tests.fixtures.corpus import message_files
from vault.testing.cli import vaultctl_run


@pytest.mark.s3
def test_import_restore_verify_on_s3(tmp_path, spamassassin_dir, s3_bucket):
    endpoint, bucket = s3_bucket
    home = init_s3_vault(tmp_path / "vault", endpoint, bucket)
    files = message_files(spamassassin_dir / "spam-1")[:60]
    box = make_maildir(tmp_path / "Maildir", files)
    assert (
        json.loads(vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX", "--json").out)[
            "appended"
        ]
        == 60
    )
    assert not [p for p in (home / "blobs").rglob("*") if p.is_file()]  # nothing went to local disk
    keys = [o["Key"] for o in endpoint.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith("packs/") for k in keys)
    assert not any(k.startswith("index/") for k in keys)  # encrypted: each pack holds its index
    maildir_file(box, 0).unlink()
    vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX")
    r = vaultctl_run(home, "restore", "--mailbox", "user/jane/INBOX", "--to", f"maildir:{tmp_path / 'out'}")
    assert r.code == 0, r
    assert set(read_maildir(tmp_path / "out")) == {sha(f.read_bytes()) for f in files[1:]}
    assert vaultctl_run(home, "verify", "--read-data").code == 0
    # a blob removed from the bucket is noticed
    pack = next(k for k in keys if k.startswith("packs/"))
    endpoint.client().delete_object(Bucket=bucket, Key=pack)
    assert vaultctl_run(home, "verify").code == 3  # the ledger holds, some blobs are gone
