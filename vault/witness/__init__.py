"""Witnessed checkpoints: each signed checkpoint of the ledger is also recorded where the vault
home cannot rewrite it (docs/architecture.md 3.8).

- ``protocol``: the C2SP tlog-witness ``add-checkpoint`` request and answers;
- ``server``: a cosigning witness (``vaultctl witness serve``), a process and key of its own,
  outside the home; it imports nothing of the vault but the checkpoint and Merkle formats;
- ``cosigner`` and ``bucket``: the vault's side of a cosigning witness and of the S3 bucket
  under Object Lock;
- ``witnesses``: what the vault does with them: submit each new checkpoint, keep the newest
  evidence in the home, refuse a ledger older than or inconsistent with it, verify, export.
"""
