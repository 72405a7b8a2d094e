"""Root pytest configuration: server fixtures (one plugin module per real server) and corpora.

Tests that need a real server carry its marker (s3, cyrus, slapd, postfix); the fixtures
install (when missing) and start that server, and fail loudly when they cannot: they
never skip.
"""

pytest_plugins = [
    "tests.fixtures.corpus",
    "tests.servers.s3",
    "tests.servers.cyrus",
    "tests.servers.slapd",
    "tests.servers.postfix",
]
