"""Queue-ID chasing: a message's path through the mail system, from the imported mail logs,
and the archived copies it ended up as.

Hops link by queue ID within a host, to the next queue ID by ``queued as QID`` (on whichever
host logged that ID: the relay), to a bounce by ``sender non-delivery notification: QID``,
across hosts and programs by Message-ID, and to the archive by Message-ID, confirmed by the
LMTP ``SESSIONID=<...>`` that equals the archived MessageNew event's ``vnd.cmu.sessionId``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vault.trace.hops import MaillogStore
from vault.trace.maillog import Hop

_QID = re.compile(r"^[0-9A-Za-z]{6,20}$")
MAX_HOPS = 10_000  # a trace that grows past this is a loop or a mailing list: stop there


@dataclass
class Route:
    hops: list[Hop] = field(default_factory=list)
    archived: list[dict] = field(default_factory=list)

    @property
    def message_ids(self) -> list[str]:
        """In order of appearance: the traced message's own first, then its bounces'."""
        return list(dict.fromkeys(h.message_id for h in self.hops if h.message_id))

    @property
    def queue_ids(self) -> list[str]:
        return sorted({f"{h.host}:{h.queue_id}" for h in self.hops if h.queue_id})

    def summary(self) -> dict:
        first = self.hops[0] if self.hops else None
        senders = [h.from_ for h in self.hops if h.from_]  # not a bounce's empty sender
        deliveries = [
            h
            for h in self.hops
            if h.to and h.status in ("sent", "bounced", "deferred", "delivered", "expired")
        ]
        return {
            "first_seen": first.time if first else None,
            "from": senders[0] if senders else None,
            "message_ids": self.message_ids,
            "queue_ids": self.queue_ids,
            "deliveries": [
                {"to": h.to, "status": h.status, "dsn": h.dsn, "host": h.host} for h in deliveries
            ],
        }

    def to_json(self) -> dict:
        return {**self.summary(), "hops": [_hop_json(h) for h in self.hops], "archived": self.archived}


def _hop_json(h: Hop) -> dict:
    return {k: v for k, v in h.__dict__.items() if v is not None and k not in ("raw", "seq")}


class Tracer:
    def __init__(self, store: MaillogStore, vault=None):
        self.store = store
        self.vault = vault

    def trace(self, target: str, since: str | None = None, until: str | None = None) -> list[Route]:
        """Routes for a Message-ID (``<...>`` or anything the logs know as one), a queue ID,
        or an address (every message from or to it)."""
        target = target.strip()
        mid = target[1:-1] if target.startswith("<") and target.endswith(">") else target
        if self.store.by_message_id(mid):
            return self._routes([("mid", mid)], since, until)
        if _QID.match(target) and (self.store.by_queue_id(target) or self.store.by_next_queue_id(target)):
            seeds = [("qid", (h.host, h.queue_id)) for h in self.store.by_queue_id(target)]
            seeds += [("qid", (h.host, h.queue_id)) for h in self.store.by_next_queue_id(target)]
            return self._routes(seeds, since, until)
        if "@" in target:
            return self.user(target, since, until)
        return []

    def user(self, address: str, since: str | None = None, until: str | None = None) -> list[Route]:
        """Every message from or to ``address``, one route each."""
        seeds = []
        for h in self.store.by_address(address, since, until):
            seeds.append(("qid", (h.host, h.queue_id)) if h.queue_id else ("mid", h.message_id))
        return self._routes([s for s in seeds if s[1]], since, until)

    # ------------------------------------------------------------ linking

    def _routes(self, seeds: list, since, until) -> list[Route]:
        routes, seen_keys = [], set()
        for seed in seeds:
            if seed in seen_keys:
                continue
            hops, keys = self._expand(seed)
            seen_keys |= keys
            hops = [
                h for h in hops if (since is None or h.time >= since) and (until is None or h.time <= until)
            ]
            if hops:
                route = Route(sorted(hops, key=lambda h: (h.time, h.seq)))
                route.archived = self._archived(route)
                routes.append(route)
        return sorted(routes, key=lambda r: r.hops[0].time)

    def _expand(self, seed) -> tuple[list[Hop], set]:
        todo, seen = [seed], set()
        hops: dict[tuple, Hop] = {}  # Hop.key() -> hop: each log line once
        while todo and len(hops) < MAX_HOPS:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            kind, value = key
            if kind == "mid":
                found = self.store.by_message_id(value)
            else:
                host, qid = value
                found = self.store.by_queue_id(qid, host) + self.store.by_next_queue_id(qid)
            for h in found:
                hops[h.key()] = h
                if h.queue_id:
                    todo.append(("qid", (h.host, h.queue_id)))
                if h.message_id:
                    todo.append(("mid", h.message_id))
                if h.next_queue_id:
                    if h.status == "bounce notice":
                        todo.append(("qid", (h.host, h.next_queue_id)))
                    else:  # queued as: on the next host, named by the relay address
                        todo.extend(("qid", (host, h.next_queue_id)) for host in self._next_hosts(h))
        return list(hops.values()), seen

    def _next_hosts(self, hop: Hop) -> list[str]:
        """Hosts that logged ``hop``'s "queued as" ID; when several did (short queue IDs of
        different hosts can collide), the one the relay address names."""
        if hop.next_queue_id is None:  # not "queued as" anything: no next host
            return []
        hosts = sorted({n.host for n in self.store.by_queue_id(hop.next_queue_id)})
        if len(hosts) > 1 and hop.relay:
            relay = hop.relay.split("[", 1)[0].lower().rstrip(".")
            named = [
                h for h in hosts if relay == h.lower() or relay.split(".", 1)[0] == h.lower().split(".", 1)[0]
            ]
            if named:
                return named
        return hosts

    def _archived(self, route: Route) -> list[dict]:
        if self.vault is None:
            return []
        sessions = {h.session_id for h in route.hops if h.session_id}
        out = []
        for mid in route.message_ids:
            for item in self.vault.catalog.items_by_message_id(mid):
                linked = "message-id"
                row = self.vault.catalog.item(item["item"])
                if sessions and row is not None:
                    entry = self.vault.ledger.get(row["appended_seq"])
                    if (entry.data or {}).get("session") in sessions:
                        linked = "message-id + LMTP session"
                out.append(
                    {
                        "mailbox": item["mailbox"],
                        "item": item["item"],
                        "message_id": mid,
                        "appended_at": item["appended_at"],
                        "expunged_at": item["expunged_at"],
                        "purged": bool(item["purged_at"]),
                        "linked_by": linked,
                    }
                )
        return out
