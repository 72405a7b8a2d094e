"""A legal hold reaches Cyrus: placing one sets ``/vendor/cmu/cyrus-imapd/noexpire_until`` on
each custodian's live INBOX (Cyrus 3.10+ then keeps their expunged and deleted data while
it is set; ``0``: until removed), through the collector; releasing the last hold on that
INBOX puts back the value it had. A server that refuses the entry (3.6 in Debian 12:
"Permission denied") is named in the hold's notes: there, what Cyrus expunges is kept only
by the archive. Only INBOXes live ingest knows are asked (an imported custodian has no
server to tell). What was there before is kept in ``cyrus-holds.json`` in the home:
``{mailbox: {"previous": value or null, "matters": [...]}}``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from vault.durable import write_file

log = logging.getLogger(__name__)

STATE = "cyrus-holds.json"
FOREVER = "0"


def _live_inboxes(vault, custodians) -> list[str]:
    out = []
    for custodian in custodians:
        name = f"user/{custodian}"
        mailbox_id = vault.catalog.folder_id(name, exact=True)
        if mailbox_id and vault.catalog.has_events_for(mailbox_id):
            out.append(name)
    return out


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, OSError) as e:
        log.warning("%s unreadable (%s): previous noexpire_until values unknown", path, e)
        return {}


def _save(path: Path, state: dict) -> None:
    write_file(path, json.dumps(state, sort_keys=True).encode())


def _client(config):
    from vault.ingest.collector.client import CollectorClient

    return CollectorClient.from_config(config)


def reach_cyrus(vault, matter: str, custodians, *, placing: bool) -> list[str]:
    """Tell Cyrus about hold ``matter`` on ``custodians`` (placed, or released); one note a
    mailbox saying what Cyrus now does, or why it does not."""
    from vault.ingest.collector.client import CollectorError, CollectorRefused, MailboxUnknown

    path = Path(vault.config.home) / STATE
    state = _load(path)
    inboxes = (
        _live_inboxes(vault, custodians)
        if placing
        else [m for m, s in state.items() if matter in s["matters"]]
    )
    if not inboxes:
        return []
    notes = []
    try:
        with _client(vault.config) as client:
            for inbox in inboxes:
                held = state.get(inbox)
                if placing:
                    if held is None:
                        answer = client.noexpire(inbox, FOREVER)
                        if not answer["supported"]:
                            notes.append(
                                f"Cyrus does not keep {inbox}'s expunged and deleted mail for this hold: the server "
                                f"refused noexpire_until ({answer['reason']}; Cyrus 3.10 and later have it); "
                                "the archive keeps what it holds"
                            )
                            continue
                        held = state[inbox] = {"previous": answer["previous"], "matters": []}
                    held["matters"] = sorted({*held["matters"], matter})
                    notes.append(
                        f"Cyrus keeps {inbox}'s expunged and deleted mail while held (noexpire_until)"
                    )
                else:
                    held = state[inbox]
                    held["matters"] = [m for m in held["matters"] if m != matter]
                    if held["matters"]:
                        notes.append(
                            f"{inbox} stays under noexpire_until: held by {', '.join(held['matters'])}"
                        )
                        continue
                    client.noexpire(inbox, held["previous"] or "")
                    del state[inbox]
                    notes.append(
                        f"{inbox}'s noexpire_until put back as it was ({held['previous'] or 'none'})"
                    )
    except (CollectorError, CollectorRefused, MailboxUnknown) as e:
        notes.append(f"Cyrus not told of the hold ({e}): noexpire_until unchanged")
    finally:
        _save(path, state)
    return notes
