"""vaultctl: the command line of vault. Commands parse and print; vault/ does the work.

Each command lives in its own module, vault/cli/<name>_cmd.py, exporting ``command``
(a click command or group); dropping in the file is all it takes to add one. Modules are imported only when their command runs, so
``vaultctl search`` does not pay for importing the ingest stack.
"""

from __future__ import annotations

import errno
import functools
import importlib
import io
import os
import sys
from pathlib import Path

import click

CLI_DIR = Path(__file__).resolve().parent / "vault" / "cli"


@functools.cache
def _commands() -> dict[str, str]:
    """Command name -> module name, from the file names alone (no imports), once a process."""
    return {f.name[: -len("_cmd.py")].replace("_", "-"): f.stem for f in CLI_DIR.glob("*_cmd.py")}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(_commands())

    def get_command(self, ctx, name):
        module = _commands().get(name)
        if module is None:
            return None
        return importlib.import_module(f"vault.cli.{module}").command

    def invoke(self, ctx):
        """A full disk, wherever a command meets it, is one clear line and exit 1, never a
        traceback (issue 14): what is committed stays, and the next run resumes. So is a
        command that must write, run on a home that cannot be written, a refusal, another
        writer holding the home, and a path that cannot be read or made."""
        from vault.model import Refused

        try:
            return super().invoke(ctx)
        except Refused as e:  # a refusal is the answer, not a crash: one line, exit 1
            raise click.ClickException(str(e)) from None
        except Exception as e:
            from vault.archive import VaultBusy, VaultReadOnly, disk_full, full_disk_message
            from vault.index.indexer import IndexBusy

            if isinstance(e, (VaultReadOnly, VaultBusy, IndexBusy)):  # read-only home, another writer
                raise click.ClickException(str(e)) from None
            if isinstance(e, OSError) and e.errno == errno.EROFS:
                where = f"{e.filename}: " if e.filename else ""
                raise click.ClickException(f"read-only file system: {where}{e.strerror}") from None
            full = disk_full(e, (ctx.obj or {}).get("home"))
            if full is not None:
                raise click.ClickException(full_disk_message(full)) from None
            from vault.store.cas import BlobCorrupt

            if isinstance(e, BlobCorrupt):  # damage (or a failed authentication) named, not a traceback
                raise click.ClickException(str(e)) from None
            if isinstance(e, OSError) and e.filename is not None:  # a path given that cannot be used
                raise click.ClickException(f"{e.filename}: {e.strerror or e}") from None
            raise

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Exit codes and errors (JSON with --json, never a traceback): vault/cli/outcome.py."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        from vault.cli.outcome import run

        inner = functools.partial(click.Group.main, self, prog_name=prog_name, complete_var=complete_var)
        sys.exit(run(lambda argv: inner(argv, standalone_mode=False, **extra), args))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    envvar="VAULT_HOME",
    default="vault-data",
    show_default=True,
    type=click.Path(file_okay=False, readable=False),  # others' commands reach the service instead
    help="Vault directory (or VAULT_HOME).",
)
@click.version_option(package_name="vault", prog_name="vaultctl", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx, home):
    """vault: archive, restore and search Cyrus IMAP mail."""
    ctx.obj = {"home": home}
    # a file or folder name that is not UTF-8 (vault/model.py) prints as its own bytes on
    # stdout, and escaped on stderr, instead of failing the command after its work is done
    for stream, errors in ((sys.stdout, "surrogateescape"), (sys.stderr, "backslashreplace")):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=errors)


def main(argv=None):
    # What vault creates is its owner's alone (message text, keys, the catalog), whatever umask
    # the caller had; the dealer opens up, explicitly, only what Cyrus's user must reach.
    os.umask(0o077)
    return cli.main(args=argv, prog_name="vaultctl")


if __name__ == "__main__":
    sys.exit(main())
