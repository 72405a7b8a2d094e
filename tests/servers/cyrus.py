"""Fixtures for a real cyrus server (see conftest.py)."""
