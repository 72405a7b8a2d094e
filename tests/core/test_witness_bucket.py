"""Checkpoints in the S3 bucket under Object Lock (real HTTP endpoint, moto_server): each
commit's checkpoint is locked where the home's own credentials cannot remove it; a ledger
rolled back with the home's copy, or rewritten and re-signed, is caught from the bucket."""

from __future__ import annotations

import json
import shutil

import pytest
from botocore.exceptions import ClientError

from tests.core.helpers import init_vault, make_maildir, set_maildir_flags
from tests.core.test_witness import caught, first_item, ledger_size, rewrite
from tests.fixtures.corpus import message_files
from vault.config import Config
from vault.store.ledger import Ledger
from vault.testing.cli import vaultctl_run


@pytest.fixture
def s3_home(tmp_path, spamassassin_dir, s3_endpoint):
    bucket = s3_endpoint.new_bucket(object_lock=True)
    home = init_vault(
        tmp_path / "vault",
        **{
            "store.backend": "s3",
            "s3.endpoint_url": s3_endpoint.url,
            "s3.bucket": bucket,
            "s3.access_key_id": s3_endpoint.access_key_id,
            "s3.secret_access_key": s3_endpoint.secret_access_key,
            "witness.lock_days": 1,
        },
    )
    config = home / "config.toml"
    config.write_text(config.read_text().replace("\nbucket = false\n", "\nbucket = true\n"))
    box = make_maildir(tmp_path / "Maildir", message_files(spamassassin_dir / "spam-1")[:12])
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    older = tmp_path / "older"
    for part in ("ledger", "witness"):
        shutil.copytree(home / part, older / part)
    set_maildir_flags(box, 2, ["\\Seen"])
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/jane/INBOX").code == 0
    return home, older, s3_endpoint.client(), bucket


def checkpoint_objects(client, bucket):
    return [v for v in client.list_object_versions(Bucket=bucket, Prefix="checkpoints/").get("Versions", [])]


@pytest.mark.s3
def test_each_checkpoint_is_locked_in_the_bucket(s3_home):
    home, _, client, bucket = s3_home
    size = ledger_size(home)
    objects = checkpoint_objects(client, bucket)
    newest = max(objects, key=lambda v: v["Key"])
    assert newest["Key"].startswith(f"checkpoints/{size:012d}-")
    head = client.head_object(Bucket=bucket, Key=newest["Key"])
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"]
    note = client.get_object(Bucket=bucket, Key=newest["Key"])["Body"].read()
    assert note == (home / "ledger" / "checkpoints" / f"{size:012d}.note").read_bytes()
    record = json.loads((home / "witness" / "bucket.json").read_text())
    assert record["size"] == size and record["evidence"]["version_id"] == newest["VersionId"]
    # the home's own credentials cannot remove the locked version
    with pytest.raises(ClientError):
        client.delete_object(Bucket=bucket, Key=newest["Key"], VersionId=newest["VersionId"])
    ok = vaultctl_run(home, "verify")
    assert ok.code == 0 and "consistent with its 1 witness(es)" in ok.out, ok
    # an export names the locked object and proves its checkpoint extends it, offline
    out = home.parent / "export"
    assert vaultctl_run(home, "search", "subject:the", "--export", str(out)).code == 0
    (ev,) = json.loads((out / "manifest.json").read_text())["witness"]
    assert ev["type"] == "s3-object-lock" and ev["version_id"] == newest["VersionId"]
    assert ev["mode"] == "COMPLIANCE" and ev["consistency"]["from"] == size
    key = str(home / "keys" / "ledger.ed25519.pub")
    assert vaultctl_run(home, "verify-export", str(out), "--key", key).code == 0
    # hiding it behind a delete marker is no way out either
    client.delete_object(Bucket=bucket, Key=newest["Key"])
    caught(vaultctl_run(home, "verify"), "delete marker")


@pytest.mark.s3
def test_rollback_with_the_homes_copy_is_caught_from_the_bucket(s3_home):
    home, older, _, _ = s3_home
    size, old = ledger_size(home), ledger_size(older)
    for part in ("ledger", "witness"):
        shutil.rmtree(home / part)
        shutil.copytree(older / part, home / part)
    want = (f"holds {old} entries", f"witnessed a checkpoint of {size}", "rolled back")
    caught(vaultctl_run(home, "verify"), *want)
    caught(vaultctl_run(home, "import", str(home.parent / "Maildir"), "--mailbox", "user/jane/INBOX"), *want)
    assert ledger_size(home) == old


@pytest.mark.s3
def test_rewritten_history_resigned_is_caught_from_the_bucket(s3_home):
    home, _, _, _ = s3_home
    witnessed = ledger_size(home)
    size = rewrite(home, first_item(home))
    caught(vaultctl_run(home, "ls"), f"holds {size} entries")  # the home's copy
    shutil.rmtree(home / "witness")
    caught(vaultctl_run(home, "verify"), "the bucket", f"{witnessed}")
    caught(vaultctl_run(home, "import", str(home.parent / "Maildir"), "--mailbox", "user/jane/INBOX"))
    # grown past what was locked: the locked roots are not those of its first entries
    led = Ledger.from_config(Config.load(home))
    while led.size <= witnessed + 2:
        led.append("import.run", data={"padding": led.size})
        led.commit()
    led.close()
    caught(vaultctl_run(home, "verify"), "history was rewritten", "is not consistent with the checkpoint of")
