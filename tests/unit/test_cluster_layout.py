"""The cluster layout (``sinks.cluster``) places each kind of statement, and refuses what it cannot place safely."""

from __future__ import annotations

import pytest

from sinks.cluster import ClusterLayout, NotClusterable

LAYOUT = ClusterLayout("c")
TABLE = "CREATE TABLE IF NOT EXISTS ioc.{name} (k String) ENGINE = ReplacingMergeTree ORDER BY k"


def test_a_table_without_a_sharding_key_is_refused():
    with pytest.raises(NotClusterable, match="no sharding key"):
        LAYOUT.rewrite(TABLE.format(name="somewhere_new"), "ioc")


def test_a_known_table_gets_a_local_twin_and_a_distributed_table():
    local, distributed = LAYOUT.rewrite(TABLE.format(name="alerts"), "ioc")
    assert local.startswith("CREATE TABLE IF NOT EXISTS ioc.alerts_local ON CLUSTER c (k String)")
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in local
    assert distributed.endswith("ENGINE = Distributed(c, ioc, alerts_local, cityHash64(dossier_id))")


def test_a_view_that_joins_tables_sharded_apart_is_refused():
    view = ("CREATE VIEW IF NOT EXISTS ioc.v AS SELECT * FROM ioc.alerts AS a "
            "LEFT JOIN (SELECT source_partition FROM ioc.counter_epochs) AS e ON 1")
    with pytest.raises(NotClusterable, match="sharded differently"):
        LAYOUT.rewrite(view, "ioc")


def test_a_view_that_joins_a_table_directly_is_refused():
    view = "CREATE VIEW IF NOT EXISTS ioc.v AS SELECT * FROM ioc.alerts AS a JOIN ioc.dossiers AS d USING dossier_id"
    with pytest.raises(NotClusterable, match="joins a table directly"):
        LAYOUT.rewrite(view, "ioc")


def test_a_co_located_join_reads_the_local_table():
    view = ("CREATE VIEW IF NOT EXISTS ioc.v AS SELECT * FROM ioc.backlog_partition AS r "
            "LEFT JOIN (SELECT source_partition, max(epoch) AS epoch FROM ioc.counter_epochs GROUP BY 1) AS e ON 1")
    [out] = LAYOUT.rewrite(view, "ioc")
    assert "FROM ioc.backlog_partition AS r" in out and "FROM ioc.counter_epochs_local GROUP BY 1" in out


def test_a_materialized_view_that_joins_is_refused():
    mv = ("CREATE MATERIALIZED VIEW IF NOT EXISTS ioc.mv TO ioc.events_per_day AS SELECT * FROM ioc.dossier_events "
          "AS e JOIN (SELECT * FROM ioc.dossiers) AS d USING dossier_id")
    with pytest.raises(NotClusterable, match="joins"):
        LAYOUT.rewrite(mv, "ioc")


@pytest.mark.parametrize("statement", [
    "DROP TABLE ioc.alerts",
    "CREATE TABLE IF NOT EXISTS ioc.alerts (k String) ENGINE = Memory",
    "ALTER TABLE ioc.nowhere ADD COLUMN IF NOT EXISTS x UInt8",
    TABLE.format(name="alerts").replace("ioc.", "other."),
])
def test_statements_it_cannot_place_are_refused(statement):
    with pytest.raises(NotClusterable):
        LAYOUT.rewrite(statement, "ioc")
