"""Write-ahead journal: makes a stream-mode event durable with one overwrite and one fdatasync.

Cyrus waits for our ``OK NIL`` before it tells the LMTP client "delivered", once per delivery
(its MessageNew; the MailboxModseq before it is answered at once and dropped:
spool.DROPPED_EVENTS). Creating, fsyncing and renaming a spool file costs about 2 ms next to a
busy Cyrus (every create/rename queues behind Cyrus's own journal commits), which
halved the delivery rate. Overwriting blocks of a preallocated, zero-filled file and calling
fdatasync changes no metadata and costs about 0.1 ms. So the stream listener appends each
batch here, answers, and lets a background thread turn the records into ordinary spool files
(without fsync); that thread fsyncs the files it made every so often and then advances the
journal's checkpoint. After a crash, :meth:`Journal.recover` returns every record past the
checkpoint, to be spooled again (a duplicate of an event that had already been spooled or even
shipped is harmless: the broker deduplicates by event id). When the dealer ships, the shipper
takes the events from memory and a record the broker acks in time needs no spool file at all:
the checkpoint passes records that are acked or durable in the spool (listeners.JournaledSpool).

Layout: a 4 KiB header block holding the checkpoint ``(seq, pos)`` with a CRC, then records
``magic, length, seq, crc32`` + payload, written one after another and wrapping to the start of
the data area when the end is reached. A record is valid when its magic, its sequence number
(the next expected) and its CRC all match, so a torn write ends the recovery scan.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path

from vault.durable import write_file

RECORD = struct.Struct("<4sIQI")  # magic, payload length, seq, crc32(seq + payload)
RECORD_MAGIC = b"VJR1"
CHECKPOINT = struct.Struct("<8sQQI")  # magic, seq, pos, crc32
CHECKPOINT_MAGIC = b"VJCKPT01"
DATA_START = 4096
DEFAULT_SIZE = 16 * 1024 * 1024


class JournalError(OSError):
    pass


class JournalFull(JournalError):
    """Appending would overwrite records not yet checkpointed: checkpoint first."""


def _crc(seq: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(seq.to_bytes(8, "little")))


class Journal:
    """``sync=False`` (``[dealer] sync = false``): :meth:`append` writes without fdatasync.
    The records are in the page cache when it returns, so a dealer that dies still recovers
    them; an OS crash or power loss before the kernel writes them back loses them."""

    def __init__(self, path: str | os.PathLike, size: int = DEFAULT_SIZE, sync: bool = True):
        self.path = Path(path)
        self.size = size
        self.sync = sync
        self._lock = threading.Lock()
        if not self.path.exists() or self.path.stat().st_size != size:
            self._create()
        self.fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        self.checkpoint_seq, self.checkpoint_pos = self._read_checkpoint()
        self.seq = self.checkpoint_seq  # last appended
        self.pos = self.checkpoint_pos  # where the next record goes
        self.wrapped = False  # self.pos is before checkpoint_pos (appends went around the end)

    @property
    def max_record(self) -> int:
        """Payloads larger than this do not go through the journal."""
        return (self.size - DATA_START) // 4 - RECORD.size

    def _create(self) -> None:
        # Written zeros, not fallocate: overwriting unwritten extents would change metadata.
        head = self._checkpoint_block(0, DATA_START)
        data = head + bytes(self.size - len(head))
        write_file(self.path, data, mode=0o640, temporary=self.path.with_name(self.path.name + ".new"))

    @staticmethod
    def _checkpoint_block(seq: int, pos: int) -> bytes:
        body = CHECKPOINT_MAGIC + seq.to_bytes(8, "little") + pos.to_bytes(8, "little")
        return CHECKPOINT.pack(CHECKPOINT_MAGIC, seq, pos, zlib.crc32(body))

    def _read_checkpoint(self) -> tuple[int, int]:
        magic, seq, pos, crc = CHECKPOINT.unpack(os.pread(self.fd, CHECKPOINT.size, 0))
        body = CHECKPOINT_MAGIC + seq.to_bytes(8, "little") + pos.to_bytes(8, "little")
        if magic != CHECKPOINT_MAGIC or crc != zlib.crc32(body) or not DATA_START <= pos <= self.size:
            raise JournalError(
                f"{self.path}: damaged checkpoint header; move the file aside to start afresh "
                "(events it held past the checkpoint would be lost)"
            )
        return seq, pos

    # ------------------------------------------------------------------ writing
    def append(self, payloads: list[bytes]) -> list[tuple[int, int]]:
        """Make ``payloads`` durable (with ``sync``; else written); returns each one's (seq, position after it), which
        :meth:`checkpoint` takes once the record has been spooled durably elsewhere."""
        records: list[bytes] = []
        marks: list[tuple[int, int]] = []
        with self._lock:
            seq, pos, wrapped = self.seq, self.pos, self.wrapped
            start = pos
            for payload in payloads:
                seq += 1
                record = RECORD.pack(RECORD_MAGIC, len(payload), seq, _crc(seq, payload)) + payload
                if pos + len(record) > self.size:  # go around; flush what we have first
                    if records:
                        os.pwrite(self.fd, b"".join(records), start)
                        records = []
                    if wrapped:
                        raise JournalFull(f"{self.path}: full")
                    pos, start, wrapped = DATA_START, DATA_START, True
                if wrapped and pos + len(record) > self.checkpoint_pos:
                    raise JournalFull(f"{self.path}: records past the checkpoint would be overwritten")
                records.append(record)
                pos += len(record)
                marks.append((seq, pos))
            if records:
                os.pwrite(self.fd, b"".join(records), start)
            if self.sync:
                os.fdatasync(self.fd)
            self.seq, self.pos, self.wrapped = seq, pos, wrapped
        return marks

    def checkpoint(self, seq: int, pos: int) -> None:
        """Everything up to record ``seq`` (ending at ``pos``) is durable elsewhere now."""
        with self._lock:
            if seq <= self.checkpoint_seq:
                return
            os.pwrite(self.fd, self._checkpoint_block(seq, pos), 0)
            os.fdatasync(self.fd)
            if self.wrapped and pos <= self.pos:
                self.wrapped = False  # the checkpoint went around too
            self.checkpoint_seq, self.checkpoint_pos = seq, pos

    # ------------------------------------------------------------------ recovery
    def recover(self) -> list[bytes]:
        """Payloads of the records past the checkpoint, oldest first (call before appending)."""
        found = []
        seq, pos = self.checkpoint_seq, self.checkpoint_pos
        wrapped = False
        while True:
            record = self._record_at(pos, seq + 1)
            if record is None and not wrapped and pos != DATA_START:
                wrapped = True
                pos = DATA_START
                record = self._record_at(pos, seq + 1)
            if record is None:
                break
            seq += 1
            pos += RECORD.size + len(record)
            found.append(record)
        self.seq, self.pos, self.wrapped = seq, pos, wrapped
        return found

    def _record_at(self, pos: int, seq: int) -> bytes | None:
        if pos + RECORD.size > self.size:
            return None
        magic, length, got_seq, crc = RECORD.unpack(os.pread(self.fd, RECORD.size, pos))
        if magic != RECORD_MAGIC or got_seq != seq or pos + RECORD.size + length > self.size:
            return None
        payload = os.pread(self.fd, length, pos + RECORD.size)
        return payload if len(payload) == length and _crc(seq, payload) == crc else None

    def close(self) -> None:
        os.close(self.fd)
