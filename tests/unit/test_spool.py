"""The on-disk spool: append, read, acknowledge, rotate, and recover from a torn tail."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from producers.spool import HEADER, Spool, SpoolError, SpoolRecord, frame


def records(first: int, count: int, topic: str = "dossier.events") -> list[SpoolRecord]:
    return [SpoolRecord(n, topic, f"D{n % 7}".encode(), f'{{"n": {n}}}'.encode()) for n in range(first, first + count)]


def drain_all(spool: Spool, batch: int = 3) -> list[SpoolRecord]:
    out = []
    while entries := spool.read(batch):
        out.extend(e.record for e in entries)
        spool.ack(entries[-1].end, len(entries))
    return out


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.spool"))


def test_records_come_back_in_order_and_a_read_without_ack_repeats(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(1, 5))
    assert spool.depth == 5
    first = spool.read(3)
    assert [e.record.n for e in first] == [1, 2, 3]
    assert [e.record.n for e in spool.read(3)] == [1, 2, 3]  # nothing acknowledged yet
    spool.ack(first[-1].end, 3)
    assert spool.depth == 2
    assert [e.record for e in spool.read(10)] == records(4, 2)
    spool.close()


def test_keys_values_and_topics_survive_byte_for_byte(tmp_path: Path) -> None:
    odd = [SpoolRecord(1, "dossier.dlq", None, b"\xff\x00not utf-8"), SpoolRecord(2, "dossier.events", b"", b"{}")]
    spool = Spool(tmp_path)
    spool.append(odd)
    assert [e.record for e in spool.read(10)] == odd
    spool.close()


def test_ack_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(1, 6))
    entries = spool.read(4)
    spool.ack(entries[-1].end, 4)
    spool.close()
    reopened = Spool(tmp_path)
    assert reopened.depth == 2
    assert reopened.max_n == 6
    assert [e.record.n for e in reopened.read(10)] == [5, 6]
    reopened.close()


def test_unacknowledged_records_survive_a_restart_and_new_ones_follow(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(1, 3))
    spool.close()
    again = Spool(tmp_path)
    again.append(records(4, 2))
    assert [r.n for r in drain_all(again)] == [1, 2, 3, 4, 5]
    again.close()


def test_a_fully_acknowledged_spool_is_emptied(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(1, 4))
    drain_all(spool)
    assert spool.depth == 0
    assert segment_files(tmp_path) == []  # old segments deleted; the next append opens a new one
    spool.append(records(5, 1))
    assert [e.record.n for e in spool.read(5)] == [5]
    spool.close()
    assert Spool(tmp_path).depth == 1


def test_segments_rotate_and_are_deleted_once_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=4096)
    big = [SpoolRecord(n, "t", b"k", b"x" * 1000) for n in range(1, 21)]
    for r in big:
        spool.append([r])
    assert len(segment_files(tmp_path)) >= 4
    entries = spool.read(10)
    spool.ack(entries[-1].end, 10)
    remaining = segment_files(tmp_path)
    assert len(remaining) < 5 and spool.depth == 10
    assert [r.n for r in drain_all(spool, batch=4)] == list(range(11, 21))
    spool.close()


def test_a_torn_tail_is_cut_off_and_kept_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(1, 3))
    spool.close()
    [segment] = segment_files(tmp_path)
    good_size = segment.stat().st_size
    torn = frame(records(4, 1)[0])[: HEADER.size + 3]  # the process died in the middle of a write
    with open(segment, "ab") as handle:
        handle.write(torn)
    recovered = Spool(tmp_path)
    assert recovered.depth == 3
    assert recovered.truncated_bytes == len(torn)
    assert segment.stat().st_size == good_size
    [aside] = tmp_path.glob("*.corrupt-*")
    assert aside.read_bytes() == torn
    recovered.append(records(4, 1))
    assert [r.n for r in drain_all(recovered)] == [1, 2, 3, 4]
    recovered.close()


def test_a_record_with_a_bad_checksum_ends_the_readable_part(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(1, 3))
    spool.close()
    [segment] = segment_files(tmp_path)
    data = bytearray(segment.read_bytes())
    second = len(frame(records(1, 1)[0]))
    data[second + HEADER.size + 2] ^= 0xFF  # flip a byte inside record 2's payload
    segment.write_bytes(bytes(data))
    recovered = Spool(tmp_path)
    assert recovered.depth == 1
    assert [e.record.n for e in recovered.read(10)] == [1]
    recovered.close()


def test_one_process_at_a_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(SpoolError, match="in use by another publisher"):
        Spool(tmp_path)
    spool.close()
    Spool(tmp_path).close()  # the lock is released on close


def test_an_unreadable_ack_file_is_a_clear_error(tmp_path: Path) -> None:
    Spool(tmp_path).close()
    (tmp_path / "ACK").write_text("{not json")
    with pytest.raises(SpoolError, match="unreadable spool ACK"):
        Spool(tmp_path)


def test_the_ack_file_is_replaced_atomically(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(1, 3))
    entries = spool.read(2)
    spool.ack(entries[-1].end, 2)
    assert json.loads((tmp_path / "ACK").read_text()) == {"segment": entries[-1].end[0], "offset": entries[-1].end[1]}
    assert not (tmp_path / "ACK.tmp").exists()
    spool.close()


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
def test_every_fsync_policy_round_trips(tmp_path: Path, policy: str) -> None:
    spool = Spool(tmp_path, fsync=policy, fsync_interval=0.01)
    spool.append(records(1, 4))
    spool.sync()
    spool.close()
    assert [r.n for r in drain_all(Spool(tmp_path, fsync=policy))] == [1, 2, 3, 4]


def test_a_failed_write_leaves_no_torn_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path)
    spool.append(records(1, 2))
    real = spool._current_writer()

    class DiskFull:
        def tell(self) -> int:
            return real.tell()

        def write(self, data) -> int:
            real.write(bytes(data[:7]))  # part of the frame reaches the file, then the disk is full
            raise OSError(28, "No space left on device")

        def truncate(self, size: int) -> int:
            return real.truncate(size)

    monkeypatch.setattr(spool, "_current_writer", lambda: DiskFull())
    with pytest.raises(OSError):
        spool.append(records(3, 1))
    monkeypatch.undo()
    assert spool.depth == 2
    spool.append(records(4, 1))
    spool.close()
    assert [r.n for r in drain_all(Spool(tmp_path))] == [1, 2, 4]


def test_a_record_without_headers_is_framed_as_before_and_headers_survive(tmp_path: Path) -> None:
    plain = SpoolRecord(1, "dossier.events", b"k", b"v")
    # The frame of a record without headers is the four-element array every earlier spool holds.
    assert msgspec.msgpack.decode(frame(plain)[HEADER.size:]) == [1, "dossier.events", b"k", b"v"]
    spool = Spool(tmp_path / "s")
    marked = SpoolRecord(2, "dossier.events", b"k", b"w", (("onestop-simulated-arrival", b"2026-11-05T01:00:00+00:00"),))
    spool.append([plain, marked])
    spool.close()
    again = Spool(tmp_path / "s")
    assert [e.record for e in again.read(10)] == [plain, marked]
    again.close()
