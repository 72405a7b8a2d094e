"""vaultctl collector: serve FETCH / FOLDER / ENUMERATE on the Cyrus host."""

from __future__ import annotations

import logging
import signal

import click

from vault.cli.common import emit, host_config, json_option, print_json


def _collector(ctx, imapd_conf, imap_port, imap_admin):
    from vault.ingest.collector.server import Collector
    from vault.ingest.cyrus.spool import CyrusSpoolError

    config = host_config(ctx)
    section = config["collector"]
    for key, value in (("imapd_conf", imapd_conf), ("imap_port", imap_port), ("imap_admin", imap_admin)):
        if value is not None:
            section[key] = value
    try:
        return config, Collector.from_config(config)
    except CyrusSpoolError as e:
        raise click.ClickException(str(e)) from None


_common = [
    click.option(
        "--imapd-conf",
        type=click.Path(dir_okay=False),
        help="Cyrus's imapd.conf (default: [collector] imapd_conf).",
    ),
    click.option("--imap-port", type=int, help="Cyrus IMAP port for the admin connection."),
    click.option(
        "--imap-admin",
        help="Admin user ('' for none); password from $VAULT_COLLECTOR_PASSWORD or the file $VAULT_COLLECTOR_PASSWORD_FILE names.",
    ),
]


def _with_common(f):
    for option in reversed(_common):
        f = option(f)
    return f


@click.group("collector", invoke_without_command=True)
@click.option("--bind", help="ZeroMQ endpoint to listen on (default: [collector] bind).")
@_with_common
@json_option
@click.pass_context
def command(ctx, bind, imapd_conf, imap_port, imap_admin, as_json):
    """Answer workers and reconciliation from the Cyrus spool (run on the Cyrus host, as
    root or as user cyrus), over CURVE to the clients on the collector allow-list (SIGHUP
    re-reads it). Stops on SIGTERM or SIGINT."""
    if ctx.invoked_subcommand is not None:
        return
    from vault.curve.guard import reload as reload_keys
    from vault.curve.keys import CurveError
    from vault.ingest.collector.server import CollectorServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s collector %(message)s")
    config, collector = _collector(ctx, imapd_conf, imap_port, imap_admin)
    try:
        server = CollectorServer.from_config(collector, config, bind)
    except CurveError as e:
        raise click.ClickException(str(e)) from None
    except Exception as e:  # zmq.ZMQError: address in use, bad endpoint
        raise click.ClickException(f"cannot listen on {bind or config['collector']['bind']}: {e}") from e
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGHUP, lambda *_: reload_keys())  # the allow-list (vaultctl keys trust)
    ready = {"collector": "listening", "address": server.address}
    emit(as_json, ready, f"collector listening on {server.address}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        collector.close()


@command.command("ask")
@click.argument("request", type=click.Choice(["folder", "enumerate", "fetch"]))
@click.argument("mailbox")
@click.argument("uid", type=int, required=False)
@click.option("--address", help="Collector endpoint (default: [collector] address).")
@json_option
@click.pass_context
def ask(ctx, request, mailbox, uid, address, as_json):
    """Ask a running collector (a check from the vault host): FOLDER, ENUMERATE or FETCH."""
    import sys

    from vault.curve.keys import CurveError
    from vault.ingest.collector.client import CollectorClient, CollectorError, CollectorRefused

    config = host_config(ctx)
    try:
        client = CollectorClient.from_config(config, address)
    except CurveError as e:
        raise click.ClickException(str(e)) from None
    with client:
        try:
            if request == "fetch":
                if uid is None:
                    raise click.UsageError("fetch needs MAILBOXID UID")
                data = client.fetch(mailbox, uid)
                if as_json:
                    import base64

                    print_json({"mailbox": mailbox, "uid": uid, "base64": base64.b64encode(data).decode()})
                else:
                    sys.stdout.buffer.write(data)
            elif request == "folder":
                print_json(client.folder(mailbox))
            else:
                print_json(client.mailbox_state(mailbox))
        except (CollectorError, CollectorRefused) as e:
            raise click.ClickException(str(e)) from None
