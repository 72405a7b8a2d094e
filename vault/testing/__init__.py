"""Real servers for tests and benchmarks (Cyrus IMAP, a private syslog), importable outside pytest.

Nothing here is used by vault at run time; pytest fixtures in ``tests/servers/`` wrap these
classes, and benchmarks in ``bench/`` use them directly.
"""
