"""An append-only on-disk spool: records Kafka could not take yet, kept in order until it acknowledges them.

Layout of one spool directory (one per publisher ``client_id``)::

    LOCK                  flock()ed by the one process that owns the spool
    ACK                   {"segment": S, "offset": O}: everything before (S, O) was acknowledged by Kafka
    000000000001.spool    segment files, appended in order, rotated beyond ``segment_bytes``
    *.corrupt-<offset>    bytes cut off a segment at recovery (kept for forensics, never read again)

A record on disk is a frame: ``b"OS"`` + payload length (u32, big-endian) +
CRC-32 of the payload (u32) + payload, where the payload is the msgpack array
``[n, topic, key, value]`` (``n`` is the publisher's publish-order number), or
``[n, topic, key, value, headers]`` for a record published with Kafka headers.

Durability (``fsync``): ``always`` fsyncs the segment before ``append`` returns;
``interval`` fsyncs at the next append or ``sync()`` once ``fsync_interval``
has passed; ``never`` leaves it to the OS. The ACK file is always replaced
atomically (write, fsync, rename, fsync of the directory) unless the policy is
``never``.

Crash recovery (at open): segments wholly before the ACK are deleted; every
remaining segment is scanned from the ACK position, and at the first frame that
is incomplete or fails its checksum (a torn write) the segment is truncated,
the cut bytes being moved aside to ``<segment>.corrupt-<offset>``.

A segment is deleted only once the ACK has moved past its end, i.e. after
Kafka acknowledged every record in it. Not thread-safe: the publisher calls it
under its own lock.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec

log = logging.getLogger(__name__)

MAGIC = b"OS"
HEADER = struct.Struct(">2sII")  # magic, payload length, crc32(payload)
MAX_PAYLOAD = 64 * 1024 * 1024
SUFFIX = ".spool"

Position = tuple[int, int]  # (segment number, byte offset in it)


class SpoolError(RuntimeError):
    """The spool directory cannot be used (locked by another process, unreadable ACK, ...)."""


class SpoolRecord(msgspec.Struct, array_like=True, frozen=True):
    n: int  # publish-order number, unique within the publisher that wrote it
    topic: str
    key: bytes | None
    value: bytes
    # Kafka headers given at publish time; a record without them is framed as before (see frame()).
    headers: tuple[tuple[str, bytes], ...] | None = None


class Entry(msgspec.Struct, frozen=True):
    """A record read back from the spool, with the position just after it (what ``ack`` takes)."""

    record: SpoolRecord
    end: Position


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(SpoolRecord).decode


def frame(record: SpoolRecord) -> bytes:
    # Without headers the payload stays the four-element array every earlier spool holds.
    payload = _encode(record if record.headers else (record.n, record.topic, record.key, record.value))
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def scan(data: bytes, start: int = 0) -> Iterator[tuple[SpoolRecord | None, int]]:
    """Yield ``(record, end offset)`` for each good frame of ``data``; ``(None, offset)`` at the first bad one."""
    pos = start
    while pos < len(data):
        head = data[pos:pos + HEADER.size]
        if len(head) < HEADER.size:
            yield None, pos
            return
        magic, length, crc = HEADER.unpack(head)
        body = data[pos + HEADER.size:pos + HEADER.size + length]
        if magic != MAGIC or length > MAX_PAYLOAD or len(body) < length or zlib.crc32(body) != crc:
            yield None, pos
            return
        try:
            record = _decode(body)
        except msgspec.DecodeError:
            yield None, pos
            return
        pos += HEADER.size + length
        yield record, pos


def _frames(handle: BinaryIO, limit: int) -> Iterator[tuple[SpoolRecord, int]]:
    """Read up to ``limit`` good frames from the handle's position; stop at the end or a bad frame."""
    for _ in range(limit):
        head = handle.read(HEADER.size)
        if len(head) < HEADER.size:
            return
        magic, length, crc = HEADER.unpack(head)
        if magic != MAGIC or length > MAX_PAYLOAD:
            return
        body = handle.read(length)
        if len(body) < length or zlib.crc32(body) != crc:
            return
        yield _decode(body), handle.tell()


class Spool:
    """One directory of segment files plus an ACK pointer. See the module docstring."""

    def __init__(self, directory: Path, *, fsync: str = "always", fsync_interval: float = 0.2,
                 segment_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self.segment_bytes = segment_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._take_lock()
        self._writer: BinaryIO | None = None
        self._dirty = False
        self._last_sync = time.monotonic()
        self.depth = 0  # records not yet acknowledged
        self.max_n = 0  # highest publish-order number found on disk
        self.truncated_bytes = 0  # cut off at recovery
        self._ack: Position = self._read_ack()
        self._recover()

    # ---- opening -------------------------------------------------------------------------------

    def _take_lock(self):
        handle = open(self.directory / "LOCK", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise SpoolError(f"spool {self.directory} is in use by another publisher; give each concurrent "
                             "producer its own client_id (or spool_dir)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    def _read_ack(self) -> Position:
        path = self.directory / "ACK"
        if not path.exists():
            segments = self._segments()
            return (segments[0], 0) if segments else (1, 0)
        try:
            data = json.loads(path.read_text())
            return int(data["segment"]), int(data["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SpoolError(f"unreadable spool ACK file {path}: {exc}; fix or remove it "
                             "(removing it re-sends everything still in the spool)") from exc

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob(f"*{SUFFIX}") if p.stem.isdigit())

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{SUFFIX}"

    def _recover(self) -> None:
        ack_seg, ack_off = self._ack
        for seg in self._segments():
            if seg < ack_seg:
                self._path(seg).unlink()
                continue
            path = self._path(seg)
            data = path.read_bytes()
            start = ack_off if seg == ack_seg else 0
            for record, end in scan(data, min(start, len(data))):
                if record is None:
                    self._cut(path, data, end)
                    break
                self.depth += 1
                self.max_n = max(self.max_n, record.n)
        self._write_seg = max([ack_seg, *self._segments()])
        if self.depth:
            log.warning("spool %s holds %d records not yet acknowledged by Kafka", self.directory, self.depth)

    def _cut(self, path: Path, data: bytes, offset: int) -> None:
        aside = path.with_name(f"{path.name}.corrupt-{offset}")
        aside.write_bytes(data[offset:])
        with open(path, "r+b") as handle:
            handle.truncate(offset)
            os.fsync(handle.fileno())
        self._sync_dir()
        self.truncated_bytes += len(data) - offset
        log.warning("spool %s: torn or corrupt record at offset %d; cut %d bytes (kept in %s)",
                    path, offset, len(data) - offset, aside.name)

    # ---- writing -------------------------------------------------------------------------------

    def append(self, records: Iterable[SpoolRecord], *, sync: bool = True) -> int:
        """Append records in order; durable on return under the 'always' policy (unless ``sync=False``)."""
        records = list(records)
        if not records:
            return 0
        blob = b"".join(frame(r) for r in records)
        count = len(records)
        self.max_n = max(self.max_n, max(r.n for r in records))
        writer = self._current_writer()
        start = writer.tell()
        try:
            view = memoryview(blob)
            while view:  # a raw write may take only part of the bytes
                view = view[writer.write(view):]
        except OSError:
            writer.truncate(start)  # disk full or I/O error: leave no torn frame behind the good ones
            raise
        self.depth += count
        self._dirty = True
        if sync:
            self._maybe_sync()
        return count

    def _current_writer(self):
        if self._writer is not None and self._writer.tell() >= self.segment_bytes:
            self.sync(force=True)
            self._writer.close()
            self._writer = None
            self._write_seg += 1
        if self._writer is None:
            path = self._path(self._write_seg)
            created = not path.exists()
            self._writer = open(path, "ab", buffering=0)
            if created and self.fsync != "never":
                self._sync_dir()
        return self._writer

    def _maybe_sync(self) -> None:
        if self.fsync == "always" or (self.fsync == "interval"
                                      and time.monotonic() - self._last_sync >= self.fsync_interval):
            self.sync()

    def sync(self, force: bool = False) -> None:
        """fsync the open segment if anything was written since the last fsync."""
        if self._writer is not None and self._dirty and (force or self.fsync != "never"):
            os.fsync(self._writer.fileno())
        self._dirty = False
        self._last_sync = time.monotonic()

    # ---- reading and acknowledging ------------------------------------------------------------

    def read(self, limit: int) -> list[Entry]:
        """Up to ``limit`` unacknowledged records, oldest first, from the ACK position."""
        entries: list[Entry] = []
        seg, off = self._ack
        while len(entries) < limit and seg <= self._write_seg:
            path = self._path(seg)
            if path.exists():
                with open(path, "rb") as handle:
                    handle.seek(off)
                    for record, end in _frames(handle, limit - len(entries)):
                        entries.append(Entry(record, (seg, end)))
            if len(entries) < limit:
                seg, off = seg + 1, 0
        return entries

    def ack(self, position: Position, count: int) -> None:
        """Kafka acknowledged every record before ``position`` (``count`` of them since the last ack)."""
        if count <= 0:
            return
        self.depth = max(0, self.depth - count)
        if self.depth == 0:
            self._reset()
            return
        seg, off = position
        if seg < self._write_seg and off >= self._path(seg).stat().st_size:
            position = (seg + 1, 0)  # that segment is finished: let it go
        self._write_ack(position)
        for seg in self._segments():
            if seg < position[0]:
                self._path(seg).unlink()

    def _reset(self) -> None:
        """Everything was acknowledged: start a fresh segment and delete the old ones."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        old = self._segments()
        self._write_seg += 1
        self._write_ack((self._write_seg, 0))
        for seg in old:
            self._path(seg).unlink()

    def _write_ack(self, position: Position) -> None:
        self._ack = position
        path = self.directory / "ACK"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            json.dump({"segment": position[0], "offset": position[1]}, handle)
            handle.flush()
            if self.fsync != "never":
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if self.fsync != "never":
            self._sync_dir()

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._writer is not None:
            self.sync()
            self._writer.close()
            self._writer = None
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
