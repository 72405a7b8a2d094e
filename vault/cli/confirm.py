"""Destructive commands (``erase``, ``erase approve``, ``retention sweep`` without
``--dry-run``) say what they will remove before they do: at a terminal they ask, elsewhere
(a script, a pipe, cron) they go on only with ``--yes``."""

from __future__ import annotations

import sys

import click

SHOWN = 50  # items listed before "... and N more"


def yes_option(f):
    return click.option(
        "--yes", "-y", "yes", is_flag=True, help="Do it without asking (needed when stdin is not a terminal)."
    )(f)


def confirm_removal(what: str, lines: list[str], yes: bool) -> None:
    """Print ``what`` will be removed and ``lines`` (the items) on stderr, then ask at a
    terminal, go on with ``yes``, or stop with a one-line error."""
    click.echo(f"{what}:", err=True)
    for line in lines[:SHOWN]:
        click.echo(f"  {line}", err=True)
    if len(lines) > SHOWN:
        click.echo(f"  ... and {len(lines) - SHOWN} more", err=True)
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException(
            "not done: stdin is not a terminal, so nobody confirmed it: run it again with --yes"
        )
    if not click.confirm("go ahead?", default=False, err=True):
        raise click.ClickException("not done: not confirmed")
