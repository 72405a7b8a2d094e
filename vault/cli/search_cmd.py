"""vaultctl search: find archived mail; optionally export it with a verifiable manifest."""

import click

from vault.cli.common import (
    call_service,
    direct_caller,
    load_config,
    print_json,
    print_table,
    refuse_here,
    service_of,
    service_stream,
)
from vault.cli.outcome import finish


@click.command("search")
@click.argument("query")
@click.option("--custodian", help="Only mail held by this user.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=0), help="Hits to print.")
@click.option(
    "--offset", default=0, show_default=True, type=click.IntRange(min=0), help="Hits to skip first."
)
@click.option("--at", "at", help="The time is:flagged/seen/deleted are judged at (default: now).")
@click.option(
    "--output",
    type=click.Choice(["items", "messageids", "files"]),
    help="One per line instead of the table: every copy's item id, each hit's Message-ID, or "
    "the source each copy was imported from.",
)
@click.option(
    "--export",
    "export_path",
    type=click.Path(file_okay=False),
    help="Export the results to this new directory.",
)
@click.option("--format", "fmt", type=click.Choice(["eml", "mbox"]), default="eml", show_default=True)
@click.option("--dedupe", is_flag=True, help="One copy per distinct message content.")
@click.option(
    "--load-file",
    type=click.Choice(["concordance", "edrm"]),
    help="With --export: a review platform's load file (Concordance DAT or EDRM XML 1.2), "
    "natives and extracted text.",
)
@click.option("--prefix", default="", help="Control-number prefix for --load-file (e.g. ABC).")
@click.option("--start", default=1, show_default=True, type=int, help="First control number.")
@click.option("--actor", help="Whom it is done for (admins only; default: yourself); recorded beside you.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def command(
    ctx,
    query,
    custodian,
    limit,
    offset,
    at,
    output,
    export_path,
    fmt,
    dedupe,
    load_file,
    prefix,
    start,
    actor,
    as_json,
):
    """Search with from: to: cc: bcc: subject: body: filename: has:attachment size:>1M
    before: after: in: custodian: messageid: is:flagged is:seen is:deleted, word* prefixes,
    "phrases", AND OR NOT ( ). Hits whose every copy is expunged are marked. Every search
    and export is recorded in the ledger."""
    from vault.access import export_scope, mail_scope
    from vault.archive import VaultBusy
    from vault.derived import DerivedStateError, open_current
    from vault.identity import Forbidden
    from vault.index.indexer import Hit, IndexBusy, IndexOutdated
    from vault.index.query import QuerySyntaxError
    from vault.model import format_time, parse_time
    from vault.recording import Unrecorded
    from vault.search import search

    if load_file is None and (prefix or start != 1):
        raise click.UsageError("--prefix and --start number the documents of a --load-file")
    if load_file and not export_path:
        raise click.UsageError("--load-file needs --export DIR")
    if export_path and (output or offset):
        raise click.UsageError("--output and --offset page through hits; an export takes them all")
    try:
        when = format_time(parse_time(at)) if at else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--at") from None
    client = service_of(ctx)
    if client is not None and export_path:  # the service exports within this caller's scope, streamed
        from pathlib import Path

        from vault.restore.stream import StreamError, check_new_directory, extract_export

        try:
            check_new_directory(Path(export_path))  # before the service does the work
        except StreamError as e:
            raise click.ClickException(str(e)) from None
        params = {"query": query, "custodian": custodian, "format": fmt, "dedupe": dedupe, "at": when}
        params.update(path=str(Path(export_path).resolve()), acting_for=actor)
        if load_file:
            params.update(load_file=load_file, prefix=prefix, start=start)
        with service_stream(client, "export", params) as body:
            try:
                head = extract_export(body, Path(export_path))
            except (StreamError, OSError) as e:
                raise click.ClickException(str(e)) from None
        _print_export({**head, "path": export_path}, as_json)
        return
    if client is not None:  # the service searches within what this caller may see, and audits it
        params = {"query": query, "custodian": custodian, "limit": limit, "offset": offset, "at": when}
        found = call_service(client, "search", {**params, "acting_for": actor})
        _print_hits(found["total"], [Hit(**h) for h in found["hits"]], as_json, output, offset)
        return
    config = load_config(ctx)
    try:  # never answered from a catalog or an index behind the ledger or damaged
        vault, index = open_current(config, with_index=True)
    except (DerivedStateError, IndexOutdated, VaultBusy) as e:
        raise click.ClickException(str(e)) from None
    with vault:
        caller = direct_caller(vault, actor, "export mail" if export_path else "search mail")
        try:
            if export_path:
                from vault.restore.export import ExportError, search_and_export
                from vault.restore.loadfile import Production

                production = Production(load_file, prefix, start) if load_file else None
                try:
                    scope = export_scope(vault, caller, custodian)
                    report = search_and_export(
                        vault,
                        index,
                        query,
                        export_path,
                        fmt,
                        custodian=custodian,
                        dedupe=dedupe,
                        actor=caller.login,
                        scope=scope,
                        production=production,
                        at=when,
                    )
                except ExportError as e:
                    raise click.ClickException(str(e)) from None
                _print_export(report.__dict__, as_json)
                return
            scope = mail_scope(vault, caller, f"search {custodian}'s mail" if custodian else "search mail")
            found = search(
                vault,
                index,
                query,
                custodian=custodian,
                limit=limit,
                offset=offset,
                at=when,
                actor=caller.login,
                scope=scope,
            )
        except Forbidden as e:
            refuse_here(vault, e)
        except QuerySyntaxError as e:
            raise click.ClickException(f"bad query: {e}") from None
        except IndexBusy as e:
            # the audit entry's writer found the index held by another writer (a rebuild)
            raise click.ClickException(f"{e}; try again when it has finished") from None
        except (IndexOutdated, Unrecorded) as e:
            raise click.ClickException(str(e)) from None
    _print_hits(found.total, found.hits, as_json, output, offset)


def _print_export(report: dict, as_json: bool) -> None:
    fields = ("path", "messages", "items", "manifest_sha256", "audit", "documents", "load_file", "unreadable")
    unreadable = report.get("unreadable") or []
    if as_json:
        print_json({k: report[k] for k in fields if k in report})
        finish(len(unreadable))
        return
    click.echo(
        f"exported {report['items']} item(s) in {report['messages']} file(s) to {report['path']}; "
        f"manifest sha256 {report['manifest_sha256']}"
    )
    if report.get("load_file"):
        click.echo(
            f"{report['load_file']} load file: {report['documents']} document(s) "
            "(messages and attachments), natives and text; no images, so no OPT file"
        )
    for u in unreadable:
        click.echo(f"  unreadable: {u['item']}: {u['reason']}", err=True)
    if unreadable:
        click.echo(
            f"{len(unreadable)} message(s) could not be read and were left out of the export", err=True
        )
    finish(len(unreadable))


def _lines(hits: list, output: str) -> list[str]:
    """--output: every copy's item id, each hit's Message-ID, or every copy's source."""
    if output == "items":
        return [i for h in hits for i in h.item_ids]
    if output == "messageids":
        return [h.message_id for h in hits if h.message_id]
    return [s for h in hits for s in h.sources]


def _print_hits(total: int, hits: list, as_json: bool, output: str | None = None, offset: int = 0) -> None:
    if output and as_json:
        print_json({"total": total, "offset": offset, output: _lines(hits, output)})
        return
    if output:
        for line in _lines(hits, output):
            click.echo(line)
        return
    if as_json:
        print_json({"total": total, "offset": offset, "hits": [h.__dict__ for h in hits]})
        return
    print_table(
        ["date", "from", "subject", "custodians / folders", "item"],
        [
            [
                (h.date or "")[:16],
                h.from_[:40],
                h.subject[:60] + (" [expunged]" if h.expunged else ""),
                ", ".join(h.folders),
                "\n".join(h.item_ids),
            ]
            for h in hits
        ],
    )
    shown = f"{offset + 1}-{offset + len(hits)}" if hits else "none"
    click.echo(f"{shown} of {total} shown" if offset else f"{len(hits)} of {total} shown")
