"""The content-addressed store: blobs by SHA-256, zstd frames packed many to an object.

Each blob is one self-contained zstd frame, compressed with the current trained dictionary
when it is small enough to profit; frames are appended to a pack that is written to the
backend as one object (``packs/<ab>/<pack>``) with a pack index object (``index/<pack>``)
naming every member's blob id, offset, length, raw size and the dictionary blob its frame
needs. The pack indexes alone rebuild the local location index, and every frame stays
decodable forever because dictionaries are blobs too. Reads always re-hash; writes
decompress and compare every frame before it is stored.

What reaches the backend goes through ``self.cipher`` (store/crypto.py): an encrypted store
seals each frame as a record, each pack index as an envelope, and names packs by keyed id;
an unencrypted one names them by the sha256 of their bytes. Offsets and lengths in the
indexes are those of the stored records; the API above (blob ids, get, put) is the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import zstandard

from vault.model import Problem, blob_id
from vault.store.backends import open_backend
from vault.store.backends.base import Backend, ObjectMissing, StoreError
from vault.store.crypto import AuthenticationFailed, Cipher, EnvelopeError, PlainCipher
from vault.store.pack import Member, PackFormatError, decode_pack_index, encode_pack_index, frame_spans
from vault.store.sqlite import connect

TRAILER = "pack-index"  # the associated data naming an encrypted pack's sealed index record
DICT_MAX_BLOB = 256 * 1024  # larger blobs gain nothing from a dictionary
DICT_MAGIC = b"\x37\xa4\x30\xec"  # a zstd dictionary's first bytes

SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (blob TEXT PRIMARY KEY, pack TEXT NOT NULL, offset INTEGER NOT NULL,
                                  length INTEGER NOT NULL, raw_size INTEGER NOT NULL, dict TEXT);
CREATE INDEX IF NOT EXISTS blobs_pack ON blobs(pack);
CREATE TABLE IF NOT EXISTS packs (pack TEXT PRIMARY KEY, size INTEGER NOT NULL, members INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dictionaries (blob TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""


class BlobCorrupt(StoreError):
    pass


class DictionaryUnknown(StoreError):
    """A frame names a zstd dictionary no pack the store knows holds."""


def pack_key(pack: str) -> str:
    return f"packs/{pack[:2]}/{pack}"


def index_key(pack: str) -> str:
    return f"index/{pack}"


class ContentStore:
    def __init__(
        self,
        backend: Backend,
        index_path: Path,
        *,
        pack_size: int = 16 << 20,
        level: int = 3,
        dictionary_level: int = 6,
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
            self.db.executescript(SCHEMA)
        self._plain = zstandard.ZstdCompressor(level=level)
        self._buffer = bytearray()
        self._members: list[Member] = []
        self._pending: dict[str, int] = {}  # blob -> index in _members
        self._samples: list[bytes] = []
        self._known: set[str] | None = None
        self._found_dicts: dict[int, str] = {}  # dictionaries found walking packs (index_from_pack)
        self._dicts: dict[str, zstandard.ZstdCompressionDict] = {}
        self._decompressors: dict[str | None, zstandard.ZstdDecompressor] = {
            None: zstandard.ZstdDecompressor()
        }
        self._dict_blob: str | None = None
        self._dict_compressor: zstandard.ZstdCompressor | None = None
        row = self.db.execute("SELECT blob FROM dictionaries ORDER BY seq DESC LIMIT 1").fetchone()
        if row:
            self._use_dictionary(row[0])

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

    def ensure_dictionary(self, samples: Iterable[bytes]) -> str | None:
        """Train a dictionary from ``samples`` unless one exists or they are too few."""
        if self._dict_blob is not None:
            return self._dict_blob
        usable = [s for s in samples if 0 < len(s) <= DICT_MAX_BLOB]
        if len(usable) < self.dictionary_samples:
            return None
        return self._train(usable)

    def _train(self, samples: list[bytes]) -> str | None:
        try:
            # fixed COVER parameters: as good as zstd's parameter search on mail, 5x faster
            # [*samples]: the stub wants a list of any ByteString, a list[bytes] is not one
            trained = zstandard.train_dictionary(
                self.dictionary_size, [*samples], level=self.level, k=1024, d=8
            )
        except zstandard.ZstdError:
            return None  # too little material: plain frames until more arrives
        bid = self._put_frame(trained.as_bytes(), dictionary=False)
        self.db.execute(
            "INSERT OR IGNORE INTO dictionaries(blob, seq) VALUES (?, (SELECT count(*) FROM dictionaries))",
            (bid,),
        )
        self._dicts[bid] = trained
        self._use_dictionary(bid)
        self._samples = []
        return bid

    # ------------------------------------------------------------ writing

    def exists(self, bid: str) -> bool:
        if bid in self._pending:
            return True
        if self._known is None:
            # one scan instead of a query per put: imports check every message (~40 bytes a blob)
            self._known = {row[0] for row in self.db.execute("SELECT blob FROM blobs")}
        if bid in self._known:
            return True
        # another process (a second worker) may have stored it since
        return self.db.execute("SELECT 1 FROM blobs WHERE blob=?", (bid,)).fetchone() is not None

    def put(self, data: bytes, bid: str | None = None) -> str:
        """Store these bytes (once); the blob is durable after the next ``flush``.
        ``bid``: the caller's blob_id(data), when it already computed it."""
        bid = bid or blob_id(data)
        if self.exists(bid):
            return bid
        self._put_frame(data, dictionary=True, bid=bid)
        if self._dict_blob is None and len(data) <= DICT_MAX_BLOB:
            self._samples.append(data)
            if len(self._samples) >= self.dictionary_samples:
                self._train(self._samples)
        return bid

    def _put_frame(self, data: bytes, *, dictionary: bool, bid: str | None = None) -> str:
        bid = bid or blob_id(data)
        compressor, dict_blob = self._plain, None
        if dictionary and self._dict_compressor is not None and len(data) <= DICT_MAX_BLOB:
            compressor, dict_blob = self._dict_compressor, self._dict_blob
        frame = compressor.compress(data)
        # Round-trip check before anything is stored (restic 0.16.0-0.16.3 lost data to a
        # compressor bug only such a check would have caught).
        if self._decompressor(dict_blob).decompress(frame) != data:
            raise StoreError(f"{bid}: compressed frame does not decompress to the original bytes")
        self._pending[bid] = len(self._members)
        self._members.append(Member(bid, len(self._buffer), len(frame), len(data), dict_blob))
        self._buffer += frame
        if len(self._buffer) >= self.pack_size:
            self._write_pack()
        return bid

    def _write_pack(self) -> None:
        if not self._members:
            return
        plain = bytes(self._buffer)
        pack = self.cipher.pack_name(plain)
        data, members = self._sealed_pack(pack, plain)
        self.backend.put(pack_key(pack), data)
        self.backend.put(
            index_key(pack), self.cipher.seal_object(index_key(pack), encode_pack_index(pack, members))
        )
        self._record_pack(pack, len(data), members)
        self._buffer = bytearray()
        self._members = []
        self._pending = {}

    def _sealed_pack(self, pack: str, plain: bytes) -> tuple[bytes, list[Member]]:
        """The pack object for these frames, and where each member's record sits in it."""
        if not self.cipher.encrypted:
            return plain, self._members
        out = bytearray(self.cipher.header)
        members = []
        for m in self._members:
            record = self.cipher.seal_record(
                pack, pack_key(pack), len(out), m.blob, plain[m.offset : m.offset + m.length]
            )
            members.append(Member(m.blob, len(out), len(record), m.raw_size, m.dict))
            out += record
        # the pack describes itself, as restic's do: its index sealed at its end, then that
        # trailer's length, so a pack index lost with the location index is rebuilt from it
        trailer = self.cipher.seal_record(
            pack, pack_key(pack), len(out), TRAILER, encode_pack_index(pack, members)
        )
        out += trailer + len(trailer).to_bytes(4, "big")
        return bytes(out), members

    def _frame(self, pack: str, m: Member, record: bytes) -> bytes:
        """The zstd frame in this record of a stored pack, authenticated."""
        try:
            return self.cipher.open_record(pack, pack_key(pack), m.offset, m.blob, record)
        except (AuthenticationFailed, EnvelopeError) as e:
            raise BlobCorrupt(f"{m.blob} in {e}") from None

    def _record_pack(self, pack: str, size: int, members: list[Member]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO blobs(blob, pack, offset, length, raw_size, dict) VALUES (?,?,?,?,?,?)",
            [(m.blob, pack, m.offset, m.length, m.raw_size, m.dict) for m in members],
        )
        self.db.execute(
            "INSERT OR IGNORE INTO packs(pack, size, members) VALUES (?,?,?)", (pack, size, len(members))
        )
        if self._known is not None:
            self._known.update(m.blob for m in members)

    def discard(self) -> None:
        """Forget blobs put since the last flush (the work that referenced them failed)."""
        self._buffer = bytearray()
        self._members = []
        self._pending = {}
        # rows since the last flush may name blobs that never reached the backend (a pack whose
        # write failed on a full disk, the dictionary trained in it): close() must not commit them
        self.db.rollback()
        self._known = None
        if self._dict_blob is not None and not self.exists(self._dict_blob):
            self._dict_blob = self._dict_compressor = None

    def flush(self) -> None:
        """Make every blob put so far durable in the backend."""
        self._write_pack()
        self.db.commit()

    # ------------------------------------------------------------ reading

    def get(self, bid: str) -> bytes:
        if bid in self._pending:
            m = self._members[self._pending[bid]]
            frame = bytes(self._buffer[m.offset : m.offset + m.length])
            pack = "(unflushed)"
        else:
            row = self.db.execute(
                "SELECT pack, offset, length, raw_size, dict FROM blobs WHERE blob=?", (bid,)
            ).fetchone()
            if row is None:
                raise ObjectMissing(bid, self.backend.name)
            pack = row[0]
            m = Member(bid, row[1], row[2], row[3], row[4])
            frame = self._frame(pack, m, self.backend.get_range(pack_key(pack), m.offset, m.length))
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
            row = self.db.execute(
                "SELECT pack, offset, length, raw_size, dict FROM blobs WHERE blob=?", (bid,)
            ).fetchone()
            if row is None:
                problems.append(Problem(f"blob {bid}", "missing: no pack holds it"))
            elif row[0] not in packs:
                problems.append(
                    Problem(f"blob {bid}", f"missing: pack {row[0]} is not in {self.backend.name}")
                )
            else:
                wanted.setdefault(row[0], []).append(Member(bid, row[1], row[2], row[3], row[4]))
            advance(1)
        if read_data:
            for pack, members in sorted(wanted.items()):
                try:
                    data = self.backend.get(pack_key(pack))
                    self.cipher.check_header(pack_key(pack), data)
                except StoreError as e:
                    problems.append(Problem(f"pack {pack}", str(e)))
                    continue
                for m in members:
                    try:
                        self._decode(m, self._frame(pack, m, data[m.offset : m.offset + m.length]), pack)
                    except BlobCorrupt as e:
                        problems.append(Problem(f"blob {m.blob}", f"corrupt: {e}"))
                    advance(1)
        return problems

    def read_pack_index(self, key: str) -> tuple[str, list[Member]]:
        """The pack index object ``key`` (``index/<pack>``), authenticated and decoded: its
        pack and members (offsets and lengths of the records as stored in the pack)."""
        try:
            return decode_pack_index(self.cipher.open_object(key, self.backend.get(key)))
        except (PackFormatError, AuthenticationFailed, EnvelopeError) as e:
            raise StoreError(f"{self.backend.name}{key}: {e}") from None

    # ------------------------------------------------------------ pack indexes

    def pack_names(self) -> set[str]:
        """Every pack the backend holds."""
        return {k.rsplit("/", 1)[-1] for k in self.backend.list("packs/")}

    def pack_index_names(self) -> set[str]:
        """Every pack index the backend holds (named by its pack)."""
        return {k.rsplit("/", 1)[-1] for k in self.backend.list("index/")}

    def pack_bytes(self, pack: str) -> bytes:
        """A pack as stored: its frames end to end."""
        return self.backend.get(pack_key(pack))

    def pack_length(self, pack: str) -> int:
        """The length of a pack's frames end to end (what member offsets count in)."""
        return self.backend.size(pack_key(pack))

    def put_pack_index(self, pack: str, members: list[Member], *, replace: bool = False) -> None:
        """Store the index object of ``pack`` listing ``members``; ``replace``: a damaged one
        is there (backends never overwrite: it is deleted first; a crash between leaves the
        pack without an index, which the next repair regenerates)."""
        key = index_key(pack)
        if replace:
            try:
                self.backend.delete(key)
            except ObjectMissing:
                pass
        if not self.backend.put(key, self.cipher.seal_object(key, encode_pack_index(pack, members))):
            raise StoreError(f"{self.backend.name}{key}: could not be replaced")

    def pack_index(self, pack: str) -> list[Member]:
        """The members a pack's index object lists; PackFormatError when it is damaged or
        names another pack."""
        named, members = self.read_pack_index(index_key(pack))
        if named != pack:
            raise PackFormatError(f"the pack index of {pack} names pack {named}")
        return members

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
            except (PackFormatError, StoreError) as e:
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
        for pack in sorted(packs - indexes):
            problems.append(
                Problem(
                    f"pack {pack}", "has no pack index (repair: verify --repair rebuilds it from the pack)"
                )
            )
        # and the dictionaries their frames need
        needed = set(referenced)
        needed |= {r[0] for r in self.db.execute("SELECT DISTINCT dict FROM blobs WHERE dict IS NOT NULL")}
        for bid in sorted(needed):
            row = self.db.execute("SELECT pack, offset, length FROM blobs WHERE blob=?", (bid,)).fetchone()
            if row is None:
                continue  # check() reports it missing
            found = listed.get(bid)
            if not found:
                problems.append(
                    Problem(f"blob {bid}", f"no pack index lists it (the location index: pack {row[0]})")
                )
            elif tuple(row) not in found:
                problems.append(
                    Problem(
                        f"blob {bid}",
                        f"the location index puts it in pack {row[0]}, its pack index in {found[0][0]}",
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
        failed: list[BlobCorrupt] = []
        for m in members:
            try:
                self._decode(m, self._frame(pack, m, data[m.offset : m.offset + m.length]), pack)
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
        if self.cipher.encrypted:
            return self._index_from_trailer(pack)
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

    def _index_from_trailer(self, pack: str) -> list[Member]:
        """An encrypted pack's members from the index sealed at its end (``_sealed_pack``):
        authenticated under the pack's key (each record is again when it is read)."""
        data = self.pack_bytes(pack)
        size = int.from_bytes(data[-4:], "big") if len(data) >= 4 else 0
        start = len(data) - 4 - size
        if size <= 0 or start < len(self.cipher.header):
            raise StoreError(f"pack {pack}: no sealed index at its end")
        try:
            plain = self.cipher.open_record(pack, pack_key(pack), start, TRAILER, data[start:-4])
            named, members = decode_pack_index(plain)
        except (AuthenticationFailed, EnvelopeError, PackFormatError) as e:
            raise StoreError(f"pack {pack}: its sealed index cannot be read ({e})") from None
        if named != pack:
            raise StoreError(f"pack {pack}: its sealed index names pack {named}")
        return members

    def _dictionaries_by_id(self) -> dict[int, str]:
        """zstd dictionary id -> its blob, of every dictionary the store knows."""
        known = {r[0] for r in self.db.execute("SELECT blob FROM dictionaries")}
        known |= {r[0] for r in self.db.execute("SELECT DISTINCT dict FROM blobs WHERE dict IS NOT NULL")}
        out = dict(self._found_dicts)
        for bid in known - set(out.values()):
            try:
                out[self._dictionary(bid).dict_id()] = bid
            except StoreError:
                continue  # lost with its pack's index: found again in the pack walked
        return out

    def repair_pack_indexes(self) -> list[str]:
        """Write a new index for every pack whose index is missing, unreadable or does not
        match it, read from the pack itself (``index_from_pack``); returns those packs."""
        self.flush()
        packs, indexes = self.pack_names(), self.pack_index_names()
        todo = []
        for pack in sorted(packs):
            if pack in indexes:
                try:
                    if not self._match(pack, self.pack_index(pack), read_data=True):
                        continue
                except (PackFormatError, StoreError):
                    pass
            todo.append(pack)
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

    def rebuild_index(self) -> None:
        """Regenerate the local location index from the backend's pack indexes alone."""
        self.flush()
        self.db.execute("DELETE FROM blobs")
        self.db.execute("DELETE FROM packs")
        self._known = None
        for key in self.backend.list("index/"):
            pack, members = self.read_pack_index(key)
            self._record_pack(
                pack, self.backend.size(pack_key(pack)) if self.backend.exists(pack_key(pack)) else 0, members
            )
        self.db.commit()

    def delete_blobs(self, bids: Iterable[str]) -> dict:
        """Remove blobs (purges only): a pack left with no live member is deleted whole, a pack
        with survivors is rewritten without the dead ones (repack). Crash-safe in this order,
        per pack: the survivors' new pack is durable and indexed first; then the old pack's
        objects are deleted from the backend; only then does the index forget the dead blobs.
        So a crash leaves the dead blobs listed here (and the caller, vault/purge.py, deletes
        them again), never content in the backend that no index lists. Returns counts."""
        from vault import faults

        self.flush()
        doomed = set(bids)
        packs = {
            row[0] for b in doomed for row in self.db.execute("SELECT pack FROM blobs WHERE blob=?", (b,))
        }
        deleted = repacked = 0
        for pack in sorted(packs):
            rows = self.db.execute(
                "SELECT blob, offset, length, raw_size, dict FROM blobs WHERE pack=? ORDER BY offset", (pack,)
            ).fetchall()
            members = [Member(*r) for r in rows]
            survivors = [m for m in members if m.blob not in doomed]
            if survivors:
                data = self.backend.get(pack_key(pack))
                for m in survivors:
                    frame = self._frame(pack, m, data[m.offset : m.offset + m.length])
                    self._decode(m, frame, pack)  # never copy damage
                    self._members.append(Member(m.blob, len(self._buffer), len(frame), m.raw_size, m.dict))
                    self._pending[m.blob] = len(self._members) - 1
                    self._buffer += frame
                    self.db.execute("DELETE FROM blobs WHERE blob=?", (m.blob,))
                self._write_pack()  # the survivors, durable, then indexed in the same commit
                self.db.commit()
                repacked += 1
                faults.point("purge.repacked")
            for key in (pack_key(pack), index_key(pack)):
                try:
                    self.backend.delete(key)
                except ObjectMissing:
                    pass
                faults.point(f"purge.deleted-{key.split('/')[0]}")
            self.db.execute("DELETE FROM blobs WHERE pack=?", (pack,))
            self.db.execute("DELETE FROM packs WHERE pack=?", (pack,))
            self.db.commit()
            deleted += 1
        self._known = None
        return {"blobs": len(doomed), "packs_removed": deleted, "packs_rewritten": repacked}

    def packs_of(self, bids: Iterable[str]) -> set[str]:
        self.flush()
        return {
            row[0] for b in set(bids) for row in self.db.execute("SELECT pack FROM blobs WHERE blob=?", (b,))
        }

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
