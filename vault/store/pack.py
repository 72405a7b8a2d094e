"""Pack index objects: which blob sits where in a pack, decodable without anything else."""
from __future__ import annotations

import json
import re
from typing import NamedTuple

VERSION = 1
_BLOB = re.compile(r"^sha256:[0-9a-f]{64}$")
_PACK = re.compile(r"^[0-9a-f]{64}$")


class PackFormatError(Exception):
    pass


class Member(NamedTuple):
    blob: str
    offset: int
    length: int
    raw_size: int
    dict: str | None  # blob id of the dictionary the frame needs


def encode_pack_index(pack: str, members: list[Member]) -> bytes:
    return json.dumps({"version": VERSION, "pack": pack, "members": [list(m) for m in members]},
                      separators=(",", ":")).encode()


def decode_pack_index(data: bytes) -> tuple[str, list[Member]]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise PackFormatError(f"pack index is not JSON: {e}") from None
    if not isinstance(obj, dict) or obj.get("version") != VERSION:
        raise PackFormatError(f"unsupported pack index (version {obj.get('version') if isinstance(obj, dict) else '?'})")
    pack, raw = obj.get("pack"), obj.get("members")
    if not isinstance(pack, str) or not _PACK.match(pack) or not isinstance(raw, list):
        raise PackFormatError("pack index lacks a pack id or member list")
    members = []
    end = 0
    for m in raw:
        if not (isinstance(m, list) and len(m) == 5 and isinstance(m[0], str) and _BLOB.match(m[0])
                and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in m[1:4])
                and (m[4] is None or (isinstance(m[4], str) and _BLOB.match(m[4])))):
            raise PackFormatError(f"bad pack member {m!r:.80}")
        if m[1] < end:
            raise PackFormatError("pack members overlap")
        end = m[1] + m[2]
        members.append(Member(*m))
    return pack, members
