"""vaultctl erase: data-subject erasure, four eyes: one admin requests, another approves."""

import click

from vault.cli.common import call_service, load_config, open_vault, print_json, service_of
from vault.cli.confirm import confirm_removal, yes_option
from vault.cli.four_eyes import add_commands


@click.group("erase", invoke_without_command=True)
@click.option("--custodian", help="The user whose archived mail is erased.")
@click.option("--query", help="Erase the mail this search finds (with --custodian: only theirs).")
@click.option("--reason", help="Why (required): the ticket, the legal basis.")
@click.option("--dry-run", is_flag=True, help="Show exactly the items it would remove; record nothing.")
@click.option("--actor", help="Whom the request is made for (admins only; default: yourself).")
@click.option("--json", "as_json", is_flag=True)
@yes_option
@click.pass_context
def command(ctx, custodian, query, reason, dry_run, actor, as_json, yes):
    """Request the erasure of every item of CUSTODIAN (or matching QUERY): prints the request
    id, for another admin to 'vaultctl erase approve ID'. The approval purges what the request
    covered and writes a certificate (ids and hashes, no content) to the ledger. Refused,
    naming the holds, while any hold applies. Requests expire after [policy] request_expiry."""
    if ctx.invoked_subcommand is not None:
        if custodian or query or reason or dry_run or actor or yes:
            raise click.UsageError(f"'erase {ctx.invoked_subcommand}' takes its own options only")
        return
    if not custodian and not query:
        raise click.UsageError("give --custodian, --query, or both (or: approve, requests, withdraw)")
    if not reason and not dry_run:
        raise click.UsageError("an erasure request needs --reason")
    if not dry_run:
        try:  # what it will cover, first; any refusal is the request's own to record and say
            preview = _request(ctx, custodian, query, reason, True, actor)
        except click.ClickException:
            preview = None
        if preview and preview["items"]:
            confirm_removal(
                f"an erasure request for {preview['describe']} would cover {len(preview['items'])} "
                f"item(s), {preview['blobs']} blob(s), erased once another admin approves it",
                [f"{i['item']}  {i['mailbox']}  {i['internal_date'] or ''}" for i in preview["items"]],
                yes,
            )
    _print_request(_request(ctx, custodian, query, reason, dry_run, actor), dry_run, as_json)


def _request(ctx, custodian, query, reason, dry_run: bool, actor) -> dict:
    """An erasure request (or its dry run), by the service while it runs, else here."""
    client = service_of(ctx)
    if client is not None:  # the service records the request (or refuses it) with its writer
        params = {"custodian": custodian, "query": query, "reason": reason, "dry_run": dry_run}
        return call_service(client, "erase", {**params, "acting_for": actor})
    from vault.index.query import QuerySyntaxError
    from vault.policy.approval import RequestError, local_caller
    from vault.policy.erase import ErasureRefused, request_erasure
    from vault.recording import Unrecorded

    with open_vault(ctx) as vault:
        try:
            caller = local_caller(vault, acting_for=actor, action="request an erasure")
            asked = request_erasure(
                vault, caller, custodian, query=query, reason=reason or "", dry_run=dry_run
            )
        except QuerySyntaxError as e:
            raise click.ClickException(f"bad query: {e}") from None
        except (
            ErasureRefused,
            FileNotFoundError,
            PermissionError,
            RequestError,
            Unrecorded,
            ValueError,
        ) as e:
            raise click.ClickException(str(e)) from None
    return asked.to_json()


def _print_request(asked: dict, dry_run: bool, as_json: bool) -> None:
    """An erasure request (or its dry run), made here or by the service."""
    if as_json:
        print_json({**asked, "dry_run": dry_run})
        return
    what = f"{len(asked['items'])} item(s), {asked['blobs']} blob(s) of {asked['describe']}"
    if dry_run:
        click.echo(f"dry run: an erasure request would cover {what}; nothing recorded")
    else:
        click.echo(f"erasure request {asked['request']} recorded: covers {what}")
    for i in asked["items"]:
        click.echo(f"  {i['item']}  {i['mailbox']}  {i['internal_date'] or ''}")
    if not dry_run:
        click.echo(
            f"another admin approves it with: vaultctl erase approve {asked['request']}  "
            f"(expires {asked['expires_at']})"
        )


@command.command("approve")
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True)
@yes_option
@click.pass_context
def approve(ctx, request_id, as_json, yes):
    """Approve erasure request REQUEST_ID (made by another admin) and erase what it covered
    and no hold protects; needs the vault's writer lock."""
    from vault.archive import Vault, VaultBusy
    from vault.policy.approval import RequestError, local_caller
    from vault.policy.erase import ErasureRefused, approve_erasure
    from vault.recording import Unrecorded

    pending = [r for r in _pending(ctx) if r["request"] == request_id]
    if pending:  # an unknown request: the approval says so (and records the refusal)
        covers = pending[0]["covers"]
        confirm_removal(
            f"approving erasure request {request_id} erases {_covers(covers)} for good",
            list(covers.get("items") or []),
            yes,
        )
    client = service_of(ctx)
    if client is not None:  # the service erases with its writer; its answer or refusal comes back
        cert = call_service(client, "erase.approve", {"request": request_id})
    else:
        try:
            vault = Vault.open(load_config(ctx), writer=True)
        except VaultBusy as e:  # an erasure must answer now (refused or certified)
            raise click.ClickException(
                f"{e}. Another command writes the vault and no vault service answers (with "
                "'vaultctl serve' running, the service erases with its writer)"
            ) from None
        with vault:
            try:
                caller = local_caller(vault, acting_for=None, action=f"approve erasure request {request_id}")
                cert = approve_erasure(vault, caller, request_id)
            except (ErasureRefused, FileNotFoundError, PermissionError, RequestError, Unrecorded) as e:
                raise click.ClickException(str(e)) from None
    if as_json:
        print_json(cert)
        return
    whose = " and ".join(x for x in (cert["custodian"], cert["query"] and repr(cert["query"])) if x)
    gone = f" ({len(cert['already_gone'])} purged since the request)" if cert["already_gone"] else ""
    click.echo(
        f"erasure request {cert['request']} approved: erased {len(cert['items'])} item(s) of {whose}{gone}; "
        f"{cert['blobs_deleted']} blob(s) deleted; certificate recorded in the ledger"
    )


def _pending(ctx) -> list[dict]:
    """The pending erasure requests this caller may see (none when they may see none)."""
    from vault.access import visible_requests
    from vault.identity import Forbidden
    from vault.policy.approval import BY_KEY, local_caller

    client = service_of(ctx)
    try:
        if client is not None:
            return call_service(client, "requests", {"flow": "erasure", "all": False})
        with open_vault(ctx) as vault:
            caller = local_caller(vault, acting_for=None, action="list erasure requests")
            return visible_requests(
                vault, caller, BY_KEY["erasure"], "list erasure requests", everything=False
            )
    except (click.ClickException, Forbidden, PermissionError):
        return []


def _covers(c: dict) -> str:
    whose = " and ".join(x for x in (c.get("custodian"), c.get("query") and repr(c["query"])) if x)
    return f"{len(c.get('items') or [])} item(s) of {whose}"


add_commands(command, "erasure", "erasure", _covers)
