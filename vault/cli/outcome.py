"""How every vaultctl command ends: its exit code, and its error as a line or as JSON.

Exit codes, as restic's:

====  ========================================================================================
0     done
1     fatal: nothing (more) was done; the error says why
2     the command line is wrong (click's usage errors)
3     finished, but some items could not be read (import, restore, export, verify): they are
      listed, everything readable was done
====  ========================================================================================

With ``--json`` anywhere on the command line, an error is one JSON object on stderr,
``{"error": MESSAGE, "exit_code": N}`` (a usage error also has ``"usage": true``), instead of
click's ``Error: ...`` lines. An exception no command expected ends the same way, in one line,
never a traceback (``VAULT_DEBUG=1`` lets it through, for developers).

Commands do not exit themselves: they raise ``click.ClickException`` (exit 1), and end with
:func:`finish` when some items were unreadable (exit 3). ``run`` is the one place that turns
both into the process's exit code and output (vaultctl.py's group calls it).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence

import click

OK, FATAL, USAGE, PARTIAL = 0, 1, 2, 3
INTERNAL = "internal error"  # what an exception no command expected is called (a bug to report)


def json_requested(args: Sequence[str]) -> bool:
    """Whether ``--json`` is among the options (not after a ``--``)."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def finish(unreadable: int) -> None:
    """End a command whose output is printed: exit 3 when ``unreadable`` items were skipped."""
    if unreadable:
        raise click.exceptions.Exit(PARTIAL)


def error_object(message: str, code: int, usage: bool = False) -> dict:
    found: dict = {"error": message, "exit_code": code}
    if usage:
        found["usage"] = True
    return found


def _emit(message: str, code: int, as_json: bool, usage_error: click.UsageError | None = None) -> None:
    if as_json:
        line = json.dumps(error_object(message, code, usage_error is not None), ensure_ascii=False)
        sys.stderr.write(line + "\n")
    elif usage_error is not None:
        usage_error.show()
    else:
        click.echo(f"Error: {message}", err=True)


def run(main: Callable[..., object], args: Sequence[str] | None) -> int:
    """``main`` (click's ``BaseCommand.main`` with ``standalone_mode=False``) run to its exit
    code, every error reported once, as a line or (with ``--json``) as JSON."""
    argv = list(sys.argv[1:] if args is None else args)
    as_json = json_requested(argv)
    try:
        rv = main(argv)
        return rv if isinstance(rv, int) else OK
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        _emit(e.format_message(), e.exit_code, as_json, e)
        return e.exit_code
    except click.ClickException as e:
        _emit(e.format_message(), e.exit_code, as_json)
        return e.exit_code
    except (click.Abort, KeyboardInterrupt, EOFError):
        _emit("aborted", FATAL, as_json)
        return FATAL
    except BrokenPipeError:  # `vaultctl show X | head`: the reader went away, nothing to say
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter's flush at exit)
        except OSError:
            pass
        return FATAL
    except Exception as e:
        if os.environ.get("VAULT_DEBUG"):
            raise
        _emit(f"{INTERNAL}: {type(e).__name__}: {e} (VAULT_DEBUG=1 shows where)", FATAL, as_json)
        return FATAL
