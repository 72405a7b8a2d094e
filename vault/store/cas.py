"""The content-addressed store: blobs by SHA-256, zstd frames packed many to an object.

Each blob is one self-contained zstd frame, compressed with the current trained dictionary
when it is small enough to profit; frames are appended to a pack that is written to the
backend as one object (``packs/<ab>/<pack>``) with a pack index (store/pack.py) naming
every member's blob id, offset, length, raw size and the dictionary blob its frame needs:
the object ``index/<pack>`` of an unencrypted store, the pack's own sealed trailer in an
encrypted one (store/pack_indexes.py says which; ``self.indexes``). The pack indexes alone
rebuild the local location index, and every frame stays decodable forever because
dictionaries are blobs too. Reads always re-hash; writes decompress and compare every frame
before it is stored.

What reaches the backend goes through ``self.cipher`` (store/crypto.py): an encrypted store
seals each frame as a record (without what its pack index says of it: store/pack.py
strip_frame) and names packs by keyed id; an unencrypted one names them by
the sha256 of their bytes. Offsets and lengths in the indexes are those of the stored
records; the API above (blob ids, get, put) is the same.

The location index (``store-index.sqlite``, derived state) takes about 65 bytes a blob on
disk: the raw 32-byte id as the key of a WITHOUT ROWID table, its pack and dictionary as
integer ids of the ``packs`` and ``dictionaries`` tables. A file of an older format (or a
new one) is made anew from the backend's pack indexes when it is opened (``PRAGMA
user_version`` says which format a file is).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import zstandard

from vault import faults
from vault.model import Problem, blob_id
from vault.store.backends import open_backend
from vault.store.backends.base import Backend, ObjectMissing, StoreError
from vault.store.crypto import AuthenticationFailed, Cipher, EnvelopeError, PlainCipher
from vault.store.pack import Member, PackFormatError, frame_spans, restore_frame, strip_frame
from vault.store.pack_indexes import IndexUnreadable, PackDamaged, pack_indexes, pack_key
from vault.store.sqlite import connect

# how verify names the repair of an encrypted pack whose trailer is damaged
REWRITE = "verify --repair writes its blobs again, from where the location index puts them"
# the named crash point (vault/faults.py) between a pack reaching the backend and its index
PACK_WRITTEN = "store.pack-written"
UNPLACED = "no blob of it can be read: nothing else says where its records are"
DICT_MAX_BLOB = 256 * 1024  # larger blobs gain nothing from a dictionary
DICT_MAGIC = b"\x37\xa4\x30\xec"  # a zstd dictionary's first bytes
# seconds a flush waits for frames made ahead before it compresses the rest itself
AHEAD_PATIENCE = 0.05

LOCATIONS_FORMAT = 2  # PRAGMA user_version of store-index.sqlite (0: a new file, or the first format)
SCHEMA = """
CREATE TABLE IF NOT EXISTS packs (id INTEGER PRIMARY KEY, pack BLOB NOT NULL UNIQUE, size INTEGER NOT NULL,
                                  members INTEGER NOT NULL, format INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS dictionaries (id INTEGER PRIMARY KEY, blob BLOB NOT NULL UNIQUE, seq INTEGER);
CREATE TABLE IF NOT EXISTS blobs (blob BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL,
                                  length INTEGER NOT NULL, raw_size INTEGER NOT NULL, dict INTEGER) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS legal_holds (pack TEXT PRIMARY KEY)
"""
# a blob's pack and member, its dictionary by blob id (dictionaries.seq: trained here, in order)
_LOCATE = (
    "SELECT p.pack, b.blob, b.offset, b.length, b.raw_size, d.blob FROM blobs b JOIN packs p ON p.id = b.pack"
    " LEFT JOIN dictionaries d ON d.id = b.dict"
)


class Ahead(Protocol):
    """Compresses frames elsewhere while the writer goes on (a bulk run: vault/index/textpool.py)."""

    def compressor(self, name: str, level: int, dictionary: bytes | None) -> None: ...
    def compress(self, blob: str, data: bytes, compressor: str) -> None: ...
    def frame(self, blob: str, until: float | None = None) -> bytes | None: ...  # None: make it here
    def forget_frames(self) -> None: ...


class BlobCorrupt(StoreError):
    pass


class DictionaryUnknown(StoreError):
    """A frame names a zstd dictionary no pack the store knows holds."""


def _raw(bid: str) -> bytes | None:
    """The 32 bytes of a blob id; None for what is not one (no blob has it)."""
    if len(bid) != 71 or not bid.startswith("sha256:"):
        return None
    try:
        raw = bytes.fromhex(bid[7:])
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


def _bid(raw: bytes) -> str:
    return "sha256:" + raw.hex()


def _located(row) -> tuple[str, Member]:
    pack, blob, offset, length, raw_size, dict_blob = row
    return pack.hex(), Member(_bid(blob), offset, length, raw_size, _bid(dict_blob) if dict_blob else None)


class ContentStore:
    def __init__(
        self,
        backend: Backend,
        index_path: Path,
        *,
        pack_size: int = 16 << 20,
        level: int = 3,
        dictionary_level: int = 5,
        dictionary_size: int = 262144,
        dictionary_samples: int = 1000,
        read_only: bool = False,
        cipher: Cipher | None = None,
    ):
        self.backend = backend
        # what every object is sealed with on its way to the backend (store/crypto.py)
        self.cipher: Cipher = cipher or PlainCipher()
        self.pack_size = pack_size
        self.level = level
        self.dictionary_level = dictionary_level
        self.dictionary_size = dictionary_size
        self.dictionary_samples = dictionary_samples
        # read_only: a home that cannot be written is read without writing a byte (store/sqlite.py)
        self.db = connect(index_path, read_only=read_only, timeout=60)
        if not read_only:
            self.db.execute("PRAGMA journal_mode=WAL")
        # where each pack's index lives: an index/ object, or the pack's sealed trailer
        self.indexes = pack_indexes(backend, self.cipher)
        self._plain = zstandard.ZstdCompressor(level=level)
        self._buffer = bytearray()
        self._members: list[Member] = []
        self._pending: dict[str, int] = {}  # blob -> index in _members
        # a bulk run's blobs put while their frames are made elsewhere (``ahead``), in put order:
        # blob -> (its bytes, the dictionary its frame is made with); into the pack at flush
        self._ahead: dict[str, tuple[bytes, str | None]] = {}
        self._ahead_bytes = 0
        self._ahead_maker: Ahead | None = None
        self._told: set[str] = set()  # the compressors the ahead maker was given
        # a dictionary trained on a thread (ensure_dictionary(background=True)), and the blobs
        # put meanwhile that wait for it (in _ahead, not yet asked for)
        self._training: tuple[threading.Thread, list] | None = None
        self._waiting_dict: list[str] = []
        self._samples: list[bytes] = []
        self._known: set[bytes] | None = None  # raw ids of the blobs the location index holds
        # no other connection has committed to the location index since _known was read (at
        # _seen_version): a blob not in _known is in no pack. Checked after each commit, so a
        # blob another process stores meanwhile may be stored here again (the race a query
        # at put time has too, until the flush): a second copy, never a blob missing
        self._alone = False
        self._seen_version = 0
        self._dict_ids: dict[str, int] = {}  # dictionary blob -> dictionaries.id
        self._formats: dict[str, int] = {}  # pack -> the format of its records (packs.format)
        self._found_dicts: dict[int, str] = {}  # dictionaries found walking packs (index_from_pack)
        self._dicts: dict[str, zstandard.ZstdCompressionDict] = {}
        self._decompressors: dict[str | None, zstandard.ZstdDecompressor] = {
            None: zstandard.ZstdDecompressor()
        }
        self._dict_blob: str | None = None
        self._dict_compressor: zstandard.ZstdCompressor | None = None
        self._open_locations(read_only)
        row = self.db.execute(
            "SELECT blob FROM dictionaries WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row:
            self._use_dictionary(_bid(row[0]))

    def _open_locations(self, read_only: bool) -> None:
        """The location index in this format: a file of another (or a new file) is made anew
        from the backend's pack indexes, keeping the order dictionaries were trained in;
        read-only, in memory (the file stays as it is)."""
        if self._format() == LOCATIONS_FORMAT:
            return
        if read_only:
            trained = self._trained_before()
            self.db.close()
            self.db = sqlite3.connect(":memory:")
            self._make_anew(trained)
            return
        self.db.execute("BEGIN IMMEDIATE")  # one process converts it; the others wait, then see it done
        try:
            if self._format() != LOCATIONS_FORMAT:
                self._make_anew(self._trained_before())
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    def _make_anew(self, trained: list[bytes]) -> None:
        for table in ("blobs", "packs", "dictionaries"):
            self.db.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in SCHEMA.split(";"):  # (executescript would commit first)
            self.db.execute(statement)
        self.db.executemany(
            "INSERT OR IGNORE INTO dictionaries(blob, seq) VALUES (?, ?)",
            [(raw, seq) for seq, raw in enumerate(trained)],
        )
        self._load()
        self.db.execute(f"PRAGMA user_version = {LOCATIONS_FORMAT}")

    def _format(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _trained_before(self) -> list[bytes]:
        """The dictionaries a first-format file says were trained, oldest first."""
        try:
            rows = self.db.execute("SELECT blob FROM dictionaries ORDER BY seq").fetchall()
        except sqlite3.OperationalError:
            return []  # a new file
        return [raw for (bid,) in rows if isinstance(bid, str) and (raw := _raw(bid))]

    @classmethod
    def from_config(cls, config, *, read_only: bool = False) -> ContentStore:
        from vault.store.keys import cipher_for

        c, z = config["store"], config["compression"]
        backend = open_backend(config)
        cipher = cipher_for(config, backend, read_only=read_only)  # refuses a wrong key first
        return cls(
            backend,
            config.path("store", "index_path"),
            pack_size=c["pack_size"],
            level=z["level"],
            dictionary_level=z["dictionary_level"],
            dictionary_size=z["dictionary_size"],
            dictionary_samples=z["dictionary_samples"],
            read_only=read_only,
            cipher=cipher,
        )

    # ------------------------------------------------------------ dictionaries

    def _dictionary(self, bid: str) -> zstandard.ZstdCompressionDict:
        if bid not in self._dicts:
            self._dicts[bid] = zstandard.ZstdCompressionDict(self.get(bid))
        return self._dicts[bid]

    def _decompressor(self, dict_blob: str | None) -> zstandard.ZstdDecompressor:
        if dict_blob is not None and dict_blob not in self._decompressors:  # None: from __init__
            self._decompressors[dict_blob] = zstandard.ZstdDecompressor(dict_data=self._dictionary(dict_blob))
        return self._decompressors[dict_blob]

    def _use_dictionary(self, bid: str) -> None:
        self._dict_blob = bid
        self._dict_compressor = zstandard.ZstdCompressor(
            level=self.dictionary_level, dict_data=self._dictionary(bid)
        )

    @property
    def dictionary(self) -> str | None:
        """Blob id of the dictionary new frames are compressed with; None until one is trained."""
        return self._dict_blob

    @property
    def training(self) -> bool:
        """A dictionary is being trained meanwhile (``ensure_dictionary(background=True)``)."""
        return self._training is not None

    def ensure_dictionary(self, samples: Iterable[bytes], *, background: bool = False) -> str | None:
        """Train a dictionary from ``samples`` unless one exists (or is being trained) or they
        are too few. ``background`` (while compressing ahead): on a thread of its own (zstd
        leaves the GIL), returning None at once; the blobs put meanwhile wait for it, in
        memory, and are compressed with it (``_finish_training``: at the next put after it is
        done, or at the flush, which waits for it)."""
        if self._dict_blob is not None or self._training is not None:
            return self._dict_blob
        usable = [s for s in samples if 0 < len(s) <= DICT_MAX_BLOB]
        if len(usable) < self.dictionary_samples:
            return None
        if not background or self._ahead_maker is None:
            return self._train(usable)
        outcome: list[zstandard.ZstdCompressionDict | None] = []
        thread = threading.Thread(
            target=lambda: outcome.append(self._trained(usable)), name="train-dictionary", daemon=True
        )
        self._training = (thread, outcome)
        thread.start()
        return None

    def _trained(self, samples: list[bytes]) -> zstandard.ZstdCompressionDict | None:
        try:
            # fixed COVER parameters: as good as zstd's parameter search on mail, 5x faster
            # [*samples]: the stub wants a list of any ByteString, a list[bytes] is not one
            return zstandard.train_dictionary(self.dictionary_size, [*samples], level=self.level, k=1024, d=8)
        except zstandard.ZstdError:
            return None  # too little material: plain frames until more arrives

    def _train(self, samples: list[bytes]) -> str | None:
        trained = self._trained(samples)
        return None if trained is None else self._adopt(trained)

    def _adopt(self, trained: zstandard.ZstdCompressionDict) -> str:
        """Store a trained dictionary (a blob too) and compress new frames with it."""
        bid = self._put_frame(trained.as_bytes(), dictionary=False)
        self.db.execute(
            "INSERT INTO dictionaries(blob, seq) VALUES (?1, (SELECT coalesce(max(seq) + 1, 0) FROM dictionaries))"
            " ON CONFLICT(blob) DO UPDATE SET seq = excluded.seq WHERE seq IS NULL",
            (_raw(bid),),
        )
        self._dicts[bid] = trained
        self._use_dictionary(bid)
        self._samples = []
        return bid

    def _finish_training(self, *, wait: bool) -> None:
        """The dictionary trained meanwhile, once done (``wait``: waiting for it): adopted, and
        the blobs that waited for it handed to the ahead maker (or, without one, left to
        ``_settle``) with it."""
        if self._training is None:
            return
        thread, outcome = self._training
        if thread.is_alive() and not wait:
            return
        thread.join()
        self._training = None
        trained = outcome[0] if outcome else None
        if trained is not None:
            self._adopt(trained)
        waited, self._waiting_dict = self._waiting_dict, []
        for bid in waited:
            if bid in self._ahead:
                data, _ = self._ahead[bid]
                dict_blob = self._dict_for(data, dictionary=True)
                self._ahead[bid] = (data, dict_blob)
                if self._ahead_maker is not None:
                    self._ask(self._ahead_maker, bid, data, dict_blob)

    # ------------------------------------------------------------ writing

    def exists(self, bid: str) -> bool:
        if bid in self._pending or bid in self._ahead:
            return True
        raw = _raw(bid)
        if raw is None:
            return False
        if self._known is None:
            # one scan instead of a query per put: imports check every message (~70 bytes a blob)
            self._seen_version = self._data_version()  # first: a commit after it is noticed
            self._known = {row[0] for row in self.db.execute("SELECT blob FROM blobs")}
            self._alone = True
        if raw in self._known:
            return True
        if self._alone:  # no other process committed to the file since the set was read
            return False
        # another process (a live-ingest worker) stores blobs too: it may have stored this one
        return self.db.execute("SELECT 1 FROM blobs WHERE blob=?", (raw,)).fetchone() is not None

    def _data_version(self) -> int:
        """SQLite's count of commits by other connections to the location index."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def _check_alone(self) -> None:
        """After a commit: whether another process committed since the known set was read
        (then exists() asks the file for what the set lacks, for the rest of this store's life)."""
        if self._known is not None and self._alone and self._data_version() != self._seen_version:
            self._alone = False

    def put(self, data: bytes, bid: str | None = None) -> str:
        """Store these bytes (once); the blob is durable after the next ``flush``.
        ``bid``: the caller's blob_id(data), when it already computed it."""
        bid = bid or blob_id(data)
        if self.exists(bid):
            return bid
        if self._ahead_maker is not None:
            self._put_ahead(self._ahead_maker, data, bid)
        else:
            self._put_frame(data, dictionary=True, bid=bid)
        if self._dict_blob is None and self._training is None and len(data) <= DICT_MAX_BLOB:
            self._samples.append(data)
            if len(self._samples) >= self.dictionary_samples:
                self._train(self._samples)
        return bid

    @property
    def ahead(self) -> Ahead | None:
        return self._ahead_maker

    @ahead.setter
    def ahead(self, maker: Ahead | None) -> None:
        """While set (a bulk run), each blob put is compressed by ``maker`` (another process)
        meanwhile; a frame not back when the pack is written is compressed here. Unset, what
        it was making goes into the pack first (taking the frames that are back)."""
        if self._ahead_maker is not None and maker is not self._ahead_maker:
            self._settle(wait=False)
        self._ahead_maker, self._told = maker, set()

    def _put_ahead(self, maker: Ahead, data: bytes, bid: str) -> None:
        self._finish_training(wait=False)
        dict_blob = self._dict_for(data, dictionary=True)
        self._ahead[bid] = (data, dict_blob)
        self._ahead_bytes += len(data)
        if self._training is not None and len(data) <= DICT_MAX_BLOB:
            self._waiting_dict.append(bid)  # compressed with the dictionary being trained
        else:
            self._ask(maker, bid, data, dict_blob)
        if self._ahead_bytes >= self.pack_size:  # what waits in memory stays a pack's worth
            self._settle(wait=False)

    def _ask(self, maker: Ahead, bid: str, data: bytes, dict_blob: str | None) -> None:
        name = dict_blob or "plain"
        if name not in self._told:
            dictionary = self._dictionary(dict_blob).as_bytes() if dict_blob else None
            maker.compressor(name, self.dictionary_level if dict_blob else self.level, dictionary)
            self._told.add(name)
        maker.compress(bid, data, name)

    def _settle(self, *, wait: bool) -> None:
        """The blobs put ahead into the pack, in put order: the frames made elsewhere that are
        back (with ``wait``, a flush's: or come within AHEAD_PATIENCE; the worker answers
        frames before text, so they come soon unless it is starved of CPU), the others
        compressed here."""
        self._finish_training(wait=True)
        ahead, self._ahead, self._ahead_bytes = self._ahead, {}, 0
        maker = self._ahead_maker
        until = time.monotonic() + AHEAD_PATIENCE if wait else None
        for bid, (data, dict_blob) in ahead.items():
            frame = maker.frame(bid, until) if maker is not None else None
            self._add_frame(bid, data, dict_blob, frame)

    def _dict_for(self, data: bytes, *, dictionary: bool) -> str | None:
        """The dictionary a new frame of ``data`` is compressed with (None: a plain frame)."""
        if dictionary and self._dict_compressor is not None and len(data) <= DICT_MAX_BLOB:
            return self._dict_blob
        return None

    def _put_frame(self, data: bytes, *, dictionary: bool, bid: str | None = None) -> str:
        bid = bid or blob_id(data)
        self._add_frame(bid, data, self._dict_for(data, dictionary=dictionary))
        return bid

    def _add_frame(self, bid: str, data: bytes, dict_blob: str | None, frame: bytes | None = None) -> None:
        """Append this blob's frame (``frame``, made elsewhere, or compressed here) to the pack."""
        if frame is None:
            frame = self._compressor(dict_blob).compress(data)
        # Round-trip check before anything is stored (restic 0.16.0-0.16.3 lost data to a
        # compressor bug only such a check would have caught), wherever the frame was made.
        if self._decompressor(dict_blob).decompress(frame) != data:
            raise StoreError(f"{bid}: compressed frame does not decompress to the original bytes")
        self._pending[bid] = len(self._members)
        self._members.append(Member(bid, len(self._buffer), len(frame), len(data), dict_blob))
        self._buffer += frame
        if len(self._buffer) >= self.pack_size:
            self._write_pack()

    def _compressor(self, dict_blob: str | None) -> zstandard.ZstdCompressor:
        if dict_blob is None:
            return self._plain
        if dict_blob == self._dict_blob and self._dict_compressor is not None:
            return self._dict_compressor
        return zstandard.ZstdCompressor(level=self.dictionary_level, dict_data=self._dictionary(dict_blob))

    def _write_pack(self, salt: bytes = b"") -> None:
        if not self._members:
            return
        plain = bytes(self._buffer)
        pack = self.cipher.pack_name(plain + salt)
        records, members = self._sealed_pack(pack, plain)
        data = self.indexes.pack_object(pack, records, members)  # with its sealed trailer, encrypted
        self.backend.put(pack_key(pack), data)
        faults.point(PACK_WRITTEN)  # a pack the location index does not place: check_pack_indexes
        self.indexes.write(pack, members)  # its index/ object, unencrypted
        self._record_pack(pack, len(data), members, self.cipher.record_format)
        self._buffer = bytearray()
        self._members = []
        self._pending = {}

    def _sealed_pack(self, pack: str, plain: bytes) -> tuple[bytes, list[Member]]:
        """The records of the pack object for these frames, and where each sits in it."""
        if not self.cipher.encrypted:
            return plain, self._members
        out = bytearray(self.cipher.header)
        members = []
        for m in self._members:
            frame = plain[m.offset : m.offset + m.length]
            try:  # what the pack index says of it need not be sealed twice (crypto.PACK_VERSION)
                stripped = strip_frame(frame, self._zstd_dict_id(m.dict), m.raw_size)
            except ValueError as e:
                raise StoreError(f"{m.blob}: {e}") from None
            record = self.cipher.seal_record(pack, pack_key(pack), len(out), m.blob, stripped)
            members.append(Member(m.blob, len(out), len(record), m.raw_size, m.dict))
            out += record
        return bytes(out), members

    def _frame(self, pack: str, m: Member, record: bytes, fmt: int) -> bytes:
        """The zstd frame in this record of a stored pack of format ``fmt`` (its header's
        version, 0 unencrypted), authenticated, then made whole again (format 2)."""
        try:
            opened = self.cipher.open_record(pack, pack_key(pack), m.offset, m.blob, record)
            return opened if fmt < 2 else restore_frame(opened, self._zstd_dict_id(m.dict), m.raw_size)
        except (AuthenticationFailed, EnvelopeError) as e:
            raise BlobCorrupt(f"{m.blob} in {e}") from None
        except PackFormatError as e:
            raise BlobCorrupt(f"{m.blob} in pack {pack}: {e}") from None

    def _zstd_dict_id(self, dict_blob: str | None) -> int:
        return self._dictionary(dict_blob).dict_id() if dict_blob else 0

    def _data_format(self, pack: str, data: bytes) -> int:
        """The format of a pack read whole (its header: EnvelopeError when it is not one)."""
        return self.cipher.check_header(pack_key(pack), data)

    def _pack_format(self, pack: str) -> int:
        if pack not in self._formats:
            row = self.db.execute("SELECT format FROM packs WHERE pack=?", (bytes.fromhex(pack),)).fetchone()
            self._formats[pack] = row[0] if row else self.cipher.record_format
        return self._formats[pack]

    def _record_pack(self, pack: str, size: int, members: list[Member], fmt: int) -> None:
        raw_pack = bytes.fromhex(pack)
        self.db.execute(
            "INSERT OR IGNORE INTO packs(pack, size, members, format) VALUES (?,?,?,?)",
            (raw_pack, size, len(members), fmt),
        )
        (pack_id,) = self.db.execute("SELECT id FROM packs WHERE pack=?", (raw_pack,)).fetchone()
        rows = [
            (_raw(m.blob), pack_id, m.offset, m.length, m.raw_size, self._dict_id(m.dict) if m.dict else None)
            for m in members
        ]
        self.db.executemany(
            "INSERT OR IGNORE INTO blobs(blob, pack, offset, length, raw_size, dict) VALUES (?,?,?,?,?,?)",
            rows,
        )
        if self._known is not None:
            self._known.update(r[0] for r in rows if r[0] is not None)

    def _dict_id(self, bid: str) -> int:
        if bid not in self._dict_ids:
            raw = _raw(bid)
            self.db.execute("INSERT OR IGNORE INTO dictionaries(blob) VALUES (?)", (raw,))
            self._dict_ids[bid] = self.db.execute(
                "SELECT id FROM dictionaries WHERE blob=?", (raw,)
            ).fetchone()[0]
        return self._dict_ids[bid]

    def _locate(self, bid: str) -> tuple[str, Member] | None:
        """The pack the location index puts ``bid`` in, and where in it."""
        raw = _raw(bid)
        row = None if raw is None else self.db.execute(_LOCATE + " WHERE b.blob=?", (raw,)).fetchone()
        return None if row is None else _located(row)

    def located(self) -> Iterator[tuple[str, Member]]:
        """Every blob the location index holds: its pack, and where in it."""
        for row in self.db.execute(_LOCATE):
            yield _located(row)

    def discard(self) -> None:
        """Forget blobs put since the last flush (the work that referenced them failed)."""
        self._ahead, self._ahead_bytes, self._waiting_dict = {}, 0, []
        if self._ahead_maker is not None:
            self._ahead_maker.forget_frames()
        self._buffer = bytearray()
        self._members = []
        self._pending = {}
        # rows since the last flush may name blobs that never reached the backend (a pack whose
        # write failed on a full disk, the dictionary trained in it): close() must not commit them
        self.db.rollback()
        self._known = None
        self._dict_ids = {}
        if self._dict_blob is not None and not self.exists(self._dict_blob):
            self._dict_blob = self._dict_compressor = None

    def flush(self) -> None:
        """Make every blob put so far durable in the backend."""
        self._settle(wait=True)
        self._write_pack()
        self.db.commit()
        self._check_alone()

    # ------------------------------------------------------------ reading

    def get(self, bid: str) -> bytes:
        if bid in self._ahead:
            return self._ahead[bid][0]
        if bid in self._pending:
            m = self._members[self._pending[bid]]
            frame = bytes(self._buffer[m.offset : m.offset + m.length])
            pack = "(unflushed)"
        else:
            found = self._locate(bid)
            if found is None:
                raise ObjectMissing(bid, self.backend.name)
            pack, m = found
            record = self.backend.get_range(pack_key(pack), m.offset, m.length)
            frame = self._frame(pack, m, record, self._pack_format(pack))
        return self._decode(m, frame, pack)

    def _decode(self, m: Member, frame: bytes, pack: str) -> bytes:
        try:
            data = self._decompressor(m.dict).decompress(frame, max_output_size=m.raw_size)
        except zstandard.ZstdError as e:
            raise BlobCorrupt(f"{m.blob} in pack {pack}: frame does not decompress ({e})") from None
        if blob_id(data) != m.blob:
            raise BlobCorrupt(f"{m.blob} in pack {pack}: content hashes to {blob_id(data)}")
        return data

    # ------------------------------------------------------------ maintenance

    def check(self, referenced: Iterable[str], *, read_data: bool = False, progress=None) -> list[Problem]:
        """Every referenced blob present in the backend itself; with read_data, re-hashed."""
        advance = progress or (lambda n=1, **kw: None)
        try:
            self.cipher.ready()  # the store's key, checked before anything else is looked at
        except StoreError as e:
            return [Problem("store key", str(e))]
        problems: list[Problem] = []
        packs = {k.rsplit("/", 1)[-1] for k in self.backend.list("packs/")}
        wanted: dict[str, list[Member]] = {}
        for bid in sorted(set(referenced)):
            found = self._locate(bid)
            if found is None:
                problems.append(Problem(f"blob {bid}", "missing: no pack holds it"))
            elif found[0] not in packs:
                problems.append(
                    Problem(f"blob {bid}", f"missing: pack {found[0]} is not in {self.backend.name}")
                )
            else:
                wanted.setdefault(found[0], []).append(found[1])
            advance(1)
        if read_data:
            for pack, members in sorted(wanted.items()):
                try:
                    data = self.backend.get(pack_key(pack))
                    fmt = self._data_format(pack, data)
                except StoreError as e:
                    problems.append(Problem(f"pack {pack}", str(e)))
                    continue
                for m in members:
                    try:
                        self._decode(m, self._frame(pack, m, data[m.offset : m.offset + m.length], fmt), pack)
                    except BlobCorrupt as e:
                        problems.append(Problem(f"blob {m.blob}", f"corrupt: {e}"))
                    advance(1)
        return problems

    # ------------------------------------------------------------ pack indexes

    def pack_names(self) -> set[str]:
        """Every pack the backend holds."""
        return {k.rsplit("/", 1)[-1] for k in self.backend.list("packs/")}

    def pack_index_names(self) -> set[str]:
        """Every pack whose index the backend holds: each with an ``index/`` object, or (an
        encrypted store, whose packs hold their index) every pack."""
        return self.indexes.names()

    def pack_bytes(self, pack: str) -> bytes:
        """A pack as stored: its frames (or sealed records and trailer) end to end."""
        return self.backend.get(pack_key(pack))

    def pack_length(self, pack: str) -> int:
        """The length of a pack as stored (what member offsets count in)."""
        return self.backend.size(pack_key(pack))

    def put_pack_index(self, pack: str, members: list[Member], *, replace: bool = False) -> None:
        """Store the index object of ``pack`` listing ``members`` (an encrypted store writes
        none: its packs hold their index); ``replace``: a damaged one is there."""
        self.indexes.write(pack, members, replace=replace)

    def pack_index(self, pack: str) -> list[Member]:
        """The members a pack's index lists, authenticated and decoded; StoreError naming it
        when it is missing, damaged or names another pack (PackDamaged: an encrypted pack
        whose trailer does not authenticate)."""
        return self.indexes.read(pack)

    def check_pack_indexes(self, referenced: Iterable[str], *, read_data: bool = False) -> list[Problem]:
        """Every pack has a readable index that matches it (its members within the pack;
        with ``read_data``, each member's frame decoding to its blob), every pack index has
        its pack, and every ``referenced`` blob (and dictionary in use) is listed by a pack
        index where the location index says it is: what a rebuild of the location index would
        find."""
        problems: list[Problem] = []
        packs, indexes = self.pack_names(), self.pack_index_names()
        # a blob may sit in two packs (a writer killed after a pack reached the backend and
        # before its location was committed writes it again): any listing will do
        listed: dict[str, list[tuple[str, int, int]]] = {}
        for pack in sorted(indexes):
            try:
                members = self.pack_index(pack)
            except PackDamaged as e:  # its own trailer: a damaged pack, which a rewrite mends
                placed = self._members_by_pack({pack})
                problems.append(
                    Problem(f"pack {pack}", f"{e} ({f'repair: {REWRITE}' if placed else UNPLACED})")
                )
                continue
            except StoreError as e:
                problems.append(Problem(f"pack index {pack}", f"unreadable: {e} (repair: verify --repair)"))
                continue
            for m in members:  # listed, even when the pack is gone (check() names those blobs)
                listed.setdefault(m.blob, []).append((pack, m.offset, m.length))
            if pack not in packs:
                problems.append(
                    Problem(f"pack index {pack}", f"its pack is missing ({len(members)} blob(s))")
                )
                continue
            problems += self._match(pack, members, read_data)
        # and the dictionaries their frames need
        needed = set(referenced)
        needed |= {
            _bid(r[0])
            for r in self.db.execute(
                "SELECT blob FROM dictionaries WHERE id IN (SELECT DISTINCT dict FROM blobs)"
            )
        }
        problems += self._unindexed(packs - indexes, needed)
        for bid in sorted(needed):
            found = self._locate(bid)
            if found is None or found[0] not in packs:
                continue  # check() reports it missing (and where a pack index names it, its pack)
            pack, m = found
            where = listed.get(bid)
            if not where:
                problems.append(
                    Problem(f"blob {bid}", f"no pack index lists it (the location index: pack {pack})")
                )
            elif (pack, m.offset, m.length) not in where:
                problems.append(
                    Problem(
                        f"blob {bid}",
                        f"the location index puts it in pack {pack}, its pack index in {where[0][0]}",
                    )
                )
        return problems

    def _match(self, pack: str, members: list[Member], read_data: bool) -> list[Problem]:
        """How a pack index fails to match its pack (nothing: it matches)."""
        size = self.pack_length(pack)
        beyond = [m.blob for m in members if m.offset + m.length > size]
        if beyond:
            return [
                Problem(f"pack index {pack}", f"does not match its pack: {beyond[0]} lies beyond its end")
            ]
        if not read_data:
            return []
        data = self.pack_bytes(pack)
        try:
            fmt = self._data_format(pack, data)
        except StoreError as e:
            return [Problem(f"pack {pack}", str(e))]
        failed: list[BlobCorrupt] = []
        for m in members:
            try:
                self._decode(m, self._frame(pack, m, data[m.offset : m.offset + m.length], fmt), pack)
            except BlobCorrupt as e:
                failed.append(e)
        # an index that does not fit its pack fails on every member; some failing are damaged
        # records (check() names each blob), which a new index would not mend
        if members and len(failed) == len(members):
            return [Problem(f"pack index {pack}", f"does not match its pack: {failed[0]}")]
        return []

    def index_from_pack(self, pack: str) -> list[Member]:
        """A pack's members read from the pack alone: each frame's span from its headers,
        its dictionary from the id in its header, its blob id from its decoded bytes; an
        encrypted pack's from the index sealed at its end."""
        if self.indexes.in_pack:
            return self.pack_index(pack)
        data = self.pack_bytes(pack)
        by_id = self._dictionaries_by_id()
        members = []
        for offset, length in frame_spans(data):
            frame = data[offset : offset + length]
            dict_id = zstandard.get_frame_parameters(frame).dict_id
            dict_blob = by_id.get(dict_id) if dict_id else None
            if dict_id and dict_blob is None:
                raise DictionaryUnknown(
                    f"pack {pack}: a frame at {offset} needs dictionary {dict_id}, which no pack holds"
                )
            raw = self._decompressor(dict_blob).decompress(frame)
            members.append(Member(blob_id(raw), offset, length, len(raw), dict_blob))
            if raw[:4] == DICT_MAGIC:  # a dictionary: later frames of this pack may need it
                trained = zstandard.ZstdCompressionDict(raw)
                self._dicts.setdefault(members[-1].blob, trained)
                self._found_dicts[trained.dict_id()] = members[-1].blob
                by_id[trained.dict_id()] = members[-1].blob
        return members

    def _dictionaries_by_id(self) -> dict[int, str]:
        """zstd dictionary id -> its blob, of every dictionary the store knows."""
        known = {_bid(r[0]) for r in self.db.execute("SELECT blob FROM dictionaries")}
        out = dict(self._found_dicts)
        for bid in known - set(out.values()):
            try:
                out[self._dictionary(bid).dict_id()] = bid
            except StoreError:
                continue  # lost with its pack's index: found again in the pack walked
        return out

    def _unindexed(self, packs: set[str], needed: set[str]) -> list[Problem]:
        """The packs without a pack index that are damage. A writer killed after a pack reached
        the backend and before its index did (PACK_WRITTEN) leaves one the location index
        places nothing in: its blobs were never recorded, the work that put them is written
        again, so it is a leftover, not a loss -- unless some needed blob is placed nowhere
        (a location index rolled back or rebuilt): then it may be where that blob is."""
        if not packs:
            return []
        placed = self._members_by_pack(packs)
        unplaced_needed = any(self._locate(bid) is None for bid in needed)
        return [
            Problem(f"pack {pack}", "has no pack index (repair: verify --repair rebuilds it from the pack)")
            for pack in sorted(packs)
            if pack in placed or unplaced_needed
        ]

    def repair_pack_indexes(self) -> list[str]:
        """Mend every pack whose index is missing, unreadable or does not match it; returns
        those packs. An index object is written again from its pack (``index_from_pack``);
        an encrypted pack whose trailer is damaged is written again, as a new pack with a new
        trailer, from the blobs the location index places in it (when each of them reads
        back: a damaged record is never copied)."""
        self.flush()
        packs, indexes = self.pack_names(), self.pack_index_names()
        todo = []
        for pack in sorted(packs):
            if pack in indexes:
                try:
                    if not self._match(pack, self.pack_index(pack), read_data=True):
                        continue
                except StoreError:
                    pass
            todo.append(pack)
        if self.indexes.in_pack:
            return [pack for pack in todo if self._rewrite_damaged(pack)]
        redone: list[str] = []
        while todo:  # a pack whose frames need a dictionary another pack holds waits for it
            waiting: list[str] = []
            for pack in todo:
                try:
                    members = self.index_from_pack(pack)
                except DictionaryUnknown:
                    waiting.append(pack)
                    continue
                self.put_pack_index(pack, members, replace=pack in indexes)
                redone.append(pack)
            if len(waiting) == len(todo):
                self.index_from_pack(waiting[0])  # raises, naming the dictionary none holds
            todo = waiting
        return redone

    def _rewrite_damaged(self, pack: str) -> bool:
        """Write the blobs the location index places in ``pack`` into a new pack and delete
        it; False (nothing done) when it places none there, or one does not read back."""
        members = self._members_by_pack({pack}).get(pack, [])
        if not members:
            return False
        data = self.pack_bytes(pack)
        try:
            fmt = self._data_format(pack, data)
            for m in members:
                self._decode(m, self._frame(pack, m, data[m.offset : m.offset + m.length], fmt), pack)
        except StoreError:  # (BlobCorrupt, or a header that is not one)
            return False
        self._repack(pack, members, data, salt=b"\0rewritten from " + pack.encode())
        self._drop_pack(pack, members)
        return True

    def rebuild_index(self) -> list[str]:
        """Regenerate the local location index from the backend's pack indexes alone;
        returns the packs whose index could not be read (verify names each)."""
        self.flush()
        try:
            self.db.execute("DELETE FROM blobs")
            self.db.execute("DELETE FROM packs")
            skipped = self._load()
        except BaseException:
            self.db.rollback()  # the old rows stay: a later commit must not make them none
            self._known = None
            raise
        self.db.commit()
        return skipped

    def _load(self) -> list[str]:
        """Record every pack index the backend holds (uncommitted); the packs whose index is
        damaged or gone. Anything else (the backend unreachable, the wrong key) raises: a
        location index is never made from what could not be asked."""
        self._known = None
        skipped = []
        names = sorted(self.pack_index_names())
        if names:
            self.cipher.ready()  # the store's key, before a trailer could fail for want of it
        for pack in names:
            try:
                fmt, members = self.indexes.read_with_format(pack)
                size = self.pack_length(pack) if self.backend.exists(pack_key(pack)) else 0
            except (IndexUnreadable, ObjectMissing):
                skipped.append(pack)
                continue
            self._record_pack(pack, size, members, fmt)
        return skipped

    def _members_by_pack(self, packs: set[str]) -> dict[str, list[Member]]:
        """The blobs the location index places in each of ``packs``, in offset order (one
        scan of it: no index by pack is kept, it would cost as much as the rows)."""
        ids = [
            r[0]
            for p in sorted(packs)
            for r in self.db.execute("SELECT id FROM packs WHERE pack=?", (bytes.fromhex(p),))
        ]
        out: dict[str, list[Member]] = {}
        for chunk in range(0, len(ids), 500):
            marks = ",".join("?" * len(ids[chunk : chunk + 500]))
            for row in self.db.execute(_LOCATE + f" WHERE b.pack IN ({marks})", ids[chunk : chunk + 500]):
                pack, m = _located(row)
                out.setdefault(pack, []).append(m)
        for members in out.values():
            members.sort(key=lambda m: m.offset)
        return out

    def _repack(self, pack: str, survivors: list[Member], data: bytes, *, salt: bytes = b"") -> None:
        """Write ``survivors`` of ``pack`` (as stored: ``data``) into a new pack, durable and
        located before anything of the old one goes (``salt``: what names it, when they are
        all of its blobs, apart from the old pack, whose name their frames alone would give)."""
        fmt = self._data_format(pack, data)
        for m in survivors:
            frame = self._frame(pack, m, data[m.offset : m.offset + m.length], fmt)
            self._decode(m, frame, pack)  # never copy damage
            self._members.append(Member(m.blob, len(self._buffer), len(frame), m.raw_size, m.dict))
            self._pending[m.blob] = len(self._members) - 1
            self._buffer += frame
            self.db.execute("DELETE FROM blobs WHERE blob=?", (_raw(m.blob),))
        self._write_pack(salt)  # the survivors, durable, then indexed in the same commit
        self.db.commit()

    def _drop_pack(self, pack: str, members: list[Member]) -> None:
        """Delete ``pack`` (and its index object) from the backend, then forget it here."""
        self._delete(pack_key(pack))
        faults.point("purge.deleted-packs")
        for key in self.indexes.objects(pack):
            self._delete(key)
        faults.point("purge.deleted-index")  # (encrypted, there is none: the same point, after the pack)
        row = self.db.execute("SELECT id FROM packs WHERE pack=?", (bytes.fromhex(pack),)).fetchone()
        if row:
            self.db.executemany(
                "DELETE FROM blobs WHERE blob=? AND pack=?", [(_raw(m.blob), row[0]) for m in members]
            )
            self.db.execute("DELETE FROM packs WHERE id=?", (row[0],))
        self.db.commit()

    def _delete(self, key: str) -> None:
        try:
            self.backend.delete(key)
        except ObjectMissing:
            pass

    def delete_blobs(self, bids: Iterable[str]) -> dict:
        """Remove blobs (purges only): a pack left with no live member is deleted whole, a pack
        with survivors is rewritten without the dead ones (repack). Crash-safe in this order,
        per pack: the survivors' new pack is durable and indexed first; then the old pack's
        objects are deleted from the backend; only then does the index forget the dead blobs.
        So a crash leaves the dead blobs listed here (and the caller, vault/purge.py, deletes
        them again), never content in the backend that no index lists. Returns counts."""
        self.flush()
        doomed = set(bids)
        packs = {found[0] for b in doomed if (found := self._locate(b))}
        deleted = repacked = 0
        for pack, members in sorted(self._members_by_pack(packs).items()):
            survivors = [m for m in members if m.blob not in doomed]
            if survivors:
                self._repack(pack, survivors, self.pack_bytes(pack))
                repacked += 1
                faults.point("purge.repacked")
            self._drop_pack(pack, members)
            deleted += 1
        self._known = None
        return {"blobs": len(doomed), "packs_removed": deleted, "packs_rewritten": repacked}

    def packs_of(self, bids: Iterable[str]) -> set[str]:
        self.flush()
        return {found[0] for b in set(bids) if (found := self._locate(b))}

    def set_legal_holds(self, held_blobs: Iterable[str]) -> dict:
        """Storage-level legal hold on exactly the packs holding a held blob (S3 Object
        Lock); lifted from a pack only when none of its blobs is held any more."""
        held = self.packs_of(held_blobs)
        changed = 0
        self.db.execute("CREATE TABLE IF NOT EXISTS legal_holds (pack TEXT PRIMARY KEY)")
        before = {r[0] for r in self.db.execute("SELECT pack FROM legal_holds")}
        for pack in sorted(held - before):
            if not self.backend.set_legal_hold(pack_key(pack), True):
                return {"supported": False}
            self.db.execute("INSERT OR IGNORE INTO legal_holds(pack) VALUES (?)", (pack,))
            changed += 1
        for pack in sorted(before - held):
            try:
                self.backend.set_legal_hold(pack_key(pack), False)
            except ObjectMissing:
                pass
            self.db.execute("DELETE FROM legal_holds WHERE pack=?", (pack,))
            changed += 1
        self.db.commit()
        return {"supported": True, "held_packs": len(held), "changed": changed}

    def stats(self) -> dict:
        blobs, raw, stored = self.db.execute(
            "SELECT count(*), coalesce(sum(raw_size),0), coalesce(sum(length),0) FROM blobs"
        ).fetchone()
        packs = self.db.execute("SELECT count(*) FROM packs").fetchone()[0]
        return {
            "blobs": blobs,
            "packs": packs,
            "raw_bytes": raw,
            "stored_bytes": stored,
            "dictionary": self.dictionary,
        }

    def close(self) -> None:
        self.flush()
        self.db.close()
