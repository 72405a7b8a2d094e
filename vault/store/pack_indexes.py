"""Where a pack's index lives: one policy per store, the same calls either way.

- **Index objects** (an unencrypted store): the index of ``packs/<ab>/<pack>`` is the object
  ``index/<pack>`` beside it (store/pack.py's encoding, as it is). Its pack is zstd frames end
  to end, walkable from their own headers, so a lost index object is written again from the
  pack (``ContentStore.index_from_pack``).
- **Trailers** (an encrypted store): the pack carries its own index, sealed under the pack's
  key as one more record after the last blob's, at its offset, with associated data naming it
  ``pack-index``, then that record's length (4 bytes, big-endian). There is no ``index/``
  object: the trailer is the pack index, read with two range reads at most (the pack's tail,
  then the rest of a trailer longer than it). The length is not sealed, but it is where the
  record's nonce comes from: a changed length names another offset, which does not
  authenticate. A trailer that does not authenticate is a damaged pack (``PackDamaged``), not
  a missing index: sealed records do not delimit themselves, so nothing but the location
  index can say where its blobs are.

``ContentStore`` (store/cas.py) holds one as ``self.indexes`` and asks it what a pack object
is made of, what to write after it, which packs have a readable index, and what to delete
with a pack.
"""

from __future__ import annotations

from vault.store.backends.base import Backend, ObjectMissing, StoreError
from vault.store.crypto import TAG, AuthenticationFailed, Cipher, EnvelopeError
from vault.store.pack import MAX_INDEX_BYTES, Member, PackFormatError, decode_pack_index, encode_pack_index

TRAILER = "pack-index"  # the associated data naming an encrypted pack's sealed index record
_LENGTH = 4  # bytes of the trailer's length, at the pack's very end
_TAIL = 64 * 1024  # bytes read from a pack's end at first: the whole trailer, mostly


class IndexUnreadable(StoreError):
    """A pack index that is there and cannot be read: damaged, or another pack's."""


class PackDamaged(IndexUnreadable):
    """A pack whose own index (its trailer) cannot be read: it was changed or cut."""


def pack_key(pack: str) -> str:
    return f"packs/{pack[:2]}/{pack}"


def index_key(pack: str) -> str:
    return f"index/{pack}"


class IndexObjects:
    """An unencrypted store's: ``index/<pack>`` objects beside the packs."""

    in_pack = False
    what = "pack index"  # what a problem with one is called (verify)

    def __init__(self, backend: Backend, cipher: Cipher):
        self.backend, self.cipher = backend, cipher

    def pack_object(self, pack: str, records: bytes, members: list[Member]) -> bytes:
        return records

    def write(self, pack: str, members: list[Member], *, replace: bool = False) -> None:
        """Store the index of ``pack``; ``replace``: a damaged one is there (backends never
        overwrite: it is deleted first; a crash between leaves the pack without an index,
        which the next repair writes again)."""
        key = index_key(pack)
        if replace:
            try:
                self.backend.delete(key)
            except ObjectMissing:
                pass
        if not self.backend.put(key, self.cipher.seal_object(key, encode_pack_index(pack, members))):
            raise StoreError(f"{self.backend.name}{key}: could not be replaced")

    def names(self) -> set[str]:
        """Every pack that has an index to read (named by its pack)."""
        return {k.rsplit("/", 1)[-1] for k in self.backend.list("index/")}

    def read(self, pack: str) -> list[Member]:
        """The members the index of ``pack`` lists; IndexUnreadable naming it when it is
        damaged or names another pack, ObjectMissing when there is none."""
        key = index_key(pack)
        try:
            named, members = decode_pack_index(self.cipher.open_object(key, self.backend.get(key)))
        except (PackFormatError, AuthenticationFailed, EnvelopeError) as e:
            raise IndexUnreadable(f"{self.backend.name}{key}: {e}") from None
        if named != pack:
            raise IndexUnreadable(f"{self.backend.name}{key}: the pack index of {pack} names pack {named}")
        return members

    def read_with_format(self, pack: str) -> tuple[int, list[Member]]:
        """``read``, with the format of the pack's records (0: whole zstd frames)."""
        return 0, self.read(pack)

    def objects(self, pack: str) -> list[str]:
        """What the backend holds for ``pack`` besides the pack itself."""
        return [index_key(pack)]


class Trailers:
    """An encrypted store's: each pack's index sealed at its end."""

    in_pack = True
    what = "pack"

    def __init__(self, backend: Backend, cipher: Cipher):
        self.backend, self.cipher = backend, cipher

    def pack_object(self, pack: str, records: bytes, members: list[Member]) -> bytes:
        trailer = self.cipher.seal_record(
            pack, pack_key(pack), len(records), TRAILER, encode_pack_index(pack, members)
        )
        return records + trailer + len(trailer).to_bytes(_LENGTH, "big")

    def write(self, pack: str, members: list[Member], *, replace: bool = False) -> None:
        """Nothing to write: the pack object holds its index."""

    def names(self) -> set[str]:
        return {k.rsplit("/", 1)[-1] for k in self.backend.list("packs/")}

    def read(self, pack: str) -> list[Member]:
        """The members the trailer of ``pack`` lists, authenticated (every record is again
        when it is read); PackDamaged when it cannot be."""
        return self.read_with_format(pack)[1]

    def read_with_format(self, pack: str) -> tuple[int, list[Member]]:
        """``read``, with the format of the pack's records (its header's version)."""
        key = pack_key(pack)
        size = self.backend.size(key)
        head = len(self.cipher.header)
        if size < head + TAG + _LENGTH:
            raise PackDamaged(f"pack {pack}: {size} bytes, too short to hold its sealed index")
        tail_at = max(0, size - _TAIL)
        tail = self.backend.get_range(key, tail_at, size - tail_at)
        length = int.from_bytes(tail[-_LENGTH:], "big")
        start = size - _LENGTH - length
        if length < TAG or length > MAX_INDEX_BYTES + TAG or start < head:
            raise PackDamaged(f"pack {pack}: damaged, its sealed index's length ({length}) does not fit it")
        if start >= tail_at:
            record = tail[start - tail_at : -_LENGTH]
        else:
            record = self.backend.get_range(key, start, length)
        try:
            named, members = decode_pack_index(self.cipher.open_record(pack, key, start, TRAILER, record))
        except (AuthenticationFailed, EnvelopeError, PackFormatError) as e:
            raise PackDamaged(f"pack {pack}: damaged, its sealed index cannot be read ({e})") from None
        if named != pack:  # sealed under this pack's key: only a writer's bug gets here
            raise PackDamaged(f"pack {pack}: its sealed index names pack {named}")
        beyond = [m.blob for m in members if m.offset < head or m.offset + m.length > start]
        if beyond:
            raise PackDamaged(f"pack {pack}: its sealed index puts {beyond[0]} outside its records")
        try:
            fmt = self.cipher.check_header(
                key, tail if tail_at == 0 else self.backend.get_range(key, 0, head)
            )
        except EnvelopeError as e:
            raise PackDamaged(f"pack {pack}: damaged, {e}") from None
        return fmt, members

    def objects(self, pack: str) -> list[str]:
        return []


PackIndexes = IndexObjects | Trailers


def pack_indexes(backend: Backend, cipher: Cipher) -> PackIndexes:
    """Where the pack indexes of a store sealed with ``cipher`` live."""
    return Trailers(backend, cipher) if cipher.encrypted else IndexObjects(backend, cipher)
