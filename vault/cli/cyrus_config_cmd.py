"""vaultctl cyrus-config: the imapd.conf and cyrus.conf lines that send Cyrus's events to
this home's dealer (vault/ingest/dealer/cyrus_config.py computes them)."""

from __future__ import annotations

import click

from vault.cli.common import host_config, json_option, print_json


@click.command("cyrus-config")
@click.option("--imapd", "imapd_only", is_flag=True, help="Only the imapd.conf lines, without comments.")
@json_option
@click.pass_context
def command(ctx, imapd_only, as_json):
    """Print what to put in Cyrus's imapd.conf and cyrus.conf for [dealer] mode, and what user
    cyrus must be able to reach. Lines that imapd.conf ([collector] imapd_conf) already sets
    otherwise are named: replace them."""
    import textwrap

    from vault.config import CONFIG_NAME
    from vault.ingest.dealer.cyrus_config import WHY, conflicts, cyrus_lines

    config = host_config(ctx)
    try:
        lines = cyrus_lines(config)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        clash = conflicts(lines, config["collector"]["imapd_conf"])
        print_json(
            {
                "mode": lines.mode,
                "imapd_conf": config["collector"]["imapd_conf"],
                "imapd": lines.imapd,
                "replace": [{"key": key, "now": now} for key, now, _ in clash],
                "cyrus_conf_services": lines.services,
                "ownership": lines.ownership,
            }
        )
        return
    if imapd_only:
        click.echo("\n".join(lines.imapd))
        return
    source = config.home / CONFIG_NAME
    where = str(source.absolute()) if source.exists() else f"the defaults: no {source}"
    imapd_conf = config["collector"]["imapd_conf"]
    out = [f'# {imapd_conf}: what vault needs ([dealer] mode = "{lines.mode}", from {where})']
    out += lines.imapd
    clash = conflicts(lines, imapd_conf)
    if clash:
        out.append(f"# {imapd_conf} now has, for the same keys (replace these lines):")
        out += [f"#   {key}: {now}" + (f"  ({WHY[key]})" if key in WHY else "") for key, now, _ in clash]
    out.append("")
    if lines.services:
        out.append("# cyrus.conf, inside SERVICES { }:")
        out += [f"  {service}" for service in lines.services]
    else:
        out.append(f"# cyrus.conf: nothing to add ({lines.mode} mode: imapd and lmtpd reach the dealer)")
    out.append("")
    out.append("# ownership:")
    for sentence in lines.ownership:
        out += textwrap.wrap(
            sentence, 96, initial_indent="# - ", subsequent_indent="#   ", break_on_hyphens=False
        )
    click.echo("\n".join(out))
