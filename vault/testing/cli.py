"""vaultctl as an operator runs it, for tests and benchmarks: the one place that knows how.

- ``vaultctl_argv(*args, home=...)``: the command line (this Python, the repository's
  vaultctl.py, ``--home``), for callers that manage the process themselves (Popen, daemons);
- ``vaultctl(home, *args)``: run it to the end, output captured (text unless ``text=False``);
- ``vaultctl_process(home, *args)``: start it with stdout and stderr piped (for kill tests);
- ``vaultctl_run(home, *args)``: the click command in this process, through the same argument
  parsing; much faster, but shares this process (its imports, its signal handlers).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, overload

from click.testing import CliRunner

from vaultctl import cli as vaultctl_cli  # the top-level script (installed as a py-module)

REPO = Path(__file__).resolve().parents[2]
VAULTCTL = REPO / "vaultctl.py"

StrPath = str | os.PathLike[str]


def vaultctl_argv(*args: StrPath, home: StrPath | None = None) -> list[str]:
    """``python vaultctl.py [--home HOME] ARGS...``; without ``home``, vaultctl's own default
    (``$VAULT_HOME``, else ``vault-data`` in the working directory) applies."""
    argv = [sys.executable, str(VAULTCTL)]
    if home is not None:
        argv += ["--home", str(home)]
    return argv + [str(a) for a in args]


def byte_compile(repo: StrPath = REPO) -> None:
    """Compile a checkout's modules to bytecode, as installing a package does (pip, Debian):
    a benchmark then measures vault, not the compiler (an editable install, or a checkout run
    with PYTHONDONTWRITEBYTECODE, would otherwise compile every module at every start)."""
    targets = [str(Path(repo) / "vault"), str(Path(repo) / "vaultctl.py")]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *targets], check=True, stdout=subprocess.DEVNULL
    )


class VaultctlFailed(subprocess.CalledProcessError):
    """A ``check=True`` run that exited non-zero; its message carries vaultctl's stderr."""

    def __str__(self) -> str:
        err = self.stderr.decode(errors="replace") if isinstance(self.stderr, bytes) else self.stderr
        return f"{super().__str__()}\n{err or ''}".rstrip()


@overload
def vaultctl(
    home: StrPath | None,
    *args: StrPath,
    check: bool = ...,
    timeout: float | None = ...,
    text: Literal[True] = ...,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]: ...
@overload
def vaultctl(
    home: StrPath | None,
    *args: StrPath,
    check: bool = ...,
    timeout: float | None = ...,
    text: Literal[False],
    **kwargs: Any,
) -> subprocess.CompletedProcess[bytes]: ...
def vaultctl(
    home: StrPath | None,
    *args: StrPath,
    check: bool = False,
    timeout: float | None = 600,
    text: bool = True,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """Run ``vaultctl [--home HOME] ARGS...`` to the end and return it, stdout and stderr
    captured. ``check``: raise VaultctlFailed (a CalledProcessError) on a non-zero exit.
    Other keywords (``input``, ``env``, ``cwd``, ...) go to subprocess.run."""
    argv = vaultctl_argv(*args, home=home)
    done = subprocess.run(argv, capture_output=True, text=text, timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise VaultctlFailed(done.returncode, argv, done.stdout, done.stderr)
    return done


def vaultctl_process(home: StrPath, *args: StrPath, **kwargs: Any) -> subprocess.Popen[bytes]:
    """``vaultctl --home HOME ARGS...`` started as a separate OS process, stdout and stderr
    piped (bytes); other keywords go to subprocess.Popen."""
    return subprocess.Popen(
        vaultctl_argv(*args, home=home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs
    )


class Result:
    """What an in-process run ended with: exit code, stdout, stderr."""

    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}>"


def vaultctl_run(home: StrPath, *args: str) -> Result:
    """vaultctl in this process, through its real argument parsing."""
    r = CliRunner().invoke(vaultctl_cli, ["--home", str(home), *args], catch_exceptions=False)
    return Result(r.exit_code, r.stdout, r.stderr)
