"""Pack indexes: which blob sits where in a pack, decodable without anything else.

Version 3 (what is written), binary, every integer an unsigned LEB128 varint in its shortest
form::

    "VLTI" || 0x03 || pack id (32 bytes) || varint n_dicts || n_dicts x dictionary blob id
    (32 bytes each, ascending, each used by a member) || varint n_members || n_members x member

    member = blob id (32 bytes, the raw sha256) || varint head || [varint gap] ||
             varint length || varint raw size
    head   = (dictionary slot + 1, 0: none) << 1 | (1 when a gap follows)

A member's offset is where the one before it ends (0 for the first) plus its gap, which is
written only when it is not 0: members stored end to end (all of them, in every pack this
store writes) cost nothing for their offsets. About 38 bytes a member, against about 48 for
version 2: zstd-compressed JSON ``{"version", "pack", "dicts": [blob ids], "members":
[[sha256 hex, offset, length, raw size, index into dicts or -1], ...]}``, still decoded (the
stores written before version 3).

Every field is checked on decoding, and a version 3 index has exactly one encoding
(``encode_pack_index(*decode_pack_index(data)) == data``), so a damaged index is a
PackFormatError, never a wrong location.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

import zstandard

VERSION = 3
MAGIC = b"VLTI"
MAX_INDEX_BYTES = 256 << 20
_HEX = re.compile(r"^[0-9a-f]{64}$")
_BLOB = re.compile(r"^sha256:[0-9a-f]{64}$")
_ID = 32  # bytes of a sha256 (a blob id, raw) or of a pack id
_MIN_MEMBER = _ID + 3  # a blob id and three one-byte varints
_MAX_VARINT = 9  # bytes: values below 2**63


class PackFormatError(Exception):
    pass


class Member(NamedTuple):
    blob: str
    offset: int
    length: int
    raw_size: int
    dict: str | None  # blob id of the dictionary the frame needs


def _varint(n: int) -> bytes:
    if n < 0 or n >= 1 << 63:
        raise ValueError(f"{n} does not fit a pack index varint")
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _raw(bid: str) -> bytes:
    if not _BLOB.match(bid):
        raise ValueError(f"not a blob id: {bid!r:.80}")
    return bytes.fromhex(bid[7:])


def encode_pack_index(pack: str, members: list[Member]) -> bytes:
    """Version 3 of the index of ``pack`` (64 hex) listing ``members`` in offset order."""
    if not _HEX.match(pack):
        raise ValueError(f"not a pack id: {pack!r:.80}")
    dicts = sorted({m.dict for m in members if m.dict})
    slot = {d: i for i, d in enumerate(dicts)}
    out = bytearray(MAGIC + bytes([VERSION]) + bytes.fromhex(pack))
    out += _varint(len(dicts))
    for d in dicts:
        out += _raw(d)
    out += _varint(len(members))
    end = 0
    for m in members:
        gap = m.offset - end
        if gap < 0:
            raise ValueError("pack members overlap")
        out += _raw(m.blob)
        out += _varint((slot[m.dict] + 1 if m.dict else 0) << 1 | (gap > 0))
        if gap:
            out += _varint(gap)
        out += _varint(m.length) + _varint(m.raw_size)
        end = m.offset + m.length
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if self.left() < n:
            raise PackFormatError(f"pack index cut short in {what}")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def varint(self, what: str) -> int:
        n = shift = 0
        for i in range(_MAX_VARINT):
            if self.pos >= len(self.data):
                raise PackFormatError(f"pack index cut short in {what}")
            byte = self.data[self.pos]
            self.pos += 1
            n |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0 and i:
                    raise PackFormatError(f"pack index: {what} is not in its shortest form")
                return n
            shift += 7
        raise PackFormatError(f"pack index: {what} is too large")


def decode_pack_index(data: bytes) -> tuple[str, list[Member]]:
    """``(pack id, members)`` of a version 3 or version 2 pack index; PackFormatError for
    anything else."""
    if len(data) > MAX_INDEX_BYTES:
        raise PackFormatError(f"pack index of {len(data)} bytes is larger than any written")
    if data[:4] == ZSTD_MAGIC:
        return _decode_v2(data)
    if data[: len(MAGIC)] != MAGIC:
        raise PackFormatError("not a pack index (no magic)")
    if len(data) <= len(MAGIC) or data[len(MAGIC)] != VERSION:
        raise PackFormatError(
            f"unsupported pack index version {data[len(MAGIC)] if len(data) > len(MAGIC) else '?'}"
        )
    r = _Reader(data, len(MAGIC) + 1)
    pack = r.take(_ID, "the pack id").hex()
    n_dicts = r.varint("the dictionary count")
    if n_dicts > r.left() // _ID:
        raise PackFormatError(f"pack index lists {n_dicts} dictionaries, more than it holds")
    dicts = [r.take(_ID, "a dictionary id") for _ in range(n_dicts)]
    if any(a >= b for a, b in zip(dicts, dicts[1:])):
        raise PackFormatError("pack index dictionaries are not in ascending order")
    names = ["sha256:" + d.hex() for d in dicts]
    n = r.varint("the member count")
    if n > r.left() // _MIN_MEMBER:
        raise PackFormatError(f"pack index lists {n} members, more than it holds")
    members, used, end = [], set(), 0
    for i in range(n):
        blob = r.take(_ID, f"member {i}")
        head = r.varint(f"member {i}")
        gap = r.varint(f"member {i}'s gap") if head & 1 else 0
        if head & 1 and not gap:
            raise PackFormatError(f"pack index: member {i} has a gap of 0 written")
        slot = (head >> 1) - 1
        if slot >= n_dicts:
            raise PackFormatError(f"pack index: member {i} names dictionary {slot}, of {n_dicts}")
        length, raw = r.varint(f"member {i}'s length"), r.varint(f"member {i}'s raw size")
        used.add(slot)
        members.append(
            Member("sha256:" + blob.hex(), end + gap, length, raw, names[slot] if slot >= 0 else None)
        )
        end += gap + length
    if r.left():
        raise PackFormatError(f"pack index has {r.left()} byte(s) after its last member")
    if len(used - {-1}) != n_dicts:
        raise PackFormatError("pack index lists a dictionary no member needs")
    return pack, members


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _decode_v2(data: bytes) -> tuple[str, list[Member]]:
    try:
        text = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_INDEX_BYTES)
        obj = json.loads(text)
    except (zstandard.ZstdError, ValueError, UnicodeDecodeError) as e:
        raise PackFormatError(f"pack index unreadable: {e}") from None
    if not isinstance(obj, dict) or obj.get("version") != 2:
        raise PackFormatError(
            f"unsupported pack index version {obj.get('version') if isinstance(obj, dict) else '?'}"
        )
    pack, dicts, raw = obj.get("pack"), obj.get("dicts"), obj.get("members")
    if not (
        isinstance(pack, str)
        and _HEX.match(pack)
        and isinstance(raw, list)
        and isinstance(dicts, list)
        and all(isinstance(d, str) and _BLOB.match(d) for d in dicts)
    ):
        raise PackFormatError("pack index lacks a valid pack id, dictionary list or member list")
    members = []
    end = 0
    for m in raw:
        if not (
            isinstance(m, list)
            and len(m) == 5
            and isinstance(m[0], str)
            and _HEX.match(m[0])
            and all(_int(x) for x in m[1:4])
            and isinstance(m[4], int)
            and not isinstance(m[4], bool)
            and -1 <= m[4] < len(dicts)
        ):
            raise PackFormatError(f"bad pack member {m!r:.80}")
        if m[1] < end:
            raise PackFormatError("pack members overlap")
        end = m[1] + m[2]
        members.append(Member("sha256:" + m[0], m[1], m[2], m[3], dicts[m[4]] if m[4] >= 0 else None))
    return pack, members


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_FCS_BYTES = (0, 2, 4, 8)
_DICT_ID_BYTES = (0, 1, 2, 4)


def frame_spans(data: bytes) -> list[tuple[int, int]]:
    """``(offset, length)`` of each zstd frame a pack holds, end to end, read from the frames'
    own headers and block headers (RFC 8878 3.1.1): what rebuilds a lost pack index."""
    spans, pos = [], 0
    while pos < len(data):
        start = pos
        if data[pos : pos + 4] != ZSTD_MAGIC or pos + 5 > len(data):
            raise PackFormatError(f"no zstd frame at offset {pos}")
        descriptor = data[pos + 4]
        single_segment = descriptor >> 5 & 1
        fcs = _FCS_BYTES[descriptor >> 6] or (1 if single_segment else 0)
        pos += 5 + (0 if single_segment else 1) + _DICT_ID_BYTES[descriptor & 3] + fcs
        while True:
            if pos + 3 > len(data):
                raise PackFormatError(f"frame at offset {start} is cut short")
            header = int.from_bytes(data[pos : pos + 3], "little")
            kind, size = header >> 1 & 3, header >> 3
            if kind == 3:
                raise PackFormatError(f"frame at offset {start}: reserved block type")
            pos += 3 + (1 if kind == 1 else size)
            if header & 1:
                break
        pos += 4 if descriptor >> 2 & 1 else 0
        if pos > len(data):
            raise PackFormatError(f"frame at offset {start} is cut short")
        spans.append((start, pos - start))
    return spans


def _header_sizes(fhd: int) -> tuple[int, int, int]:
    """(window descriptor, dictionary id, content size) byte counts a frame header descriptor
    announces (RFC 8878 3.1.1.1.1)."""
    single = fhd >> 5 & 1
    return (0 if single else 1), _DICT_ID_BYTES[fhd & 3], _FCS_BYTES[fhd >> 6] or (1 if single else 0)


def strip_frame(frame: bytes, dict_id: int, raw_size: int) -> bytes:
    """A zstd frame without what its pack index already says: its magic, its dictionary id
    and its content size (an encrypted pack's records, store/cas.py). The descriptor stays,
    so ``restore_frame`` knows each field's width; ValueError when the frame's fields are not
    ``dict_id`` and ``raw_size``, so what is stored always restores to these very bytes."""
    if frame[:4] != ZSTD_MAGIC or len(frame) < 5:
        raise ValueError("not a zstd frame")
    wd, did, fcs = _header_sizes(frame[4])
    at = 5 + wd
    stripped = frame[4:at] + frame[at + did + fcs :]
    try:
        whole = restore_frame(stripped, dict_id, raw_size) if len(frame) >= at + did + fcs else b""
    except PackFormatError:
        whole = b""
    if whole != frame:
        raise ValueError(f"frame header does not hold dictionary {dict_id} and content size {raw_size}")
    return stripped


def restore_frame(stripped: bytes, dict_id: int, raw_size: int) -> bytes:
    """The zstd frame ``strip_frame`` made ``stripped`` from; PackFormatError when the
    dictionary id or the size does not fit the widths its descriptor gives (a damaged index)."""
    if not stripped:
        raise PackFormatError("empty frame record")
    fhd = stripped[0]
    wd, did, fcs = _header_sizes(fhd)
    if len(stripped) < 1 + wd:
        raise PackFormatError("frame record cut short in its header")
    size = raw_size - 256 if fcs == 2 else raw_size
    if not (0 <= dict_id < 1 << 8 * did or dict_id == 0) or not (0 <= size < 1 << 8 * fcs or fcs == 0):
        raise PackFormatError(f"dictionary {dict_id} or size {raw_size} does not fit the frame's header")
    if did == 0 and dict_id:
        raise PackFormatError(f"the frame names no dictionary, its index dictionary {dict_id}")
    return (
        ZSTD_MAGIC
        + stripped[: 1 + wd]
        + dict_id.to_bytes(did, "little")
        + (size.to_bytes(fcs, "little") if fcs else b"")
        + stripped[1 + wd :]
    )
