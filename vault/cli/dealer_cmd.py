"""vaultctl dealer: take Cyrus's event notifications into a durable spool and ship them.

``vaultctl dealer -c EVENT -p '' -u '' -m '' -f`` (notifyd's argv, JSON on stdin) spools one
event and exits; ``install-hook`` writes the fork-free /bin/sh equivalent for notify_external;
``serve`` runs the daemon (socket/stream listener and the shipper); ``status`` shows the spool.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from vault.cli.common import emit, home_of, host_config, json_option, print_json
from vault.config import CONFIG_NAME

SPOOL_ENV = "VAULT_DEALER_SPOOL"


class _DealerGroup(click.Group):
    """Anything that is not a subcommand is notifyd's argv (``-c EVENT ... -f``, the last ``-f``
    without a value, which no option parser accepts): keep it aside and spool stdin."""

    def parse_args(self, ctx, args):
        if args and (args[0] in self.commands or args[0] in ctx.help_option_names):
            return super().parse_args(ctx, args)
        rest = list(args)
        spool = None
        if rest and rest[0].startswith("--spool="):
            spool, rest = rest[0].split("=", 1)[1], rest[1:]
        elif len(rest) >= 2 and rest[0] == "--spool":
            spool, rest = rest[1], rest[2:]
        ctx.meta["dealer.spool"] = spool
        ctx.meta["dealer.argv"] = rest
        return super().parse_args(ctx, [])


@click.group(
    "dealer",
    cls=_DealerGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.pass_context
def command(ctx):
    """Spool one event from stdin (as Cyrus notifyd's external notifier: vaultctl dealer
    [--spool DIR] -c EVENT -p '' -u '' -m '' -f), or run a subcommand.

    The spool is --spool, else $VAULT_DEALER_SPOOL, else [dealer] spool_path of the vault's
    config. A Python start-up per event costs ~90% of Cyrus's delivery rate: prefer the hook
    from 'install-hook', or the daemon ('serve --mode stream')."""
    if ctx.invoked_subcommand is not None:
        return
    argv = ctx.meta.get("dealer.argv", [])
    spool = ctx.meta.get("dealer.spool") or os.environ.get(SPOOL_ENV)
    if not argv and not spool and sys.stdin.isatty():
        click.echo(ctx.get_help())
        return
    if not spool:
        if not (Path(home_of(ctx)) / CONFIG_NAME).exists():
            raise click.ClickException(
                f"no spool: pass --spool DIR, set {SPOOL_ENV}, or point --home/VAULT_HOME at a vault "
                f"(no {CONFIG_NAME} in {home_of(ctx)})"
            )
        spool = str(host_config(ctx, required=True).path("dealer", "spool_path"))
    from vault.ingest.dealer.dealer import spool_stdin
    from vault.ingest.dealer.spool import EventSpoolError

    try:
        spool_stdin(spool, sys.stdin.buffer)
    except EventSpoolError as e:
        raise click.ClickException(f"event not spooled: {e}") from None


@command.command("install-hook")
@click.option(
    "--spool", type=click.Path(file_okay=False), help="Spool directory (default: [dealer] spool_path)."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Where to write the hook, Cyrus's notify_external (default: [dealer] hook_path).",
)
@click.option(
    "--owner", help="User notifyd runs as; owns the spool (default: [dealer] socket_owner; '' for none)."
)
@click.option("--fsync/--no-fsync", default=None, help="fsync each event (default: [dealer] hook_fsync).")
@json_option
@click.pass_context
def install_hook_cmd(ctx, spool, output, owner, fsync, as_json):
    """Write the per-event /bin/sh hook for notify_external and prepare its spool. Run
    'vaultctl dealer serve --mode external' to ship what it spools."""
    from vault.ingest.dealer.dealer import install_hook

    cfg = host_config(ctx)
    spool = spool or str(cfg.path("dealer", "spool_path"))
    output = output or str(cfg.path("dealer", "hook_path"))
    owner = cfg["dealer"]["socket_owner"] if owner is None else owner
    fsync = cfg["dealer"]["hook_fsync"] if fsync is None else fsync
    try:
        path = install_hook(spool, output, owner=owner or None, fsync=fsync)
    except (OSError, KeyError) as e:
        raise click.ClickException(f"cannot install the hook: {e}") from None
    text = [f"hook written to {path}; spool {Path(spool).absolute()}"]
    if path.absolute() == cfg.path("dealer", "hook_path").absolute():
        text.append("Cyrus's imapd.conf and cyrus.conf lines: vaultctl cyrus-config")
    else:
        text.append(
            f"in imapd.conf: notify_external: {path.absolute()} (the other lines: vaultctl cyrus-config)"
        )
    emit(as_json, {"hook": str(path.absolute()), "spool": str(Path(spool).absolute())}, text)


@command.command("serve")
@click.option("--mode", type=click.Choice(["external", "socket", "stream"]), help="Default: [dealer] mode.")
@click.option("--listen", type=click.Path(dir_okay=False), help="Socket to bind (socket/stream modes).")
@click.option("--spool", type=click.Path(file_okay=False))
@click.option("--broker", help="Broker's dealer router, e.g. tcp://127.0.0.1:5570.")
@click.option("--no-ship", is_flag=True, help="Only spool; ship nothing.")
@click.option("--window", type=int, help="Events in flight to the broker.")
@click.option("--ack-timeout", type=float, help="Seconds before an unacked event is sent again.")
@click.option("--origin", help="Origin sent with each event (default: host name).")
@click.option("--socket-owner", help="User Cyrus runs as, who must reach the socket ('' for none).")
@click.option(
    "--sync/--no-sync",
    default=None,
    help="fdatasync the journal before answering Cyrus (default: [dealer] sync; README: Live ingest).",
)
@click.option("-v", "--verbose", is_flag=True)
@json_option
@click.pass_context
def serve_cmd(
    ctx,
    mode,
    listen,
    spool,
    broker,
    no_ship,
    window,
    ack_timeout,
    origin,
    socket_owner,
    sync,
    verbose,
    as_json,
):
    """Run the dealer daemon: listen on Cyrus's notify socket (socket: datagrams, stream: dlist
    with acknowledgements; external: no listener, the hook spools) and ship the spool to the
    broker until SIGTERM."""
    from vault.curve.guard import client_curve
    from vault.curve.keys import CurveError
    from vault.ingest.dealer.dealer import Dealer, DealerSettings
    from vault.ingest.dealer.shipper import ShipperBusy

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    cfg = host_config(ctx)
    d = cfg["dealer"]
    mode = mode or d["mode"]
    broker = "" if no_ship else (broker or d["broker"])
    curve = None
    if broker:
        try:
            curve = client_curve(cfg, section="dealer", endpoint=broker, component="dealer", server="broker")
        except CurveError as e:
            # Cyrus needs the dealer up (stream mode) before the broker's key is known: spool,
            # durably, and ship nothing until the keys are there and the dealer restarted
            logging.getLogger("vault.ingest.dealer").error("not shipping, only spooling: %s", e)
            broker = ""
    try:
        settings = DealerSettings(
            mode=mode,
            spool=Path(spool) if spool else cfg.path("dealer", "spool_path"),
            broker=broker,
            listen=None
            if mode == "external"
            else (Path(listen) if listen else cfg.path("dealer", "listen_path")),
            window=window or d["window"],
            ack_timeout=ack_timeout or d["ack_timeout_seconds"],
            origin=(origin if origin is not None else d["origin"]) or None,
            socket_owner=(socket_owner if socket_owner is not None else d["socket_owner"]) or None,
            sync=d["sync"] if sync is None else sync,
            curve=curve,
        )
        ready = {"dealer": "ready", "mode": mode, "spool": str(settings.spool), "broker": settings.broker}
        Dealer(settings).run(ready=lambda dealer: emit(as_json, ready, "dealer ready", err=True))
    except (ValueError, OSError, ShipperBusy) as e:
        raise click.ClickException(str(e)) from None


@command.command("status")
@click.option("--spool", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status_cmd(ctx, spool, as_json):
    """Events waiting in the spool and everything quarantined, with the reason."""
    from vault.ingest.dealer.spool import spool_status

    status = spool_status(spool or host_config(ctx).path("dealer", "spool_path"))
    if as_json:
        print_json(status)
        return
    if not status["exists"]:
        click.echo(f"no spool at {status['spool']}")
        return
    click.echo(
        f"spool {status['spool']}: {status['pending']} waiting to ship, {status['in_tmp']} being "
        f"written, {status['quarantined']} quarantined"
    )
    for q in status["quarantine"]:
        click.echo(f"  bad/{q['name']} ({q['size']} bytes): {q['reason']}")
