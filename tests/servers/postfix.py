"""Fixtures for a real postfix server (see conftest.py)."""
