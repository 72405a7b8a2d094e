"""The commands erasure and hold release share (four eyes: vault/policy/approval.py): listing
the requests and withdrawing one's own, made once for each group by :func:`add_commands`."""

from __future__ import annotations

from collections.abc import Callable

import click

from vault.cli.common import (
    call_service,
    direct_caller,
    emit,
    json_option,
    open_vault,
    print_json,
    refuse_here,
    service_of,
)


def add_commands(group: click.Group, flow_name: str, what: str, covers: Callable[[dict], str]) -> None:
    """``requests`` and ``withdraw`` under ``group`` for the approval flow ``flow_name``
    ("erasure" or "release"); ``what`` names its requests in help and messages ("erasure",
    "hold release"), ``covers`` says in a few words what a request covers."""

    @group.command("requests")
    @click.option("--all", "everything", is_flag=True, help="Include expired, approved and withdrawn ones.")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def requests(ctx, everything, as_json):
        from vault.access import visible_requests
        from vault.identity import Forbidden
        from vault.policy.approval import BY_KEY

        client = service_of(ctx)
        if client is not None:
            found = call_service(client, "requests", {"flow": flow_name, "all": everything})
        else:
            with open_vault(ctx) as vault:
                action = f"list {what} requests"
                try:
                    caller = direct_caller(vault, None, action)
                    found = visible_requests(vault, caller, BY_KEY[flow_name], action, everything=everything)
                except Forbidden as e:
                    refuse_here(vault, e)
        if as_json:
            print_json(found)
            return
        for r in found:
            state = f"{r['state']} by {r['closed_by']}" if r["closed_by"] else r["state"]
            click.echo(
                f"{r['request']}  {state:<18} {r['requested_by']:<12} {r['requested_at']}  "
                f"expires {r['expires_at']}  {covers(r['covers'])}: {r['reason']}"
            )

    requests.help = f"List pending {what} requests."

    @group.command("withdraw")
    @click.argument("request_id")
    @json_option
    @click.pass_context
    def withdraw_(ctx, request_id, as_json):
        from vault.policy.approval import BY_KEY, RequestError, local_caller, withdraw
        from vault.recording import Unrecorded

        client = service_of(ctx)
        if client is not None:
            call_service(client, "withdraw", {"flow": flow_name, "request": request_id})
        else:
            with open_vault(ctx) as vault:
                try:
                    caller = local_caller(
                        vault, acting_for=None, action=f"withdraw {what} request {request_id}"
                    )
                    withdraw(vault, BY_KEY[flow_name], caller, request_id)
                except (PermissionError, RequestError, Unrecorded) as e:
                    raise click.ClickException(str(e)) from None
        emit(as_json, {"withdrawn": request_id, "flow": flow_name}, f"{what} request {request_id} withdrawn")

    withdraw_.help = f"Withdraw your own pending {what} request REQUEST_ID."
