"""The importer and `onestop dlq show` against a real Kafka broker.

Each test module gets its own topics on the session broker, so other tests'
events do not mix in.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import typer
from kafka import KafkaConsumer, TopicPartition
from typer.testing import CliRunner

from onestop import events
from ops import broker
from ops.topics import create_topics
from onestop_cli.dlq import app as dlq_app
from ops.dlq_tail import recent_dead_letters
from onestop_cli.importer import import_file as import_command
from onestop.settings import Settings, get_settings
from producers.importer import import_file
from producers.publisher import Publisher
from producers.settings import PublisherSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

DATA = Path(__file__).resolve().parent.parent / "data"
CSV = DATA / "onestop-export.csv"
JSONL = DATA / "onestop-export.jsonl"


@pytest.fixture(scope="module")
def topics(kafka_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tag = uuid.uuid4().hex[:8]
    settings = kafka_settings.model_copy(update={
        "home": tmp_path_factory.mktemp("importer-home"),
        "topic_events": f"it-import-events-{tag}", "topic_dlq": f"it-import-dlq-{tag}"})
    create_topics(settings, {settings.topic_events: 3, settings.topic_dlq: 3})
    return settings


def read_all(settings: Settings, topic: str, timeout: float = 30.0) -> list:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline
            for recs in consumer.poll(timeout_ms=500).values():
                out.extend(recs)
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def publish_file(settings: Settings, path: Path):
    ps = PublisherSettings(close_timeout_s=30)
    with Publisher(settings, client_id="it-importer", publisher_settings=ps) as pub:
        summary = import_file(path, pub)
        pub.flush(timeout=60)
        assert pub.stats.spool_depth == 0
    return summary


@pytest.fixture(scope="module")
def imported(topics: Settings):
    """Both samples imported, then the CSV imported a second time."""
    first = [publish_file(topics, CSV), publish_file(topics, JSONL)]
    again = publish_file(topics, CSV)
    return topics, first, again


def test_events_arrive_keyed_by_dossier_in_seq_order(imported) -> None:
    settings, (csv_summary, jsonl_summary), _ = imported
    records = read_all(settings, settings.topic_events)
    evs = [(r.key, r.partition, events.decode(r.value)) for r in records]
    assert all(key == e.dossier_id.encode() for key, _, e in evs)
    assert len(evs) == 2 * csv_summary.events + jsonl_summary.events
    seqs: dict[str, list[int]] = {}
    partitions: dict[str, set[int]] = {}
    for _, partition, e in evs:
        seqs.setdefault(e.dossier_id, []).append(e.seq)
        partitions.setdefault(e.dossier_id, set()).add(partition)
    assert all(len(p) == 1 for p in partitions.values())
    assert seqs["H12.03595-261102-0001"] == [1, 2, 3, 4, 5] * 2  # imported twice, each time in order


def test_reimporting_the_same_file_yields_identical_event_ids(imported) -> None:
    settings, _, _ = imported
    evs = [events.decode(r.value) for r in read_all(settings, settings.topic_events)]
    from_csv = Counter((e.event_id, e.dossier_id, e.seq) for e in evs if e.source == "importer:onestop-export.csv")
    assert from_csv and set(from_csv.values()) == {2}  # every event twice, with the same id and seq
    from_jsonl = Counter(e.event_id for e in evs if e.source == "importer:onestop-export.jsonl")
    assert set(from_jsonl.values()) == {1}


def test_bad_rows_are_in_the_dlq_with_row_number_and_reason(imported) -> None:
    settings, (csv_summary, jsonl_summary), again = imported
    found = recent_dead_letters(settings, 100)
    assert all(f.record is not None for f in found)
    reasons = Counter(f.record.reason_code for f in found)
    assert reasons == csv_summary.rejected + jsonl_summary.rejected + again.rejected
    lines = CSV.read_bytes().splitlines()
    status = [f.record for f in found if f.record.source == "importer:onestop-export.csv:13"]
    assert len(status) == 2 and status[0].reason_code == "unknown_status" and status[0].original == lines[12]
    assert [f.timestamp for f in found] == sorted(f.timestamp for f in found)


def test_dlq_show_filters_by_reason_and_limits(imported) -> None:
    settings, _, _ = imported
    only = recent_dead_letters(settings, 10, reason="malformed_json")
    assert [f.record.source for f in only] == ["importer:onestop-export.jsonl:8"]
    newest = recent_dead_letters(settings, 3)
    assert len(newest) == 3
    assert newest == recent_dead_letters(settings, 100)[-3:]


@pytest.fixture
def cli_env(imported, monkeypatch: pytest.MonkeyPatch):
    settings, _, _ = imported
    for name, value in {"ONESTOP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "ONESTOP_HOME": str(settings.home),
                        "ONESTOP_TOPIC_EVENTS": settings.topic_events, "ONESTOP_TOPIC_DLQ": settings.topic_dlq,
                        "ONESTOP_PARTITIONS": "3"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_the_cli_commands(cli_env: Settings) -> None:
    cli = typer.Typer()
    cli.command(name="import")(import_command)
    cli.add_typer(dlq_app, name="dlq")
    runner = CliRunner()
    result = runner.invoke(cli, ["import", str(JSONL)])
    assert result.exit_code == 0, result.output
    assert "rows read" in result.output and "malformed_json" in result.output
    shown = runner.invoke(cli, ["dlq", "show", "--limit", "5", "--reason", "not_an_object", "--json"])
    assert shown.exit_code == 0, shown.output
    rows = [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 2  # the earlier import and this one
    assert {r["source"] for r in rows} == {"importer:onestop-export.jsonl:9"}
    assert rows[0]["original_preview"] == '["not", "an", "object"]'
    table = runner.invoke(cli, ["dlq", "show", "--limit", "3"])
    assert table.exit_code == 0 and "reason_code" in table.output
