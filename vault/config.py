"""One TOML file per vault; every key has an embedded default.

A vault is a directory (``--home`` or ``VAULT_HOME``, default ``./vault-data``) holding
``config.toml`` and the data the defaults point at. Relative paths in the config are
relative to the home directory, so a vault can be moved or copied as one tree.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

CONFIG_NAME = "config.toml"
DEFAULT_HOME = "vault-data"

# Every key the code reads lives here, with the value that works on one machine
# with no servers. Sections are owned by the module named in the comment.
DEFAULTS: dict[str, dict[str, Any]] = {
    # what this home is for (vault/mailhost.py)
    "home": {
        "role": "vault",  # vault | mail-host (`vaultctl init --mail-host`: dealer and collector only)
    },
    # vault/dates.py: the zone bare dates are read in (search, holds, erasure) and times shown in
    "site": {
        "timezone": "UTC",  # an IANA name (Europe/Berlin); "" or UTC: UTC
    },
    # vault/store/cas.py and vault/store/backends/
    "store": {
        "backend": "local",  # local | s3
        "path": "blobs",  # local backend root
        "pack_size": 16 * 1024 * 1024,  # target bytes per pack object
        "index_path": "store-index.sqlite",  # cache of blob -> pack locations
        # encryption at rest (vault/store/keys.py, crypto.py): keyfile | passphrase | none;
        # absent from a config older than it: none. `vaultctl init` writes keyfile.
        "encryption": "none",
        "key_path": "keys/store.key",  # the master key (0600): back it up, the store is useless without it
        # a secret (vault/secrets.py): better $VAULT_STORE_PASSPHRASE or passphrase_file
        "passphrase": "",
        "passphrase_file": "",
    },
    "s3": {
        "endpoint_url": "",  # empty: AWS; else MinIO, Ceph RGW, moto ...
        "bucket": "vault",
        "region": "us-east-1",
        # secrets (vault/secrets.py): better $VAULT_S3_ACCESS_KEY_ID / $VAULT_S3_SECRET_ACCESS_KEY,
        # or a file named by the *_file key (or by $VAULT_S3_..._FILE); empty: boto3's own chain
        "access_key_id": "",
        "access_key_id_file": "",
        "secret_access_key": "",
        "secret_access_key_file": "",
        "prefix": "",
        # boto3 >= 1.36 sends CRC32 checksums by default; some S3-compatible stores reject them.
        "request_checksum_calculation": "when_supported",  # or when_required
        "object_lock_mode": "",  # "", GOVERNANCE or COMPLIANCE: retention put on new blobs
        "object_lock_days": 0,
    },
    "compression": {
        "level": 3,  # plain frames (large blobs, everything before a dictionary exists)
        "dictionary_level": 5,  # small frames with the dictionary: cheap at a few KiB each
        "dictionary_size": 262144,
        "dictionary_samples": 1000,  # messages needed before a dictionary is trained
    },
    # vault/store/ledger.py
    "ledger": {
        "path": "ledger",
        "origin": "vault.local/ledger",  # C2SP checkpoint origin line
        "key_path": "keys/ledger.ed25519",
        "segment_max_bytes": 256 * 1024,
        "segment_max_age_hours": 24,
    },
    # vault/witness/: each signed checkpoint also recorded where the home cannot rewrite it
    "witness": {
        "path": "witness",  # the home's copy of each witness's newest evidence
        # cosigning witnesses (vaultctl witness serve), each "<url> <verifier key>": the url
        # unix:/run/vault-witness/witness.sock or http://HOST:PORT, the key its key.pub
        "cosigners": [],
        "bucket": False,  # [store] backend = "s3": also write checkpoints/ under Object Lock
        "lock_mode": "COMPLIANCE",  # or GOVERNANCE (then keep s3:BypassGovernanceRetention from the home)
        "lock_days": 3650,
        "timeout_seconds": 5.0,  # a witness that does not answer within this is skipped for now
        "retry_seconds": 30.0,  # and asked again after this (the next commit's submission catches up)
    },
    # vault/store/catalog.py
    "catalog": {
        "path": "catalog.sqlite",
    },
    # vault/index/
    "index": {
        "path": "index",
    },
    # vault/ingest/importers/
    "import": {
        # messages per ledger commit, or fewer when they hold batch_bytes: a commit costs
        # ~5 fsyncs and a catalog transaction; a killed run redoes at most one batch
        "batch_messages": 2000,
        "batch_bytes": 64 * 1024 * 1024,
        # search-index documents per Tantivy commit in a bulk run (an import; and when it ends):
        # a commit holds the writer ~0.1-0.2 s and leaves a segment to merge; a crash makes the
        # next open index at most this many messages again, read back from the store
        "index_commit_docs": 10000,
    },
    # vault/ingest/dealer/: runs on the Cyrus host
    "dealer": {
        "mode": "stream",  # external | socket | stream (stream: acked, no datagram size limit)
        "spool_path": "dealer-spool",  # durable event spool (tmp/ new/ bad/), writable by socket_owner
        "listen_path": "dealer.sock",  # socket mode: notifysocket; stream mode: notifysocket: dlist:<this>
        "broker": "tcp://127.0.0.1:5570",  # the broker's dealer router
        "window": 100,  # events in flight to the broker, unacked
        "ack_timeout_seconds": 5.0,  # resend an event not acked within this
        "origin": "",  # sent with each event; empty: this host's name
        "socket_owner": "cyrus",  # the user Cyrus runs as: owns the socket and the hook's spool
        "hook_fsync": True,  # the external hook fsyncs each event (dd conv=fsync)
        # stream and socket modes: fdatasync the journal before an event is answered/taken;
        # false: written, not synced (a dealer crash loses nothing; a power loss may lose the
        # last moments' events, which Cyrus's sync log brings back: README, "Live ingest")
        "sync": True,
        "hook_path": "notify-hook",  # external mode: the program notify_external runs (install-hook)
        "notifyd_socket": "/run/cyrus/socket/notify",  # external mode: notifyd's socket (Debian's)
        # vault/curve/: the broker's CURVE public key ("": keys/curve/broker.pub in this home);
        # plain ZeroMQ only with allow_plaintext = true and a loopback or ipc broker
        "server_key": "",
        "allow_plaintext": False,
    },
    # vault/ingest/broker/: the one process that writes the vault live
    "broker": {
        "dealer_bind": "tcp://127.0.0.1:5570",  # dealers' events in ([dealer] broker points here)
        "worker_bind": "tcp://127.0.0.1:5571",  # job payloads out
        "control_bind": "tcp://127.0.0.1:5572",  # READY / heartbeats / outcomes
        "worker_address": "tcp://127.0.0.1:5571",  # where workers reach worker_bind
        "control_address": "tcp://127.0.0.1:5572",  # where workers reach control_bind
        "jobs_path": "broker-jobs.sqlite",  # the durable job queue
        # events arriving within this are stored (one synced transaction) and acked together
        "event_gather_ms": 10.0,  # 0: each burst at once
        "worker_timeout_seconds": 10.0,  # a worker silent this long is dropped, its jobs requeued
        "postpone_seconds": 5.0,  # a postponed job is due again after this
        "max_postpones": 100,  # then it goes to the dead-letter list (FAILED)
        "commit_batch": 500,  # jobs per ledger commit at most
        # gather results this long before committing (a commit costs ~2 ms CPU however small)...
        "commit_delay_ms": 150.0,
        "commit_prompt_ms": 5.0,  # ...or this long, once a result is one another job waits for
        "index_commit_ms": 1000.0,  # searchable within this, or at a search (a commit: ~10 ms CPU)
        "keep_done_hours": 24.0,  # DONE jobs are forgotten after this (the ledger keeps them)
        # vault/curve/: workers' copy of the broker's public key ("": keys/curve/broker.pub);
        # allow_plaintext: no CURVE on the broker's ports (loopback or ipc endpoints only)
        "server_key": "",
        "allow_plaintext": False,
    },
    # vault/ingest/worker/
    "worker": {
        "heartbeat_interval_seconds": 1.0,
        # wait this long for more jobs before flushing blobs and reporting (a pack costs ~1.2 ms
        # CPU however few blobs it holds); a job later ones of its mailbox wait for: at once
        "flush_delay_ms": 100.0,
        "flush_max_jobs": 200,  # flush at least every this many jobs
        # jobs the broker may hand a worker ahead (READY credits): one dispatch (a query and a
        # transaction of the job store) for several jobs when they come in batches
        "prefetch_jobs": 4,
        "job_wait_seconds": 10.0,  # a payload not received within this: ask for another job
    },
    # vault/ingest/collector/: the server runs on the Cyrus host; workers and reconcile
    # connect to "address"
    "collector": {
        "bind": "tcp://127.0.0.1:5574",  # where `vaultctl collector` listens
        "address": "tcp://127.0.0.1:5574",  # where clients reach it
        "imapd_conf": "/etc/imapd.conf",  # partitions (spool paths) come from here
        "imap_host": "127.0.0.1",
        "imap_port": 143,
        "imap_admin": "cyrus",  # an admins: user; "" disables name lookups and metadata
        # a secret (vault/secrets.py), never kept here on a mail host: $VAULT_COLLECTOR_PASSWORD,
        # the file $VAULT_COLLECTOR_PASSWORD_FILE names, or the file imap_password_file names
        "imap_password": "",
        "imap_password_file": "",
        "timeout_seconds": 30.0,  # client: answer within this, else retry later
        # vault/curve/: clients' copy of the collector's public key ("": keys/curve/collector.pub);
        # allow_plaintext: no CURVE on this link (loopback or ipc endpoints only)
        "server_key": "",
        "allow_plaintext": False,
    },
    # vault/trace/ (maillog parser, hop store, tracer)
    "maillog": {
        "path": "maillog.sqlite",  # hop records from imported mail logs
        "timezone": "",  # zone of RFC 3164 log times (syslog writes local time); "" = this host's
    },
    # vault/policy/ (rules) and vault/service/ (the scheduler)
    "policy": {
        "rules_path": "policies",  # directory of *.toml retention rule files
        "sweep_schedule": "0 3 * * *",  # cron; "" disables the scheduled sweep
        "reconcile_schedule": "*/30 * * * *",
        "schedule_timezone": "UTC",  # zone the cron expressions are read in
        "scheduler_state_path": "scheduler.sqlite",  # last run per job, for catch-up
        # vault/policy/approval.py: an erasure or hold release request not approved by a
        # second admin within this expires (durations as in rules: 7d, 2w, 1m)
        "request_expiry": "7d",
    },
    # vault/service/: vaultctl serve, the one process that owns the home while it runs
    "service": {
        # the local API (HTTP over a unix socket; callers known by SO_PEERCRED). Other users'
        # commands reach it only where they can reach this path: /run/vault/vault.sock, say.
        "socket_path": "vault.sock",
    },
    # vault/groupware/: Kolab objects in the archive (changelog, diff, free/busy)
    "groupware": {
        "cache_path": "groupware.sqlite",  # blob -> Kolab type and UID, read from headers once
        # the mail domain whose users' folders have no @domain in the archive (user/jane/Calendar
        # is jane@<this>'s); "": logins are the archive's user names as they are
        "default_domain": "",
    },
    # vault/web/: the HTTP service vaultctl serve runs when listen is set: Bonnie's JSON-RPC
    # API at POST /api/rpc (API users: vaultctl api-user) and GET /freebusy/<user>.ifb
    "web": {
        "listen": "",  # HOST:PORT, e.g. 127.0.0.1:8080; "": no web service
        "tls_cert": "",  # PEM certificate chain and key: HTTPS when both are set
        "tls_key": "",
        "api_users_path": "api-users.json",  # API users, their password hashes and secrets (0600)
        # the pages (vault/web/pages/): login by LDAP bind as the user ([ldap] url), sessions in memory
        "session_idle_minutes": 30,  # a session unused this long ends
        "session_max_hours": 12,  # and none lives longer than this
        "login_attempts": 5,  # failed logins per name (and per client address) within the window...
        "login_window_minutes": 15,  # ...after which more are refused until the window has passed
        # self-service restore: the live IMAP server messages are restored into (APPEND, logged
        # in as the user with the password they confirm; nothing kept); "": no self-service restore
        "restore_imap": "",  # imap://HOST[:PORT] or imaps://HOST[:PORT]
        "restore_folder": "Restored",
        "sniff_cache_path": "sniff.sqlite",  # blob -> spam verdict and size, read from headers once
        "large_message_bytes": 1048576,  # the SNIFF dashboard's "large" mail: above this size
    },
    # vault/identity.py: who may do what. Login names or "group:<LDAP group>"; everyone else
    # has the user role (their own folders). Whoever runs the vault (root here) is admin.
    "roles": {
        "admins": ["root"],
        "reviewers": [],  # search, export and hold within the matters they are assigned to
        "auditors": [],  # the audit trail and verification only
    },
    # vault/directory.py
    "ldap": {
        "url": "",  # e.g. ldap://127.0.0.1:389; empty: no directory, users are their login names
        "base_dn": "",
        "bind_dn": "",  # empty: anonymous bind
        # a secret (vault/secrets.py): better $VAULT_LDAP_BIND_PASSWORD or bind_password_file
        "bind_password": "",
        "bind_password_file": "",
        "start_tls": False,
        "user_filter": "(|(uid={name})(mail={name}))",
        "id_attribute": "entryUUID",  # OpenLDAP; 389-DS and Kolab: nsUniqueId
        "login_attribute": "uid",
        "display_name_attributes": ["displayName", "cn"],  # first one present wins
        "mail_attributes": ["mail"],  # e.g. add mailAlternateAddress or alias
        "group_base_dn": "",  # empty: base_dn
        "group_membership": "member",  # member | uniqueMember | memberUid | memberOf
        "group_name_attribute": "cn",
        "timeout_seconds": 2.0,  # connect and receive; ingest never waits longer
        "retry_seconds": 30.0,  # after a failure, name-only answers until this has passed
        "cache_ttl_seconds": 3600.0,
        "cache_path": "directory-cache.sqlite",
    },
}


# Keys earlier versions wrote into config.toml that nothing reads any more: accepted and
# ignored, so an upgrade does not refuse an existing vault's configuration.
RETIRED = frozenset({"quarantine"})

VAULT, MAIL_HOST = "vault", "mail-host"  # [home] role
# What a mail-host home configures: the dealer and the collector, nothing of the vault's.
MAIL_HOST_SECTIONS = ("home", "dealer", "collector")


class ConfigError(Exception):
    pass


def _merge(base: dict, override: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        name = f"{where}{key}"
        if name in RETIRED:
            continue
        if key not in base:
            raise ConfigError(f"unknown configuration key {name!r}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{name!r} must be a table")
            out[key] = _merge(base[key], value, f"{name}.")
        else:
            expected = type(base[key])
            if expected is int and isinstance(value, bool) or not isinstance(value, expected):
                if not (expected is float and isinstance(value, int)):
                    raise ConfigError(f"{name!r} must be {expected.__name__}, not {type(value).__name__}")
            out[key] = value
    return out


class Config:
    """The merged configuration of one vault home."""

    def __init__(self, home: Path, values: dict[str, dict[str, Any]]):
        self.home = home
        self.values = values

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.values[section]

    @property
    def role(self) -> str:
        return self.values["home"]["role"]

    def require_vault(self, what: str = "this") -> None:
        """Refuse a mail-host home (dealer and collector only) where a vault is needed."""
        if self.role == MAIL_HOST:
            raise ConfigError(
                f"{self.home} is a mail-host home (dealer and collector only, made by 'vaultctl "
                f"init --mail-host'): {what} needs a vault home; run it on the vault host, or "
                "point --home/VAULT_HOME at a vault"
            )

    def path(self, section: str, key: str = "path") -> Path:
        """A path setting resolved against the home directory."""
        p = Path(self.values[section][key])
        return p if p.is_absolute() else self.home / p

    @classmethod
    def load(cls, home: Path | str) -> Config:
        home = Path(home)
        file = home / CONFIG_NAME
        try:
            text = file.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            raise ConfigError(
                f"no vault at {home} ({file} missing): run 'vaultctl init' or pass --home"
            ) from None
        except PermissionError:
            raise ConfigError(
                f"{file}: permission denied: a vault home is its owner's alone, and no vault service "
                "answered (start 'vaultctl serve', or name its socket with VAULT_SOCKET)"
            ) from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{file}: {e}") from e
        return cls.from_text(home, text, where=str(file))

    @classmethod
    def from_text(cls, home: Path | str, text: str, where: str = CONFIG_NAME) -> Config:
        """The config a ``config.toml`` holding ``text`` would give."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{where}: {e}") from e
        values = _merge(DEFAULTS, data)
        if values["home"]["role"] not in (VAULT, MAIL_HOST):
            raise ConfigError(f"{where}: [home] role must be {VAULT!r} or {MAIL_HOST!r}")
        from vault.dates import DateError, zone_named

        try:
            zone_named(str(values["site"]["timezone"] or ""))
        except DateError as e:
            raise ConfigError(f"{where}: {e}") from None
        return cls(Path(home), values)

    @classmethod
    def defaults(cls, home: Path | str) -> Config:
        return cls(Path(home), copy.deepcopy(DEFAULTS))


def parse_settings(assignments: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``SECTION.KEY=VALUE`` strings (VALUE in TOML, else taken as a string) as section ->
    key -> value; unknown keys and wrong types are refused as in config.toml."""
    out: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot or not section or not key:
            raise ConfigError(f"{assignment!r}: expected SECTION.KEY=VALUE")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out.setdefault(section, {})[key] = value
    _merge(DEFAULTS, out)
    return out


def resolve_home(home: str | os.PathLike | None) -> Path:
    return Path(home or os.environ.get("VAULT_HOME") or DEFAULT_HOME)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


HEADER = "# vault configuration: every key shown with its value; see docs/architecture.md."


def write_new(file: Path, text: str) -> None:
    """Write a new config.toml, 0600 from its first byte whatever the umask (it may hold a
    secret); an existing file is refused (FileExistsError)."""
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(file, 0o600)  # O_CREAT's mode is masked by the umask; never widened


def render(values: dict[str, dict[str, Any]], header: str = HEADER) -> str:
    """The config file ``vaultctl init`` writes: every key, explicit, editable."""
    lines = header.splitlines()
    for section, table in values.items():
        lines.append("")
        lines.append(f"[{section}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
