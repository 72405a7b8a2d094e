"""Named crash points, for the tests that kill vault mid-operation and check what survives.

``point(name)`` does nothing unless ``$VAULT_FAULT`` names it; then the process is SIGKILLed
right there, as a power cut or an OOM kill would stop it (no cleanup, no flush). The points
(docs/architecture.md, "Crash safety") are a contract with tests/core/test_purge_crash.py.
"""

from __future__ import annotations

import os
import signal

ENV = "VAULT_FAULT"


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
