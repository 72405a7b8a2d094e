"""Pack index objects: which blob sits where in a pack, decodable without anything else.

Version 2: zstd-compressed JSON ``{"version", "pack", "dicts": [blob ids], "members":
[[sha256 hex, offset, length, raw size, index into dicts or -1], ...]}``. Every field is
checked on decoding, so a damaged index is a PackFormatError, never a wrong location.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

import zstandard

VERSION = 2
MAX_INDEX_BYTES = 256 << 20
_HEX = re.compile(r"^[0-9a-f]{64}$")
_BLOB = re.compile(r"^sha256:[0-9a-f]{64}$")


class PackFormatError(Exception):
    pass


class Member(NamedTuple):
    blob: str
    offset: int
    length: int
    raw_size: int
    dict: str | None  # blob id of the dictionary the frame needs


def encode_pack_index(pack: str, members: list[Member]) -> bytes:
    dicts = sorted({m.dict for m in members if m.dict})
    slot = {d: i for i, d in enumerate(dicts)}
    body = {
        "version": VERSION,
        "pack": pack,
        "dicts": dicts,
        "members": [
            [m.blob[7:], m.offset, m.length, m.raw_size, slot[m.dict] if m.dict else -1] for m in members
        ],
    }
    return zstandard.ZstdCompressor(level=9).compress(json.dumps(body, separators=(",", ":")).encode())


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def decode_pack_index(data: bytes) -> tuple[str, list[Member]]:
    try:
        text = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_INDEX_BYTES)
        obj = json.loads(text)
    except (zstandard.ZstdError, ValueError, UnicodeDecodeError) as e:
        raise PackFormatError(f"pack index unreadable: {e}") from None
    if not isinstance(obj, dict) or obj.get("version") != VERSION:
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
