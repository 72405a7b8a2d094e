"""vaultctl api-user: the web service's API users (Bonnie's JSON-RPC clients, e.g. Roundcube)."""

from __future__ import annotations

import click

from vault.cli.common import emit, json_option, load_config, print_json


def _users(ctx):
    from vault.web.apiusers import ApiUsers

    return ApiUsers.from_config(load_config(ctx))


def _read_secret_file(path: str | None) -> str | None:
    if path is None:
        return None
    from pathlib import Path

    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise click.ClickException(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{path} is not UTF-8 text") from None
    if not value:
        raise click.ClickException(f"{path} is empty")
    return value


@click.group("api-user")
def command():
    """API users of the web service ([web] listen): each has a password (HTTP Basic) and a
    secret (the key of X-Request-Sign), kept in [web] api_users_path, mode 0600."""


@command.command("add")
@click.argument("name")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    help="Read the password from this file (default: generated).",
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False),
    help="Read the secret from this file (default: generated).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def add(ctx, name, password_file, secret_file, as_json):
    """Add API user NAME; prints its password and secret once (they are not shown again)."""
    from vault.web.apiusers import ApiUserError

    users = _users(ctx)
    try:
        password, secret = users.add(name, _read_secret_file(password_file), _read_secret_file(secret_file))
    except ApiUserError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        print_json({"name": name, "password": password, "secret": secret})
        return
    click.echo(f"API user {name} added ({users.path})")
    click.echo(f"  password: {password}")
    click.echo(f"  secret:   {secret}")
    click.echo(
        "Roundcube: $config['kolab_bonnie_api'] = ['uri' => 'http://HOST:PORT/api/rpc', 'user' => ..., 'pass' => ..., 'secret' => ...];"
    )


@command.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_users(ctx, as_json):
    """The API users and when each was added (never their secrets)."""
    names = _users(ctx).names()
    if as_json:
        print_json(names)
        return
    for entry in names:
        click.echo(f"{entry['name']:<24} {entry['created'] or '-'}")


@command.command("remove")
@click.argument("name")
@json_option
@click.pass_context
def remove(ctx, name, as_json):
    """Remove API user NAME: its requests are refused from then on."""
    if not _users(ctx).remove(name):
        raise click.ClickException(f"no API user {name!r}")
    emit(as_json, {"removed": name}, f"API user {name} removed")
