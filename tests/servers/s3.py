"""A real S3-compatible HTTP endpoint for tests: moto_server on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass

import pytest

from vault.testing.net import free_port


@dataclass
class S3Endpoint:
    url: str
    region: str = "us-east-1"
    access_key_id: str = "testing"
    secret_access_key: str = "testing"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def new_bucket(self, object_lock: bool = False) -> str:
        name = f"vault-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
        return name


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto_server did not start on {url}: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    yield S3Endpoint(url)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_bucket(s3_endpoint) -> tuple[S3Endpoint, str]:
    return s3_endpoint, s3_endpoint.new_bucket()
