"""What mail a caller may read: the one place that scopes search, export, ``ls``, ``log``,
``restore`` and ``retention explain`` by role (vault/identity.py says who the caller is and
which roles they have). The vault service's operations and the commands that open the home
themselves both ask here, so neither path can read more than the other.

==========  ================================================================================
admin       every folder and item
reviewer    the folders of the custodians of the active matters (holds) naming them as
            reviewers; an item only when one of those matters covers it: its custodian is one
            of the matter's and its internal date (the date holds use, vault/policy/holds.py;
            not the Date header that ``after:``/``before:`` search) lies in the matter's range.
            A matter's query does not narrow what its reviewers may read.
auditor     no mail (the audit trail, verification, holds and requests are theirs)
user        their own folders (``user/<login>/...``) and the items in them
==========  ================================================================================

A caller with several roles gets the widest mail scope in this order: admin, reviewer, user
(an auditor who is also a reviewer reads their matters). Refusals are :class:`Forbidden`;
the caller records them (``access.refused``).

Placing a hold follows the same bounds (vault/policy/place.py ``require_hold_within``):
admins place any hold; a reviewer only a hold within their matters (each of its custodians
one of a matter's, its date range inside that matter's) that names no reviewers (naming one
grants reading mail, which is an admin's); nobody else places holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vault.identity import ADMIN, AUDITOR, REVIEWER, USER, Caller, Forbidden
from vault.model import custodian_of
from vault.policy.holds import Hold, applies_to


@dataclass(frozen=True)
class MailScope:
    caller: Caller
    role: str  # the role this scope comes from: admin, reviewer or user
    custodians: tuple[str, ...] | None  # None: every custodian's (admin)
    matters: tuple[Hold, ...] = ()  # a reviewer's: they bound custodians and internal dates

    @property
    def everything(self) -> bool:
        return self.custodians is None

    def names(self) -> list[str] | None:
        """The custodians within reach, sorted (None: all); what audit entries record."""
        return None if self.custodians is None else sorted(self.custodians)

    def has_custodian(self, name: str | None) -> bool:
        if self.custodians is None:
            return True
        return bool(name) and name.casefold() in {c.casefold() for c in self.custodians}  # type: ignore[union-attr]

    def folder(self, name: str | None) -> bool:
        """Whether the folder named ``name`` (any name it had) is within reach."""
        return self.everything or self.has_custodian(custodian_of(name))

    def item(self, vault, row: dict) -> bool:
        """Whether the catalog's item ``row`` may be read (for a reviewer: a matter covers it)."""
        if self.everything:
            return True
        from vault.policy.decide import facts_of

        facts = facts_of(vault, row)
        if self.role == REVIEWER:
            return any(applies_to(h, facts) for h in self.matters)
        return self.folder(facts.folder)

    def require_folder(self, name: str, action: str) -> None:
        if not self.folder(name):
            raise Forbidden(self.caller, action, self._outside(f"folder {name!r}"))

    def require_item(self, vault, row: dict, action: str) -> None:
        if not self.item(vault, row):
            raise Forbidden(self.caller, action, self._outside(f"item {row['item']}"))

    def require_custodian(self, name: str, action: str) -> None:
        if not self.has_custodian(name):
            raise Forbidden(self.caller, action, self._outside(f"{name}'s mail"))

    def _outside(self, what: str) -> str:
        if self.role == USER:
            return f"{what} is not theirs (users read their own folders only)"
        dates = " and date ranges" if any(h.date_from or h.date_to for h in self.matters) else ""
        return f"{what} is outside their matters' custodians{dates} ({', '.join(self.names() or [])})"


def mail_scope(vault, caller: Caller, action: str) -> MailScope:
    """The mail ``caller`` may read; Forbidden for an auditor, or a reviewer of no active matter."""
    if caller.has(ADMIN):
        return MailScope(caller, ADMIN, None)
    if caller.has(REVIEWER):
        from vault.policy.place import matters_of

        matters = tuple(matters_of(vault, caller.login))
        if not matters:
            raise Forbidden(caller, action, "a reviewer of no active matter")
        custodians = tuple(sorted({c for h in matters for c in h.custodians}))
        return MailScope(caller, REVIEWER, custodians, matters)
    if caller.has(AUDITOR):
        raise Forbidden(caller, action, "auditors see the audit trail, not mail")
    return MailScope(caller, USER, (caller.login,))


def restore_scope(vault, caller: Caller, mailbox: str) -> MailScope:
    """The scope of a restore of ``mailbox``: an admin any folder, a user their own;
    Forbidden for reviewers (they export within their matters) and auditors."""
    action = f"restore {mailbox}"
    scope = mail_scope(vault, caller, action)
    if scope.role == REVIEWER:
        raise Forbidden(caller, action, "reviewers export within their matters ('vaultctl search --export')")
    scope.require_folder(mailbox, action)
    return scope


def export_scope(vault, caller: Caller, custodian: str | None) -> MailScope:
    """The scope of an export: an admin everything, a reviewer their matters; Forbidden for
    users (they restore their own folders) and auditors."""
    action = f"export {custodian}'s mail" if custodian else "export mail"
    scope = mail_scope(vault, caller, action)
    if scope.role == USER:
        raise Forbidden(
            caller, action, "exports are for reviewers and admins (users restore their own folders)"
        )
    return scope


def hold_shown(caller: Caller) -> Callable[[Hold], bool] | None:
    """Which holds ``caller`` may see named (None: all, for admins and auditors)."""
    if caller.has(ADMIN) or caller.has(AUDITOR):
        return None
    me = caller.login.casefold()
    if caller.has(REVIEWER):
        return lambda h: me in {r.casefold() for r in h.reviewers}
    return lambda h: False


def require_explain(vault, caller: Caller, row: dict, action: str) -> None:
    """Retention of an item (no content) is explained to admins and auditors for any item,
    to others within their mail scope."""
    if caller.has(ADMIN) or caller.has(AUDITOR):
        return
    mail_scope(vault, caller, action).require_item(vault, row, action)


def visible_holds(vault, caller: Caller, action: str, *, everything: bool = False) -> list[dict]:
    """The holds (their entry data) ``caller`` may list: admins and auditors all, a reviewer
    those naming them; users none (a hold can be confidential to its custodians)."""
    holds = [d for d in vault.catalog.hold_data() if everything or not d.get("released_at")]
    if caller.has(ADMIN) or caller.has(AUDITOR):
        return holds
    if caller.has(REVIEWER):  # the matters naming them, and the holds they placed
        me = caller.login.casefold()
        return [
            d
            for d in holds
            if me in {r.casefold() for r in d.get("reviewers") or []} or d.get("owner") == caller.actor
        ]
    raise Forbidden(caller, action, "holds are for admins, auditors and their matters' reviewers")


def visible_requests(vault, caller: Caller, flow, action: str, *, everything: bool = False) -> list[dict]:
    """The four-eyes requests of ``flow`` (vault/policy/approval.py) ``caller`` may list:
    admins and auditors all; a reviewer the release requests of their matters and the
    erasure requests of their matters' custodians; users none."""
    from vault.policy.approval import RELEASE, requests_of

    found = [r.to_json() for r in requests_of(vault, flow, everything=everything)]
    if caller.has(ADMIN) or caller.has(AUDITOR):
        return found
    if caller.has(REVIEWER):
        matters = {d["matter"] for d in visible_holds(vault, caller, action)}
        if flow is RELEASE:
            return [r for r in found if r["covers"].get("matter") in matters]
        scope = mail_scope(vault, caller, action)
        return [
            r for r in found if r["covers"].get("custodian") and scope.has_custodian(r["covers"]["custodian"])
        ]
    raise Forbidden(caller, action, "requests are for admins, auditors and their matters' reviewers")
