"""The collector's wire: what workers and reconciliation ask the collector, and its answers.

ZeroMQ ROUTER (clients use REQ), multipart frames (docs/architecture.md 1.2, 5):

- ``[FETCH, mailboxID, UID]`` -> ``[OK, bytes, json {internal_date, size}]``: the message
  exactly as stored in ``{partition}/uuid/a/b/<mailboxID>/<UID>.``, its internal date from
  the file's mtime (the third frame is an addition to the spec; readers of two frames still
  work).
- ``[FOLDER, name or mailboxID]`` -> ``[OK, json {mailbox_id, name, uidvalidity, acl,
  metadata, deleted, user_flags}]``.
- ``[ENUMERATE, name or mailboxID]`` -> ``[OK, json {mailbox_id, name, uidvalidity,
  highestmodseq, messages: [{uid, flags, internal_date, modseq, size}]}]``: the messages
  present now (expunged index records left out).
- ``[LIST]`` -> ``[OK, json {mailboxes: [{mailbox_id, name, uidvalidity, highestmodseq,
  deleted}]}]``: every mailbox on the server (IMAP LIST as the admin), ids from its metadata,
  UIDVALIDITY and HIGHESTMODSEQ from its index (the CONDSTORE value: what changes when
  anything in the mailbox does).
- ``[SYNCLOG]`` -> ``[OK, json {configured, token, mailboxes, users, lines, ignored,
  problems}]``: the batch of Cyrus's sync log to reconcile (vault/ingest/cyrus/sync_log.py:
  ``log-run``, renamed from ``log`` when there is none), as the folder names and users it
  names; ``token`` None when nothing was logged.
- ``[SYNCDONE, token]`` -> ``[OK, json {removed}]``: the batch is reconciled and committed;
  ``log-run`` is removed (only if it is still that batch).
- ``[NOEXPIRE, mailbox, value]`` -> ``[OK, json {supported, previous, reason}]``: sets
  ``/shared/vendor/cmu/cyrus-imapd/noexpire_until`` (Cyrus 3.10+: keep the mailbox's expunged
  and deleted data until then; ``0`` for ever; an empty value removes it); ``previous`` its
  value before, ``supported`` false with the server's ``reason`` where it refuses (3.6).
- Errors: ``[ERR, "<CODE>: text"]``, CODE one of ``NOMAILBOX`` (the server does not know the
  mailbox), ``GONE`` (the spool file is gone), ``BAD`` (malformed request), ``FAIL``
  (something on this host failed; worth retrying).

Messages, flags and UIDs come from the spool files (no IMAP session, so no side effects);
names are resolved to ids and metadata read over IMAP as the admin.
"""

FETCH, FOLDER, ENUMERATE, LIST = b"FETCH", b"FOLDER", b"ENUMERATE", b"LIST"
SYNCLOG, SYNCDONE = b"SYNCLOG", b"SYNCDONE"
NOEXPIRE = b"NOEXPIRE"
NOEXPIRE_ENTRY = "/shared/vendor/cmu/cyrus-imapd/noexpire_until"
OK, ERR = b"OK", b"ERR"
NOMAILBOX, GONE, BAD, FAIL = "NOMAILBOX", "GONE", "BAD", "FAIL"
