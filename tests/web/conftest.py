"""The page tests' site (tests/web/site.py): one per session, shared by the HTTP and the
browser tests. Screenshots and other artifacts go to $VAULT_TEST_ARTIFACTS (else a tmp dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.site import Site, build


@pytest.fixture(scope="session")
def pages_site(tmp_path_factory, slapd_server, cyrus_server, spamassassin_dir) -> Iterator[Site]:
    artifacts = Path(os.environ.get("VAULT_TEST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    site = build(tmp_path_factory.mktemp("pages"), slapd_server, cyrus_server, artifacts, spamassassin_dir)
    try:
        yield site
    finally:
        site.served.close()
