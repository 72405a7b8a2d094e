"""Fixtures for a real slapd server (see conftest.py)."""
