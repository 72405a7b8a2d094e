"""Plumbing shared by the vaultctl command modules: opening the vault, output, progress."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click

from vault.config import Config, ConfigError


def home_of(ctx: click.Context) -> str:
    return ctx.find_root().obj["home"]


def load_config(ctx: click.Context) -> Config:
    try:
        return Config.load(home_of(ctx))
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


def print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


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
