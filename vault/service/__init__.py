"""What ``vaultctl serve`` runs: the scheduled jobs and their scheduler."""
