"""vaultctl verify: prove the ledger and the blobs it references are intact."""

import sys

import click

from vault.cli import outcome
from vault.cli.common import print_json, progress


@click.command("verify")
@click.option("--read-data", is_flag=True, help="Also read and re-hash every blob.")
@click.option(
    "--repair",
    is_flag=True,
    help="First repair what can be: delete what interrupted purges left behind; rebuild "
    "damaged pack indexes (from their packs), catalog and search index (from the ledger).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(ctx, read_data, repair, as_json):
    """Check the hash chain, every signed checkpoint, that the ledger extends what its
    witnesses vouched for (asking them), and that every referenced blob is present (and,
    with --read-data, hashes back to its id). Exit 0 only when all holds; 3 when only some
    blobs are missing or corrupt, 1 when the ledger, a signature or a witness fails."""
    from vault.archive import Vault
    from vault.cli.common import call_service, load_config, service_of
    from vault.model import Problem
    from vault.verify import check_vault, unreadable_only

    client = service_of(ctx)
    repaired = None
    if repair:
        if client is not None:
            raise click.ClickException(
                "the vault service holds the vault: stop it to repair (it finishes an interrupted "
                "purge itself whenever it starts)"
            )
        from vault.verify import repair as repair_vault

        repaired = repair_vault(load_config(ctx))
        if not as_json:
            click.echo(f"repaired: {repaired['purged_blobs_deleted']} blob(s) of purged items deleted")
            for pack in repaired.get("pack_indexes", []):
                click.echo(f"repaired: pack index of {pack} rebuilt from the pack")
            for pack in repaired.get("packs_rewritten", []):
                click.echo(f"repaired: pack {pack} (its sealed index damaged) written again as a new pack")
            if "catalog" in repaired:
                click.echo(
                    f"repaired: catalog rebuilt from the ledger ({repaired['catalog']} problem(s) found)"
                )
            if "index" in repaired:
                click.echo(
                    f"repaired: search index rebuilt from the ledger ({repaired['index']} document(s))"
                )
    if client is not None:  # the service verifies (an auditor cannot read the home itself)
        answer = call_service(client, "verify", {"read_data": read_data})
        problems = [Problem(p["where"], p["what"]) for p in answer["problems"]]
        size, witnesses = answer["entries"], answer.get("witnesses", 0)
        messages_only = bool(answer.get("unreadable_only"))
    else:
        with Vault.open(load_config(ctx), catch_up=False, check_witnesses=False) as vault:
            with progress("verifying", None, enabled=not as_json) as advance:
                problems = check_vault(vault, read_data=read_data, progress=advance)
            size, witnesses = vault.ledger.size, len(vault.witnesses.witnesses)
            messages_only = unreadable_only(vault, problems)
    witnessed = f", consistent with its {witnesses} witness(es)" if witnesses else ""
    if as_json:
        print_json(
            {
                "ok": not problems,
                "entries": size,
                **({"repaired": repaired} if repaired is not None else {}),
                "problems": [{"where": p.where, "what": p.what} for p in problems],
            }
        )
    elif problems:
        click.echo(f"FAILED: {len(problems)} problem(s); first: {problems[0]}", err=True)
        for p in problems[1:20]:
            click.echo(f"  {p}", err=True)
    else:
        click.echo(
            f"ok: {size} ledger entries, chain and signatures intact{witnessed}, "
            f"every referenced blob present{' and re-hashed' if read_data else ''} and listed by "
            "a pack index that matches its pack; catalog and search index match the ledger"
        )
    if problems:  # 3: the ledger holds, some messages cannot be read; 1: the vault is broken
        sys.exit(outcome.PARTIAL if messages_only else outcome.FATAL)
