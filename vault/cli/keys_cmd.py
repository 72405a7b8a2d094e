"""vaultctl keys: CURVE key pairs of this home's components and the allow-lists of its
servers (vault/curve/keys.py)."""

from __future__ import annotations

from pathlib import Path

import click

from vault.cli.common import emit, home_of, json_option, print_json

# a z85 key may begin with '-': taken as the argument it is, not an unknown option
KEY_ARGUMENT = {"ignore_unknown_options": True}
RELOAD_HINT = "the server reads it on SIGHUP: kill -HUP the vault service (dealers, workers) or the collector"


@click.group("keys")
def command():
    """CURVE keys for the ZeroMQ links (dealer -> broker, workers -> broker and collector)."""


def _fail(e: Exception):
    raise click.ClickException(str(e)) from None


@command.command("init")
@click.argument("component", type=click.Choice(["broker", "collector", "dealer", "worker"]), required=False)
@json_option
def init(component, as_json):
    """Make COMPONENT's key pair in this home (kept if it has one) and print its public key:
    give it to the other side of its link. Without COMPONENT: every pair this home's role
    needs, as 'vaultctl init' makes them (for a home made before CURVE)."""
    from vault.cli.common import host_config
    from vault.curve.keys import CurveError, fingerprint, init_home_keys, init_key

    ctx = click.get_current_context()
    try:
        if component is None:
            made = init_home_keys(home_of(ctx), host_config(ctx).role)
            lines = [f"{name:10} {public.decode()}  {fingerprint(public)}" for name, public in made.items()]
            emit(as_json, {name: public.decode() for name, public in made.items()}, lines)
            return
        public, created = init_key(home_of(ctx), component)
    except (CurveError, OSError) as e:
        _fail(e)
    if as_json:
        emit(True, {"component": component, "public_key": public.decode(), "created": created}, "")
        return
    click.echo(
        f"{component} key {'created' if created else 'exists'} ({fingerprint(public)}); public key:", err=True
    )
    click.echo(public.decode())


@command.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx, as_json):
    """This home's public keys and the clients each allow-list lets in."""
    from vault.curve.keys import ALLOW_LISTS, inventory

    found = inventory(home_of(ctx))
    if as_json:
        print_json(found)
        return
    for component, k in found["keys"].items():
        click.echo(f"{component:10} {k['public_key']}  {k['fingerprint']}")
    if not found["keys"]:
        click.echo("no CURVE keys in this home (vaultctl keys init COMPONENT)")
    for server, k in found["servers"].items():
        if k["public_key"] != found["keys"].get(server, {}).get("public_key"):
            click.echo(f"{server + ' at':10} {k['public_key']}  {k['fingerprint']}  (keys server)")
    served = {"dealers": "broker", "workers": "broker", "collector": "collector"}
    for name, clients in found["trusted"].items():
        if not clients and served[name] not in found["keys"]:
            continue  # no server of it in this home
        click.echo(f"allow-list {name} ({ALLOW_LISTS[name]}):")
        for client, k in clients.items():
            click.echo(f"  {client:20} {k['public_key']}  {k['fingerprint']}")
        if not clients:
            click.echo("  (nobody)")


@command.command("server", context_settings=KEY_ARGUMENT)
@click.argument("server", type=click.Choice(["broker", "collector"]))
@click.argument("public_key")
@json_option
@click.pass_context
def server(ctx, server, public_key, as_json):
    """Record SERVER's PUBLIC_KEY (printed by 'keys show' on its host) for this home's clients:
    the broker's for the dealer and workers, the collector's for workers and reconcile."""
    from vault.curve.keys import CurveError, fingerprint, set_server_key

    try:
        path = set_server_key(home_of(ctx), server, _key_text(public_key))
    except (CurveError, OSError) as e:
        _fail(e)
    done = {"server": server, "fingerprint": fingerprint(path.read_bytes().strip()), "path": str(path)}
    emit(as_json, done, f"{server} key {done['fingerprint']}: {path}")
    click.echo("restart this home's clients of it (dealer, workers) to use it", err=True)


def _key_text(argument: str) -> str:
    """A key given as its text, or as a .pub file."""
    if len(argument) != 40 and Path(argument).is_file():
        return Path(argument).read_text(encoding="ascii", errors="replace")
    return argument


@command.command("trust", context_settings=KEY_ARGUMENT)
@click.argument("allow_list", metavar="LIST", type=click.Choice(["dealers", "workers", "collector"]))
@click.argument("name")
@click.argument("public_key")
@json_option
@click.pass_context
def trust(ctx, allow_list, name, public_key, as_json):
    """Let client NAME with PUBLIC_KEY (the text 'keys init' printed, or a .pub file) in on
    this home's LIST: dealers or workers (the broker) or collector."""
    from vault.curve.keys import CurveError, fingerprint
    from vault.curve.keys import trust as add

    try:
        path = add(home_of(ctx), allow_list, name, _key_text(public_key))
    except (CurveError, OSError) as e:
        _fail(e)
    done = {"trusted": name, "list": allow_list, "fingerprint": fingerprint(path.read_bytes().strip())}
    emit(
        as_json,
        {**done, "path": str(path)},
        f"trusted {name} ({done['fingerprint']}) on {allow_list}: {path}",
    )
    click.echo(RELOAD_HINT, err=True)


@command.command("revoke")
@click.argument("allow_list", metavar="LIST", type=click.Choice(["dealers", "workers", "collector"]))
@click.argument("name")
@json_option
@click.pass_context
def revoke(ctx, allow_list, name, as_json):
    """Remove client NAME from this home's LIST; after the server's SIGHUP it gets nothing
    more, connected or not."""
    from vault.curve.keys import CurveError
    from vault.curve.keys import revoke as remove

    try:
        path = remove(home_of(ctx), allow_list, name)
    except (CurveError, OSError) as e:
        _fail(e)
    done = {"revoked": name, "list": allow_list, "removed": str(path)}
    emit(as_json, done, f"revoked {name} on {allow_list} ({path} removed)")
    click.echo(RELOAD_HINT, err=True)
