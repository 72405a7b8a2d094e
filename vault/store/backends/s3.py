"""S3 backend (boto3): AWS, MinIO, Ceph RGW, moto — anything speaking the S3 REST API."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from vault.store.backends.base import Backend, BackendUnavailable, ObjectMissing, StoreError

_MISSING = {"404", "NoSuchKey", "NotFound"}
# botocore's request_checksum_calculation: "when_required" for stores that reject the
# checksums newer botocore sends by default
ChecksumCalculation = Literal["when_supported", "when_required"]


class S3Backend(Backend):
    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str = "",
        region: str = "us-east-1",
        access_key_id: str = "",
        secret_access_key: str = "",
        prefix: str = "",
        request_checksum_calculation: ChecksumCalculation = "when_supported",
        object_lock_mode: str = "",
        object_lock_days: int = 0,
    ):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.name = f"s3://{bucket}/{self.prefix}"
        self.lock_mode = object_lock_mode
        self.lock_days = object_lock_days
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=BotoConfig(
                request_checksum_calculation=request_checksum_calculation,
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def _call(self, what: str, key: str, fn, **kw):
        try:
            return fn(Bucket=self.bucket, **kw)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code"))
            if code in _MISSING:
                raise ObjectMissing(key, self.name) from None
            raise StoreError(f"{self.name}{key}: {what} failed: {code} {e}") from None
        except (EndpointConnectionError, BotoCoreError) as e:
            raise BackendUnavailable(f"{self.name}: {what} {key}: {e}") from None

    def put(self, key: str, data: bytes) -> bool:
        if self.exists(key):  # content-addressed keys make the race harmless
            return False
        extra: dict[str, str | datetime] = {}
        if self.lock_mode:
            extra["ObjectLockMode"] = self.lock_mode
            extra["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=self.lock_days)
            extra["ContentMD5"] = base64.b64encode(hashlib.md5(data).digest()).decode()
        self._call("put", key, self.client.put_object, Key=self.prefix + key, Body=data, **extra)
        return True

    def get(self, key: str) -> bytes:
        return self._call("get", key, self.client.get_object, Key=self.prefix + key)["Body"].read()

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        r = self._call(
            "get",
            key,
            self.client.get_object,
            Key=self.prefix + key,
            Range=f"bytes={offset}-{offset + length - 1}",
        )
        return r["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self._call("head", key, self.client.head_object, Key=self.prefix + key)
            return True
        except ObjectMissing:
            return False

    def size(self, key: str) -> int:
        return self._call("head", key, self.client.head_object, Key=self.prefix + key)["ContentLength"]

    def delete(self, key: str) -> None:
        if not self.exists(key):
            raise ObjectMissing(key, self.name)
        self._call("delete", key, self.client.delete_object, Key=self.prefix + key)

    def set_legal_hold(self, key: str, on: bool) -> bool:
        """S3 Object Lock legal hold (the bucket must have Object Lock enabled)."""
        self._call(
            "legal hold",
            key,
            self.client.put_object_legal_hold,
            Key=self.prefix + key,
            LegalHold={"Status": "ON" if on else "OFF"},
        )
        return True

    def legal_hold(self, key: str) -> bool:
        # head_object's ObjectLock* fields: moto answers get_object_legal_hold inconsistently
        head = self._call("head", key, self.client.head_object, Key=self.prefix + key)
        return head.get("ObjectLockLegalHoldStatus") == "ON"

    def put_retained(self, key: str, data: bytes, mode: str, until: datetime) -> dict:
        """A new version of ``key`` under Object Lock retention (``mode`` until ``until``),
        whatever ``[s3] object_lock_mode`` says; its version id and retention."""
        r = self._call(
            "put",
            key,
            self.client.put_object,
            Key=self.prefix + key,
            Body=data,
            ObjectLockMode=mode,
            ObjectLockRetainUntilDate=until,
            ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode(),
        )
        return {"version_id": r.get("VersionId"), "mode": mode, "retain_until": until.isoformat()}

    def head_version(self, key: str) -> dict:
        """The current version of ``key``: version id and Object Lock retention."""
        h = self._call("head", key, self.client.head_object, Key=self.prefix + key)
        until = h.get("ObjectLockRetainUntilDate")
        return {
            "version_id": h.get("VersionId"),
            "mode": h.get("ObjectLockMode"),
            "retain_until": until.isoformat() if until else None,
        }

    def versions(self, prefix: str, after: str = "") -> list[dict]:
        """Every version of every key under ``prefix`` (after the key ``after``), delete
        markers included: an object hidden by a delete marker is still listed."""
        kw = {"Prefix": self.prefix + prefix}
        if after:
            kw["KeyMarker"] = self.prefix + after
        out: list[dict] = []
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, **kw):
                for v in page.get("Versions", []):
                    out.append(
                        {
                            "key": v["Key"][len(self.prefix) :],
                            "version_id": v.get("VersionId"),
                            "deleted": False,
                        }
                    )
                for m in page.get("DeleteMarkers", []):
                    out.append(
                        {
                            "key": m["Key"][len(self.prefix) :],
                            "version_id": m.get("VersionId"),
                            "deleted": True,
                        }
                    )
        except ClientError as e:
            raise StoreError(f"{self.name}: list versions failed: {e}") from None
        except (EndpointConnectionError, BotoCoreError) as e:
            raise BackendUnavailable(f"{self.name}: list versions: {e}") from None
        return [v for v in out if not after or v["key"] > after]

    def list(self, prefix: str = "") -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        keys = []
        try:
            for page in pages:
                keys += [o["Key"][len(self.prefix) :] for o in page.get("Contents", [])]
        except ClientError as e:
            raise StoreError(f"{self.name}: list failed: {e}") from None
        except (EndpointConnectionError, BotoCoreError) as e:
            raise BackendUnavailable(f"{self.name}: list: {e}") from None
        return iter(sorted(keys))
