"""vaultctl show: one archived message, exactly as archived, to stdout or a file."""

import sys

import click

from vault.cli.common import direct_caller, open_vault, print_json, refuse_here, service_of, service_stream


@click.command("show")
@click.argument("item")
@click.option("--to", "path", type=click.Path(dir_okay=False, writable=True), help="Write it to FILE (new).")
@click.option("--actor", help="Whom it is done for (admins only; default: yourself).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: what --to wrote, or the message in base64."
)
@click.pass_context
def command(ctx, item, path, actor, as_json):
    """Print ITEM (MAILBOXID:UIDVALIDITY:UID, as search and log print it) byte for byte, or
    write it to FILE. A read of mail: within what you may read, and recorded in the audit
    trail (mail.read). While the vault service runs it reads the message and this command
    writes it, as you."""
    from vault.access import mail_scope
    from vault.identity import Forbidden
    from vault.recording import Unrecorded
    from vault.restore.show import ShowError, show
    from vault.store.backends.base import StoreError

    client = service_of(ctx)
    if client is not None:
        with service_stream(client, "show", {"item": item, "acting_for": actor}) as body:
            data = body.read()
    else:
        with open_vault(ctx) as vault:
            caller = direct_caller(vault, actor, f"read {item}")
            try:
                data = show(vault, mail_scope(vault, caller, f"read {item}"), item, actor=caller.login)
            except Forbidden as e:
                refuse_here(vault, e)
            except (ShowError, StoreError, Unrecorded) as e:
                raise click.ClickException(str(e)) from None
    if path is None and as_json:
        import base64

        print_json({"item": item, "bytes": len(data), "base64": base64.b64encode(data).decode()})
        return
    if path is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    _write_new(path, data)
    if as_json:
        print_json({"item": item, "path": path, "bytes": len(data)})
    else:
        click.echo(f"{item}: {len(data)} bytes written to {path}", err=True)


def _write_new(path: str, data: bytes) -> None:
    import os

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as e:
        raise click.ClickException(f"{path}: {e.strerror or e}") from None
