"""The processes' Prometheus metrics that the rules rely on, read back from the registry."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from kafka import TopicPartition
from prometheus_client import REGISTRY

from onestop.fold import DossierState
from onestop.settings import Settings
from onestop.workcal import VN_TZ
from sinks import metrics as sink_metrics
from streams.app import build_processor
from streams.counters import contributions
from streams.metrics import WorkerMetrics, WorkingTimeCollector
from streams.model import StoredDossier


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


def backlog_key(commune: str, sla: str) -> tuple:
    state = DossierState(dossier_id="x", commune_code="18073", handling_commune_code=commune,
                         procedure_code="1.001193", channel=1, status=4, accepted_at=vn(2026, 12, 1, 9))
    [key] = [k for k in contributions(StoredDossier(partition=0, state=state, field="Hộ tịch", sla=sla)) if
             k[0] == "backlog"]
    return key


def test_backlog_and_overdue_per_handling_commune_add_up_over_partitions():
    settings = Settings(province_code="42")
    worker = WorkerMetrics(settings, build_processor(settings))
    worker.processor.counters.counts.update({
        0: {backlog_key("18754", "overdue"): 2, backlog_key("18754", "within_due"): 5, ("throughput", "x"): 9},
        3: {backlog_key("18754", "overdue"): 1, backlog_key("18100", "due_soon"): 4},
    })
    worker._backlog()
    assert sample("onestop_overdue_dossiers", province_code="42", commune_code="18754") == 3
    assert sample("onestop_backlog_dossiers", province_code="42", commune_code="18754", sla="within_due") == 5
    assert sample("onestop_backlog_dossiers", province_code="42", commune_code="18100", sla="due_soon") == 4
    assert sample("onestop_overdue_dossiers", province_code="42", commune_code="18100") == 0
    # A commune whose dossiers are all resolved drops to zero, it does not keep its last count.
    worker.processor.counters.counts[3] = {}
    worker._backlog()
    assert sample("onestop_backlog_dossiers", province_code="42", commune_code="18100", sla="due_soon") == 0


def test_last_event_per_commune_as_time_and_as_working_clock():
    settings = Settings(province_code="42")
    worker = WorkerMetrics(settings, build_processor(settings))
    nine, half_past_ten = vn(2026, 12, 3, 9).timestamp(), vn(2026, 12, 3, 10, 30).timestamp()
    worker.event(0, 10, b'{"commune_code": "18754", "dossier_id": "a"}', nine)
    worker.event(1, 11, b'{"commune_code": "18163", "seq": 1}', nine)
    worker.event(1, 12, b'{"commune_code": "18163"}', half_past_ten)
    worker.event(1, 13, b'{"commune_code": "18163"}', nine)  # an older timestamp does not move it back
    worker.event(2, 14, b"{not json", half_past_ten)  # counted as read, no commune
    worker.refresh_communes()
    assert sample("onestop_commune_last_event_timestamp_seconds", province_code="42", commune_code="18163") == \
        half_past_ten
    later = sample("onestop_commune_last_event_working_clock_seconds", province_code="42", commune_code="18163")
    earlier = sample("onestop_commune_last_event_working_clock_seconds", province_code="42", commune_code="18754")
    assert later - earlier == 5400  # 09:00 to 10:30 on a Thursday: an hour and a half of working time
    assert worker.read == {0: 11, 1: 14, 2: 15}


def test_a_rebuild_seeds_the_last_event_of_each_commune_from_the_stored_dossiers():
    settings = Settings()
    worker = WorkerMetrics(settings, build_processor(settings))
    state = DossierState(dossier_id="d", commune_code="18202", handling_commune_code="18202",
                         procedure_code="1.001193", channel=1, last_event_at=vn(2026, 12, 2, 16))
    assert [s.state.dossier_id for s in worker.seen_stored([StoredDossier(partition=0, state=state)])] == ["d"]
    assert worker.last_event["18202"] == vn(2026, 12, 2, 16).timestamp()


@pytest.mark.parametrize(("now", "working"), [
    (vn(2026, 12, 3, 10), 1.0), (vn(2026, 12, 3, 12), 0.0), (vn(2026, 12, 6, 10), 0.0), (vn(2026, 2, 18, 10), 0.0),
])
def test_working_time_gauge_follows_the_domain_calendar(now, working):
    [gauge, clock] = WorkingTimeCollector(Settings(province_code="42"), now=lambda: now).collect()
    assert [(s.name, s.labels, s.value) for s in gauge.samples] == [("onestop_working_time", {"province_code": "42"},
                                                                       working)]
    assert clock.samples[0].name == "onestop_working_clock_seconds"


def test_the_working_clock_gauge_advances_by_working_time_only():
    def reading(at: datetime) -> float:
        return list(WorkingTimeCollector(Settings(), now=lambda: at).collect())[1].samples[0].value

    assert reading(vn(2026, 12, 7, 8, 30)) - reading(vn(2026, 12, 4, 16)) == 2 * 3600  # Fri 16:00 → Mon 08:30


class _Msg:
    def __init__(self, offset: int) -> None:
        self.offset = offset


def test_a_sink_write_counts_its_records_or_its_failure():
    records = {TopicPartition("t.metrics-test", 0): [_Msg(1), _Msg(2)], TopicPartition("t.metrics-test", 1): [_Msg(7)]}
    before = sample("onestop_consumed_records_total", group="g-test", topic="t.metrics-test") or 0
    with sink_metrics.writing(records, "g-test"):
        pass
    assert sample("onestop_consumed_records_total", group="g-test", topic="t.metrics-test") - before == 3
    failures = sample("onestop_sink_write_failures_total", error="ConnectionError") or 0
    with pytest.raises(ConnectionError):
        with sink_metrics.writing(records, "g-test"):
            raise ConnectionError("clickhouse down")
    assert sample("onestop_sink_write_failures_total", error="ConnectionError") - failures == 1
    assert sample("onestop_consumed_records_total", group="g-test", topic="t.metrics-test") - before == 3


def test_the_gateway_times_requests_and_stamps_the_commune_of_accepted_events(tmp_path):
    from test_gateway import AUTH, HOME, FakePublisher, event, post, tokens_file  # the gateway tests' helpers
    from producers.gateway import create_app
    from producers.gateway_settings import GatewaySettings

    client = TestClient(create_app(Settings(), GatewaySettings(tokens_file=tokens_file(tmp_path)), FakePublisher()))
    started = datetime.now(timezone.utc).timestamp()
    assert post(client, [event()], AUTH).status_code == 200
    text = client.get("/metrics").text
    assert 'onestop_gateway_request_seconds_count{route="/v1/events"} 1.0' in text
    [line] = [x for x in text.splitlines() if x.startswith("onestop_gateway_commune_last_event_timestamp_seconds{")]
    assert f'commune_code="{HOME}"' in line and 'province_code="42"' in line
    assert float(line.rsplit(" ", 1)[1]) >= started
