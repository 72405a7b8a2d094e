"""Fixtures for a real s3 server (see conftest.py)."""
