"""Held blobs carry the S3 Object Lock legal hold; it is lifted when no hold remains."""

from __future__ import annotations

import pytest

from tests.core.helpers import init_vault, make_maildir, vaultctl_run
from tests.fixtures.corpus import message_files
from tests.policy.helpers import TWO_ADMINS, release


@pytest.mark.s3
def test_legal_hold_follows_holds_and_retention_mode_on_new_blobs(tmp_path, spamassassin_dir, s3_endpoint):
    client = s3_endpoint.client()
    bucket = s3_endpoint.new_bucket(object_lock=True)
    home = init_vault(
        tmp_path / "vault",
        **TWO_ADMINS,
        **{
            "store.backend": "s3",
            "s3.endpoint_url": s3_endpoint.url,
            "s3.bucket": bucket,
            "s3.access_key_id": "t",
            "s3.secret_access_key": "t",
            "s3.object_lock_mode": "GOVERNANCE",
            "s3.object_lock_days": 1,
        },
    )
    box = make_maildir(tmp_path / "md", message_files(spamassassin_dir / "spam-1")[:10])
    assert vaultctl_run(home, "import", str(box), "--mailbox", "user/bob/INBOX").code == 0
    packs = [
        o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].startswith("packs/")
    ]
    assert packs
    head = client.head_object(Bucket=bucket, Key=packs[0])
    assert head["ObjectLockMode"] == "GOVERNANCE"

    def legal(key):
        return client.head_object(Bucket=bucket, Key=key).get("ObjectLockLegalHoldStatus")

    assert vaultctl_run(home, "hold", "create", "m1", "--custodian", "bob", "--reason", "r").code == 0
    assert vaultctl_run(home, "hold", "create", "m2", "--custodian", "bob", "--reason", "r").code == 0
    assert all(legal(k) == "ON" for k in packs)
    release(home, "m1")
    assert all(legal(k) == "ON" for k in packs)  # m2 still holds
    release(home, "m2")
    assert all(legal(k) != "ON" for k in packs)
