"""Plumbing shared by the vaultctl command modules: opening the vault, output, progress."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from vault.config import CONFIG_NAME, Config, ConfigError


def home_of(ctx: click.Context) -> str:
    return ctx.find_root().obj["home"]


def _loaded(home: str) -> Config:
    """``Config.load``, warning on stderr of each secret others can read (vault/secrets.py)."""
    from vault.secrets import exposure

    config = Config.load(home)
    for warning in exposure(config):
        click.echo(f"warning: {warning}", err=True)
    _ask_passphrase(config)
    return config


def _ask_passphrase(config: Config) -> None:
    """On a terminal, ask for the store passphrase a passphrase-protected key needs and no
    file or variable gives (vault/store/keys.py); processes started from here inherit it."""
    from vault.store import keys

    if config["store"]["encryption"] != "passphrase" or keys.passphrase(config) or not sys.stdin.isatty():
        return
    if not keys.key_path(config).exists():
        return
    os.environ[keys.PASSPHRASE_ENV] = click.prompt("store passphrase", hide_input=True, err=True)


def ask_new_passphrase(store: dict) -> None:
    """``init --encryption passphrase`` on a terminal with no passphrase given: ask twice."""
    from vault.store import keys

    if os.environ.get(keys.PASSPHRASE_ENV) or os.environ.get(keys.PASSPHRASE_ENV + "_FILE"):
        return
    if store.get("passphrase_file") or store.get("passphrase") or not sys.stdin.isatty():
        return
    os.environ[keys.PASSPHRASE_ENV] = click.prompt(
        "new store passphrase", hide_input=True, confirmation_prompt=True, err=True
    )


def load_config(ctx: click.Context) -> Config:
    """The config of this command's vault home; a mail-host home is refused."""
    try:
        config = _loaded(home_of(ctx))
        config.require_vault(f"'{ctx.command_path}'")
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    return config


def host_config(ctx: click.Context, required: bool = False) -> Config:
    """The config of any home, vault or mail host (the dealer's and the collector's): its
    config.toml, or the built-in defaults relative to --home when there is none (unless
    ``required``), since the Cyrus host need not hold a vault."""
    home = home_of(ctx)
    if not required and not (Path(home) / CONFIG_NAME).exists():
        return Config.defaults(home)
    try:
        return _loaded(home)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


def open_vault(ctx: click.Context, writer: bool = False):
    """The Vault facade for this command's --home; ``writer`` takes the single-writer lock."""
    from vault.archive import Vault, VaultBusy

    config = load_config(ctx)
    try:
        return Vault.open(config, writer=writer)
    except VaultBusy as e:
        raise click.ClickException(str(e)) from None


def service_of(ctx: click.Context):
    """The running vault service's client, or None: then the command opens the home itself.
    Its socket: $VAULT_SOCKET, else [service] socket_path of the home, else (the home's config
    is not readable by this user) /run/vault/vault.sock."""
    import os

    from vault.service_client import DEFAULT_SHARED_SOCKET, ServiceClient, socket_path

    path = os.environ.get("VAULT_SOCKET")
    if not path:
        try:
            path = str(socket_path(Config.load(home_of(ctx))))
        except (ConfigError, OSError):
            path = DEFAULT_SHARED_SOCKET
    client = ServiceClient(path)
    return client if client.running() else None


def call_service(client, op: str, params: dict):
    """``op`` in the service; its refusal or failure as the command's error."""
    from vault.service_client import ServiceError

    try:
        return client.call(op, params)
    except ServiceError as e:
        raise click.ClickException(str(e)) from None


@contextmanager
def service_stream(client, op: str, params: dict):
    """The body of streaming operation ``op`` (restore, export); its refusal or failure as
    the command's error."""
    from vault.service_client import ServiceError

    try:
        with client.stream(op, params) as body:
            yield body
    except ServiceError as e:
        raise click.ClickException(str(e)) from None


def direct_caller(vault, actor: str | None, action: str):
    """The caller of a command that opened the home itself: the OS user running it (who the
    OS let read the home); ``--actor`` (``actor``) is an admin's only, and a refusal is
    recorded like every other (vault/policy/approval.py)."""
    from vault.policy.approval import local_caller

    try:
        return local_caller(vault, acting_for=actor, action=action)
    except PermissionError as e:
        raise click.ClickException(str(e)) from None


def refuse_here(vault, error) -> None:
    """Record a refusal (``access.refused``) in the home this command opened, and fail."""
    from vault.policy.approval import refuse
    from vault.recording import Unrecorded

    try:
        refuse(vault, error.caller, error.action, error)
    except (PermissionError, Unrecorded) as e:
        raise click.ClickException(str(e)) from None


def print_json(value) -> None:
    """``value`` as JSON on stdout; a name that is not UTF-8 as ``\\udcNN`` escapes (vault/model.py)."""
    from vault.model import json_bytes

    sys.stdout.write(json_bytes(json.dumps(value, indent=2, ensure_ascii=False, default=str)).decode("utf-8"))
    sys.stdout.write("\n")


def print_table(headers: list[str], rows: list[list[str]], min_width: int = 8) -> None:
    """Columns of plain text, two spaces apart (rich's Table costs ~0.1 s to import and render,
    a fifth of a whole search). On a terminal, the widest columns are narrowed to fit it and
    their cells wrapped; piped output keeps every cell whole on its line(s)."""
    import shutil
    import textwrap

    cells = [[str(c).split("\n") for c in row] for row in rows]
    widths = [max([len(h)] + [len(line) for row in cells for line in row[i]]) for i, h in enumerate(headers)]
    if sys.stdout.isatty():
        room = shutil.get_terminal_size().columns - 2 * (len(headers) - 1)
        while sum(widths) > room:
            widest = max(range(len(widths)), key=widths.__getitem__)
            if widths[widest] <= min_width:
                break
            widths[widest] -= 1
    out = []

    def emit(columns: list[list[str]]) -> None:
        for n in range(max(len(c) for c in columns)):
            parts = [(c[n] if n < len(c) else "").ljust(w) for c, w in zip(columns, widths)]
            out.append("  ".join(parts).rstrip())

    for row in [[[h] for h in headers], *cells]:
        emit(
            [
                [piece for line in cell for piece in (textwrap.wrap(line, w, break_on_hyphens=False) or [""])]
                for cell, w in zip(row, widths)
            ]
        )
    sys.stdout.write("\n".join(out) + "\n")


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


@contextmanager
def progress(description: str, total: int | None = None, enabled: bool = True):
    """A progress bar on stderr, yielding ``advance(n=1)``; silent when stderr is not a tty."""
    if not enabled or not sys.stderr.isatty():
        yield lambda n=1, **kw: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1, **fields):
            bar.update(task, advance=n, **fields)

        yield advance


def json_option(f):
    """``--json``: the option every command has; with it the result is JSON on stdout and an
    error one JSON object on stderr (vault/cli/outcome.py)."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result (or the error) as JSON.")(f)


def emit(as_json: bool, data, text: str | list[str], *, err: bool = False) -> None:
    """``data`` as JSON (one line on stderr when ``err``, for a daemon's announcements), or
    ``text`` (lines) for people."""
    if not as_json:
        click.echo(text if isinstance(text, str) else "\n".join(text), err=err)
    elif err:
        click.echo(json.dumps(data, ensure_ascii=False, default=str), err=True)
    else:
        print_json(data)
