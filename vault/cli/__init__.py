"""One thin module per vaultctl command (``<name>_cmd.py``); shared plumbing here."""
