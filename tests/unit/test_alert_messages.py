"""Labels and Vietnamese/English texts of a dossier alert, as an on-call officer reads them."""

from datetime import datetime, timedelta, timezone

import pytest

from onestop.catalogue import default_catalogue
from sinks.alert_messages import Step, annotations, labels, parse_escalation
from streams.model import Alert

OFFICER, LEADERS = Step("officer", 0), Step("commune_leaders", 1)


def alert(kind: str = "overdue", **changes) -> Alert:
    fields = dict(
        alert_id="a-1", kind=kind, dossier_id="H42.18754-2026-000123", commune_code="18754",
        receiving_commune_code="18073", procedure_code="1.001193", field="Hộ tịch",
        # 18:30 UTC on 13 Nov is 01:30 on 14 Nov in Vietnam: the date shown is the local one.
        due_at=datetime(2026, 11, 13, 18, 30, tzinfo=timezone.utc),
        original_due_at=datetime(2026, 11, 13, 18, 30, tzinfo=timezone.utc),
        fired_at=datetime(2026, 11, 17, 3, 0, tzinfo=timezone.utc), clock="wall")
    fields.update(changes)
    return Alert(**fields)


def test_labels_name_the_handling_and_receiving_communes_and_the_province():
    assert labels(alert(), LEADERS, "99") == {
        "alertname": "DossierOverdue", "severity": "critical", "escalation": "commune_leaders",
        "province_code": "42", "commune_code": "18754", "receiving_commune_code": "18073", "field": "Hộ tịch",
        "procedure_code": "1.001193", "dossier_id": "H42.18754-2026-000123"}


def test_escalation_alerts_are_overdue_alerts_and_due_soon_is_a_warning():
    assert labels(alert("escalation"), OFFICER, "42")["alertname"] == "DossierOverdue"
    due_soon = labels(alert("due_soon"), OFFICER, "42")
    assert (due_soon["alertname"], due_soon["severity"]) == ("DossierDueSoon", "warning")


def test_an_unknown_commune_keeps_the_default_province_and_empty_labels_are_left_out():
    found = labels(alert(commune_code="99999", receiving_commune_code="99999", field=""), OFFICER, "38")
    assert found["province_code"] == "38" and "field" not in found


def test_overdue_summary_in_vietnamese_and_english():
    notes = annotations(alert(), LEADERS, 2, default_catalogue())
    assert notes["summary"] == ("Hồ sơ H42.18754-2026-000123 (Đăng ký khai sinh) quá hạn 2 ngày làm việc, "
                                "hạn xử lý 14/11/2026")
    assert notes["summary_en"] == ("Dossier H42.18754-2026-000123 (Đăng ký khai sinh) is 2 working days overdue, "
                                   "due 14/11/2026")
    assert "Phường Sông Trí (18754)" in notes["description"] and "Phường Thành Sen (18073)" in notes["description"]
    assert "lãnh đạo UBND xã" in notes["description"] and "the commune's leaders" in notes["description_en"]
    assert (notes["working_days_overdue"], notes["due_date"], notes["alert_id"]) == ("2", "14/11/2026", "a-1")


def test_one_working_day_and_a_fresh_overdue_read_naturally():
    assert "is 1 working day overdue" in annotations(alert(), OFFICER, 1, default_catalogue())["summary_en"]
    assert annotations(alert(), OFFICER, 0, default_catalogue())["summary"].endswith("đã quá hạn, hạn xử lý 14/11/2026")


def test_due_soon_text_and_an_extension_shows_the_original_date():
    later = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    notes = annotations(alert("due_soon", due_at=later), OFFICER, 0, default_catalogue())
    assert notes["summary"] == "Hồ sơ H42.18754-2026-000123 (Đăng ký khai sinh) sắp đến hạn xử lý 20/11/2026"
    assert "(hạn ban đầu 14/11/2026)" in notes["description"] and "mẫu 04" in notes["description"]
    assert notes["working_days_overdue"] == "0"


def test_a_procedure_missing_from_the_catalogue_is_named_by_its_code():
    assert "(LOCAL-77)" in annotations(alert(procedure_code="LOCAL-77"), OFFICER, 1, default_catalogue())["summary"]


def test_escalation_steps_parse_in_order_and_refuse_a_repeated_name():
    assert parse_escalation("officer=0,commune_leaders=1,province=3") == (
        Step("officer", 0), Step("commune_leaders", 1), Step("province", 3))
    with pytest.raises(ValueError):
        parse_escalation("officer=0,officer=2")


def test_settings_refuse_a_hold_shorter_than_two_resends_and_steps_that_do_not_start_at_zero():
    from pydantic import ValidationError

    from onestop.settings import Settings

    Settings(router_resend_s=60, router_hold_s=120)
    with pytest.raises(ValidationError, match="twice"):
        Settings(router_resend_s=60, router_hold_s=119)
    for steps in ("officer=1,province=3", "officer=0,province=3,commune_leaders=1", "officer"):
        with pytest.raises(ValidationError):
            Settings(router_escalation=steps)
