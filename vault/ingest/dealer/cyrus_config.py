"""What Cyrus needs in imapd.conf and cyrus.conf to send its events to the dealer.

Computed from a home's ``[dealer]`` section (``mode``, ``listen_path``, ``hook_path``,
``notifyd_socket``, ``socket_owner``, ``spool_path``) and ``[collector] imapd_conf``. The
one source of these lines: ``vaultctl cyrus-config`` prints them for the admin, and the Cyrus
test harness (vault/testing/cyrus_server.py) writes them into the servers the tests run, so
the tests run exactly what the admin pastes.

| mode | imapd.conf | cyrus.conf SERVICES |
|---|---|---|
| stream | ``notifysocket: dlist:<listen_path>`` | nothing: imapd/lmtpd connect to the dealer |
| socket | ``notifysocket: <listen_path>`` | nothing: imapd/lmtpd send datagrams to the dealer |
| external | ``notifysocket: <notifyd_socket>``, ``notify_external: <hook_path>`` | notifyd on ``notifyd_socket`` |

Every mode also sets ``event_notifier: external`` (it turns events on; in socket and stream
mode the word is only the METHOD field of each event), ``event_groups`` and
``event_extra_params``: what the handlers rely on (docs/architecture.md section 5). And
whatever the mode, ``unixhierarchysep: yes`` (REQUIRED_IMAPD): the archive's folder names use
``/``, the collector names folders that way, and it refuses a server set otherwise (Debian's
imapd.conf says ``no``). And ``sync_log: 1`` with ``sync_log_channels: vault``
(SYNC_LOG_CHANNEL): Cyrus then appends a line naming each changed mailbox or user to
``<configdirectory>/sync/vault/log``, whether the vault listens or not; the collector reads
it (vault/ingest/cyrus/sync_log.py) so that nothing an event missed stays missed. A server
that already replicates lists both channels (``sync_log_channels: replica vault``).
"""

from __future__ import annotations

import grp
import pwd
from dataclasses import dataclass
from pathlib import Path

from vault.config import Config
from vault.ingest.cyrus.spool import CyrusSpoolError, read_imapd_conf
from vault.ingest.cyrus.sync_log import CHANNEL
from vault.ingest.dealer.dealer import MODES

# `mailbox` brings MailboxCreate/Delete/Rename, and with them a MailboxModseq at every mailbox
# commit (no setting turns that one off alone); the dealer drops those (spool.DROPPED_EVENTS).
EVENT_GROUPS = "message quota flags access mailbox subscription"
# What the handlers and the broker read, and nothing else: every parameter is built, JSON-encoded
# and sent by Cyrus for each event, and parsed, journalled and shipped by us
# (bench/cyrus_events_bench.py measures it). Who reads each:
#   clientAddress      Login/Logout: clientIP, clientPort (handlers/sessions.py)
#   diskUsed           QuotaChange (handlers/mailboxes.py: QUOTA_FIELDS)
#   flagNames          MessageNew/MessageAppend: the flags a message arrives with
#   service            message.appended's data, sessions
#   timestamp          every entry's time (handlers/event.py: Event.time)
#   vnd.cmu.midset     the Message-ID when the message has none of its own to read
#   vnd.cmu.sessionId  every entry's session; Login/Logout pairing
#   vnd.cmu.mailboxACL, vnd.cmu.mbtype  folder.acl, folder.created (3.6 fills both anyway)
#   vnd.cmu.emailid    message.appended's data
# Not asked for (3.6 can add them; nothing reads them): bodyStructure and vnd.cmu.envelope
# (cache items copied into every MessageNew: ~400 of its 968 bytes), messageSize, messages,
# modseq, uidnext, vnd.cmu.unseenMessages, vnd.cmu.threadid, messageContent (accepted but
# never emitted for LMTP or APPEND).
EVENT_EXTRA_PARAMS = (
    "clientAddress diskUsed flagNames service timestamp vnd.cmu.midset vnd.cmu.sessionId "
    "vnd.cmu.mailboxACL vnd.cmu.mbtype vnd.cmu.emailid"
)
# Where Cyrus's tools look for imapd.conf without -C.
DEFAULT_IMAPD_CONF = "/etc/imapd.conf"
# What vault needs of Cyrus besides the notification lines, and why (for the admin).
SYNC_LOG_CHANNEL = CHANNEL
REQUIRED_IMAPD = ["unixhierarchysep: yes", "sync_log: 1", f"sync_log_channels: {SYNC_LOG_CHANNEL}"]
WHY = {
    "unixhierarchysep": "vault's folder names use '/'; IMAP clients then see '/' as the separator too",
    "sync_log": "Cyrus logs every changed mailbox durably: what the collector reconciles, events or not",
    "sync_log_channels": f"the log vault reads is sync/{SYNC_LOG_CHANNEL}/log (add {SYNC_LOG_CHANNEL} to channels you have)",
}


@dataclass(frozen=True)
class CyrusLines:
    mode: str
    imapd: list[str]  # imapd.conf lines, "key: value"
    services: list[str]  # cyrus.conf SERVICES entries (notifyd in external mode)
    ownership: list[str]  # what user cyrus must be able to reach, one sentence each

    def imapd_settings(self) -> dict[str, str]:
        return dict(line.split(": ", 1) for line in self.imapd)


def cyrus_lines(config: Config) -> CyrusLines:
    """The lines for ``config``'s ``[dealer] mode``."""
    d = config["dealer"]
    mode = d["mode"]
    if mode not in MODES:
        raise ValueError(f"unknown [dealer] mode {mode!r} (one of {', '.join(MODES)})")
    owner = d["socket_owner"] or "cyrus"
    who = _user_and_group(owner)
    imapd = [*REQUIRED_IMAPD, "event_notifier: external"]
    services: list[str] = []
    if mode == "external":
        notifyd = Path(d["notifyd_socket"])
        hook = config.path("dealer", "hook_path").absolute()
        spool = config.path("dealer", "spool_path").absolute()
        conf = config["collector"]["imapd_conf"]
        option = "" if conf == DEFAULT_IMAPD_CONF else f" -C {conf}"  # each cmd needs its own -C
        imapd += [f"notifysocket: {notifyd}", f"notify_external: {hook}"]
        services.append(f'notify    cmd="notifyd{option}" listen="{notifyd}" proto="udp" prefork=1')
        ownership = [
            f"notifyd runs {hook} as {owner}, once per event: 'vaultctl dealer install-hook' writes "
            f"it and gives the spool {spool} to {who}, mode 0750",
            f"{owner} needs search (x) permission on {hook.parent} and every directory above it",
        ]
    else:
        listen = config.path("dealer", "listen_path").absolute()
        imapd.append(f"notifysocket: {'dlist:' if mode == 'stream' else ''}{listen}")
        ownership = [
            f"the dealer ('vaultctl dealer serve') binds {listen} mode 0660 and gives it to {who} "
            "([dealer] socket_owner): imapd and lmtpd connect to it as that user",
            f"{owner} needs search (x) permission on {listen.parent} and every directory above it",
        ]
    imapd += [f"event_groups: {EVENT_GROUPS}", f"event_extra_params: {EVENT_EXTRA_PARAMS}"]
    return CyrusLines(mode, imapd, services, ownership)


def conflicts(lines: CyrusLines, imapd_conf: Path | str) -> list[tuple[str, str, str]]:
    """``(key, value now, value wanted)`` for each line ``imapd_conf`` already sets otherwise
    (replace those lines: Cyrus reads one value per key). Empty when the file is unreadable."""
    try:
        current = read_imapd_conf(imapd_conf)
    except CyrusSpoolError:
        return []
    return [
        (key, current[key], wanted)
        for key, wanted in lines.imapd_settings().items()
        if key in current and current[key] != wanted
    ]


def _user_and_group(user: str) -> str:
    """``user:group`` (its primary group), or ``user`` when this host has no such user."""
    try:
        gid = pwd.getpwnam(user).pw_gid
        return f"{user}:{grp.getgrgid(gid).gr_name}"
    except KeyError:
        return user
