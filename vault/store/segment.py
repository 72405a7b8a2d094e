"""How ledger entries are stored in segment files: three formats, one entry model.

An entry's canonical form and chain hash are defined in ``ledger`` (docs/architecture.md 3.2,
3.5); this module only stores and reads them back. The file's name and first line say which:

- **format 1** ``<first>.jsonl`` (ledgers before format 2; read, never written): one line per
  entry, the canonical object with ``"hash"`` added.
- **format 2** ``<first>.jsonl`` whose first line is the header ``{"ledger_segment":2,
  "first":F,"prev":P}`` (the current segment): then one line per entry, exactly its canonical
  bytes without ``prev`` (the hash of the entry before it; P for the first), and no ``hash``.
  Both are re-derived on read, along the chain from the header: storing them took 146 bytes
  an entry.
- **sealed** ``<first>.jsonl.zst``: independent zstd frames (content checksums on) of format 2
  entry lines, at most ``FRAME_ENTRIES`` a frame, then one zstd skippable frame holding the
  index, JSON ``{"ledger_segment":"sealed","version":1,"first":F,"count":C,"frames":[[offset,
  length,entries,prev,sha256],...]}`` (prev: the chain hash before the frame's first entry;
  sha256: of the frame's bytes, as a zstd checksum covers only what they decompress to),
  then the index's length (4 bytes LE) and ``VLZ1``. The file is a valid zstd stream
  (``zstd -dc`` prints the entry lines); a read of entry N decompresses one frame.

The caller checks each decoded entry against its stored leaf hash (the ledger's tail, or its
stored block's root: store/leaf_files.py; verify checks them against the signed checkpoints):
nothing stored here is trusted alone.
Every error here is a ``SegmentError`` naming the file and the place in it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

FRAME_ENTRIES = 256  # entries a sealed frame holds at most: a random read decodes this many
LEVEL = 9  # zstd level of sealed frames (measured: 19 saves 7 bytes an entry, at 40x the time)
SEALED_SUFFIX = ".jsonl.zst"
PLAIN_SUFFIX = ".jsonl"
HEADER_KEY = "ledger_segment"
HEADER_PREFIX = b'{"ledger_segment":'  # every format 1 line and format 2 entry line starts {"actor":
MAGIC = b"VLZ1"
SKIPPABLE = 0x184D2A5B  # a zstd skippable frame's magic number (0x184D2A50..5F)
FIELDS_V2 = {"seq", "time", "kind", "item", "actor", "data"}


class SegmentError(Exception):
    pass


@dataclass(frozen=True)
class Frame:
    offset: int
    length: int
    first: int
    count: int
    prev: str
    sha256: str  # of the frame's compressed bytes


def first_seq(name: str) -> int:
    """The first seq a segment file's name gives."""
    return int(name.split(".", 1)[0])


def segment_names(directory: Path) -> list[str]:
    """Segment file names by first seq; a sealed file hides the plain one it was made from
    (both exist for a moment while a segment is sealed)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    by_first: dict[int, str] = {}
    for n in names:
        if n.startswith(".") or not (n.endswith(PLAIN_SUFFIX) or n.endswith(SEALED_SUFFIX)):
            continue
        try:
            first = first_seq(n)
        except ValueError:
            continue
        if first not in by_first or n.endswith(SEALED_SUFFIX):
            by_first[first] = n
    return [by_first[k] for k in sorted(by_first)]


def is_sealed(path: Path) -> bool:
    return path.name.endswith(SEALED_SUFFIX)


# ---------------------------------------------------------------- plain segments (v1, v2)


def header_line(first: int, prev: str) -> bytes:
    return json.dumps({HEADER_KEY: 2, "first": first, "prev": prev}, separators=(",", ":")).encode() + b"\n"


def has_header(first_line: bytes) -> bool:
    """Whether a plain segment's first line is a format 2 header (else: format 1)."""
    return first_line.startswith(HEADER_PREFIX)


def parse_header(line: bytes) -> tuple[int, str] | None:
    """(first, prev) of a v2 header line; None when the line is no header (a v1 segment).
    SegmentError for a header that is damaged."""
    if not has_header(line):
        return None
    try:
        obj = json.loads(line)
        if set(obj) != {HEADER_KEY, "first", "prev"} or obj[HEADER_KEY] != 2:
            raise ValueError("unexpected fields or version")
        first, prev = obj["first"], obj["prev"]
        if not isinstance(first, int) or not isinstance(prev, str) or len(prev) != 64:
            raise ValueError("field types")
        bytes.fromhex(prev)
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise SegmentError(f"damaged segment header ({e})") from None
    return first, prev


def decode_fields(line: bytes) -> dict:
    """A v2 entry line's fields (all but prev), types checked; SegmentError otherwise."""
    try:
        obj = json.loads(line)
        if not isinstance(obj, dict) or set(obj) != FIELDS_V2:
            raise KeyError("unexpected fields")
        if not (
            isinstance(obj["seq"], int)
            and isinstance(obj["time"], str)
            and isinstance(obj["kind"], str)
            and isinstance(obj["data"], dict)
            and (obj["item"] is None or isinstance(obj["item"], str))
            and (obj["actor"] is None or isinstance(obj["actor"], str))
        ):
            raise TypeError("field types")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise SegmentError(f"unreadable entry line ({type(e).__name__}: {e})") from None
    return obj


# ---------------------------------------------------------------- sealed segments


def encode_sealed(first: int, lines: list[bytes], prevs: list[str]) -> bytes:
    """A sealed segment of v2 entry lines (each with its newline) from entry ``first`` on;
    ``prevs[i]`` is the chain hash before entry ``first + i`` (only each frame's first is kept)."""
    if not lines or len(lines) != len(prevs):
        raise ValueError("a sealed segment needs its entries and their prevs")
    cctx = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True, write_content_size=True)
    out, frames = bytearray(), []
    for i in range(0, len(lines), FRAME_ENTRIES):
        chunk = lines[i : i + FRAME_ENTRIES]
        data = cctx.compress(b"".join(chunk))
        frames.append([len(out), len(data), len(chunk), prevs[i], hashlib.sha256(data).hexdigest()])
        out += data
    index = json.dumps(
        {HEADER_KEY: "sealed", "version": 1, "first": first, "count": len(lines), "frames": frames},
        separators=(",", ":"),
    ).encode()
    payload = index + struct.pack("<I", len(index)) + MAGIC
    out += struct.pack("<II", SKIPPABLE, len(payload)) + payload
    return bytes(out)


@dataclass(frozen=True)
class SealedIndex:
    first: int
    count: int
    frames: list[Frame]

    def frame_for(self, seq: int) -> int:
        lo, hi = 0, len(self.frames) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.frames[mid].first <= seq:
                lo = mid
            else:
                hi = mid - 1
        return lo


def decode_index(data: bytes, name: str = "segment") -> SealedIndex:
    """The index of a sealed segment's bytes, every offset checked to lie in the file."""
    try:
        if len(data) < 16 or data[-4:] != MAGIC:
            raise ValueError("no sealed-segment footer")
        (n,) = struct.unpack("<I", data[-8:-4])
        start = len(data) - 8 - n
        if start < 8:
            raise ValueError("index length out of range")
        magic, size = struct.unpack("<II", data[start - 8 : start])
        if magic != SKIPPABLE or size != n + 8:
            raise ValueError("index frame header damaged")
        obj = json.loads(data[start : start + n])
        if not isinstance(obj, dict) or obj.get(HEADER_KEY) != "sealed" or obj.get("version") != 1:
            raise ValueError("not a version 1 sealed-segment index")
        first, count, raw = obj["first"], obj["count"], obj["frames"]
        if not (isinstance(first, int) and isinstance(count, int) and isinstance(raw, list) and raw):
            raise TypeError("index field types")
        frames, seq, end = [], first, 0
        for f in raw:
            offset, length, entries, prev, digest = f
            if not (
                all(isinstance(x, int) for x in (offset, length, entries))
                and all(isinstance(x, str) and len(x) == 64 for x in (prev, digest))
            ):
                raise TypeError("frame field types")
            if offset != end or length <= 0 or entries <= 0 or entries > FRAME_ENTRIES:
                raise ValueError("frames overlap, leave gaps or are too big")
            bytes.fromhex(prev)
            frames.append(Frame(offset, length, seq, entries, prev, digest))
            seq += entries
            end = offset + length
        if end != start - 8 or seq != first + count:
            raise ValueError("frames do not cover the segment")
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError) as e:
        raise SegmentError(f"{name}: damaged sealed-segment index ({type(e).__name__}: {e})") from None
    return SealedIndex(first, count, frames)


_DCTX = zstandard.ZstdDecompressor()


def frame_lines(data: bytes, frame: Frame, name: str = "segment", number: int = 0) -> list[bytes]:
    """The entry lines of one frame (without newlines), decompressed and checksum-checked."""
    raw = data[frame.offset : frame.offset + frame.length]
    try:
        if len(raw) != frame.length:
            raise zstandard.ZstdError("frame cut short")
        if hashlib.sha256(raw).hexdigest() != frame.sha256:
            raise zstandard.ZstdError("frame's bytes differ from its index's sha256")
        plain = _DCTX.decompress(raw)
    except zstandard.ZstdError as e:
        raise SegmentError(f"{name} frame {number + 1} (offset {frame.offset}): {e}") from None
    lines = plain.split(b"\n")
    if lines[-1] != b"" or len(lines) - 1 != frame.count:
        raise SegmentError(
            f"{name} frame {number + 1}: holds {len(lines) - 1} lines, its index says {frame.count}"
        )
    return lines[:-1]


def iter_sealed(data: bytes, name: str) -> Iterator[tuple[Frame, int, list[bytes]]]:
    """(frame, its number, its lines) for every frame of a sealed segment's bytes."""
    index = decode_index(data, name)
    for number, frame in enumerate(index.frames):
        yield frame, number, frame_lines(data, frame, name, number)
