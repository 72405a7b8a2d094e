"""The C2SP tlog-witness ``add-checkpoint`` call (https://c2sp.org/tlog-witness), both ends.

Request body: ``old <size>\n``, up to 63 consistency-proof lines (base64 hashes), an empty
line, then the checkpoint (a signed note). Answers: 200 with the witness's cosignature lines;
409 (``text/x.tlog.size``: the size the witness last cosigned) when ``old`` is not that size
or, at equal sizes, the roots differ; 422 when the proof does not verify; 400 malformed; 403
no trusted signature; 404 unknown origin.
"""

from __future__ import annotations

import base64
import binascii

PATH = "/add-checkpoint"
MAX_PROOF = 63
SIZE_TYPE = "text/x.tlog.size"
OK, BAD_REQUEST, FORBIDDEN, NOT_FOUND, CONFLICT, UNPROCESSABLE = 200, 400, 403, 404, 409, 422


class ProtocolError(ValueError):
    pass


def request_body(old: int, proof: list[bytes], note: bytes) -> bytes:
    if len(proof) > MAX_PROOF:
        raise ProtocolError(f"a consistency proof of {len(proof)} hashes is longer than {MAX_PROOF}")
    lines = [f"old {old}\n".encode()] + [base64.b64encode(h) + b"\n" for h in proof]
    return b"".join(lines) + b"\n" + note


def parse_request(body: bytes) -> tuple[int, list[bytes], bytes]:
    """(old size, proof hashes, checkpoint note); ProtocolError when malformed."""
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise ProtocolError("no empty line before the checkpoint")
    lines = head.split(b"\n")
    first = lines[0].decode("ascii", "replace")
    size = first[4:]
    if not first.startswith("old ") or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise ProtocolError(f"bad old size line {first[:40]!r}")
    if len(lines) - 1 > MAX_PROOF:
        raise ProtocolError(f"more than {MAX_PROOF} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            h = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("a consistency proof line is not base64") from None
        if len(h) != 32:
            raise ProtocolError("a consistency proof line is not a SHA-256 hash")
        proof.append(h)
    return int(size), proof, note


def size_body(size: int) -> bytes:
    return f"{size}\n".encode()


def parse_size(body: bytes) -> int:
    text = body.decode("ascii", "replace").strip()
    if not text.isdigit():
        raise ProtocolError(f"409 answer is not a tree size: {text[:40]!r}")
    return int(text)
