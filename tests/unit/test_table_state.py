"""The worker's batched writes to Faust's RocksDB store (streams.state), on a real RocksDB store without a broker.

The worker reads and writes the table's store by partition, through Faust's store (pinned version):
this pins that it lands where Faust's recovery and reads expect it.
"""

from faust.types import TP

from onestop.settings import Settings
from streams.app import STATE_TABLE, create_app
from streams.outbox import MemoryOutbox
from streams.state import OFFSET_KEY, BatchState, TableState


def test_a_batch_lands_in_its_partitions_database_with_the_changelog_offset(tmp_path):
    app = create_app(Settings(home=tmp_path, app_id="state-test", web_port=0), outbox=MemoryOutbox())
    table = app.tables[STATE_TABLE]
    state = TableState(table)
    held = BatchState(state)
    view = held.view(3)
    view.set(b"A", b"first")
    view.set(b"B", b"b")
    view.set(b"A", b"second")  # written twice in the batch: held once, the last value
    view.set(OFFSET_KEY, b"17")
    assert held.writes == {3: {b"A": b"second", b"B": b"b", OFFSET_KEY: b"17"}}
    assert view.get(b"A") == b"second" and state.get(3, b"A") is None  # held, not yet in RocksDB

    state.apply(held.writes, {3: 41})  # the changelog acknowledged the three records at offsets 39..41

    assert (state.get(3, b"A"), state.get(3, b"B"), state.get(3, OFFSET_KEY)) == (b"second", b"b", b"17")
    assert state.get(4, b"A") is None  # another partition's database
    assert table.data.persisted_offset(TP(state.changelog, 3)) == 41  # where Faust's recovery resumes
    assert state.changelog == f"state-test-{STATE_TABLE}-changelog"
