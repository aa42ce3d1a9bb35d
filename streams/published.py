"""The dossier states the worker publishes to the compacted ``dossier.state`` topic.

At the end of a batch, every dossier the batch changed is published once, keyed
by its dossier_id, on the same partition as its events: the topic's latest
record per key is the dossier's current state, and the ClickHouse ``dossiers``
table keeps the highest version per dossier (``onestop.wire.dossier_version``).
Publishing is at-least-once like every other effect: a replay publishes the same
versions again, which the store absorbs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Iterator, Protocol

from onestop.fold import DossierState
from onestop.wire import DossierRecord, dossier_version, encode_dossier
from streams.model import StoredDossier, decode_stored

class Judge(Protocol):
    """What the record needs of the SLA clock (``streams.evaluate.Evaluator`` has it)."""

    def paused(self, state: DossierState) -> bool: ...
    def standing_due(self, state: DossierState) -> datetime | None: ...


def dossier_record(stored: StoredDossier, judge: Judge) -> DossierRecord | None:
    """What the store shows of ``stored``; None for a dossier that has not yet been seen in full."""
    st = stored.state
    if st.status is None:  # only later seqs arrived: nothing to show until the first one does
        return None
    finished = not (st.is_open or st.status == 1)  # closed: resolved, refused, withdrawn or stopped
    sla = stored.sla if st.is_open else None
    return DossierRecord(
        dossier_id=st.dossier_id,
        version=dossier_version(st.last_seq, sla, stored.escalated and st.is_open, finished),
        status=st.status, commune_code=st.commune_code, handling_commune_code=st.handling_commune_code,
        procedure_code=st.procedure_code, field=stored.field, channel=st.channel,
        submitted_at=st.submitted_at, accepted_at=st.accepted_at, finished_at=st.finished_at,
        returned_at=st.returned_at, original_due_at=st.original_due_at, due_at=st.due_at,
        # An open dossier's due instant as it stands, whenever the record is published: pauses that ended
        # move it, a running pause does not yet (the worker's own verdict is on its clock of the moment).
        judged_due_at=judge.standing_due(st) if st.is_open else stored.judged_due_at, sla_class=sla, escalated=stored.escalated and st.is_open,
        outcome=stored.outcome if st.finished_at is not None else None,
        paused=st.is_open and judge.paused(st),
        supplement_count=sum(1 for p in st.pauses if p.kind == "supplement"), extension_count=st.extensions,
        calendar_version=st.calendar_version, procedure_version=st.procedure_version,
        last_seq=st.last_seq, last_event_at=st.last_event_at, source_partition=stored.partition,
    )


def changed_records(writes: dict[int, dict[bytes, bytes]], judge: Judge) -> Iterator[tuple[int, DossierRecord]]:
    """(partition, record) for every dossier written in a batch (the partitions' bookkeeping keys skipped)."""
    for partition, values in writes.items():
        for key, raw in values.items():
            if key.startswith(b"\x00"):
                continue
            record = dossier_record(decode_stored(raw), judge)
            if record is not None:
                yield partition, record


def encoded(records: Iterable[tuple[int, DossierRecord]]) -> Iterator[tuple[int, bytes, bytes]]:
    for partition, record in records:
        yield partition, record.dossier_id.encode(), encode_dossier(record)
