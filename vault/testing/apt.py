"""Debian packages a test server needs, installed on demand: the one ``apt-get install``.

``scripts/setup.sh test`` installs them all up front; this is for a harness used on its own
(a bench, a debugging session). As root, or through ``sudo -n``; never interactive.
"""

from __future__ import annotations

import os
import subprocess

INSTALL = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600"]
UPDATE = ["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=600"]


class AptError(RuntimeError):
    pass


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if os.geteuid() != 0:
        argv = ["sudo", "-n", *argv]
    return subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True)


def apt_install(*packages: str, preseed: str = "") -> None:
    """Install ``packages`` (debconf answers ``preseed`` first); ``apt-get update`` and one
    more try only when the plain install fails. AptError with apt's last words otherwise."""
    if preseed:
        done = _run(["debconf-set-selections"], preseed)
        if done.returncode != 0:
            raise AptError(f"debconf-set-selections failed: {done.stderr.strip()}")
    done = _run([*INSTALL, *packages])
    if done.returncode != 0:
        _run(UPDATE)
        done = _run([*INSTALL, *packages])
    if done.returncode != 0:
        out = (done.stdout + done.stderr).strip()[-2000:]
        raise AptError(f"cannot install {' '.join(packages)} ({' '.join(done.args)}): {out}")
