"""What an on-call person reads: the labels and the Vietnamese and English annotations of a dossier alert.

Labels decide routing, grouping, inhibition and silences in Alertmanager, and
together they are the alert's identity there: the same labels posted again are
the same alert, never a new notification. So they hold only what does not
change while the alert lasts (no counts, no dates). Annotations carry the text
and may change on every post (the working days overdue grow).

Names come from the procedure catalogue and the commune list; dates are shown
in Asia/Ho_Chi_Minh as dd/mm/yyyy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from onestop.catalogue import Catalogue
from onestop.communes import commune
from onestop.workcal import VN_TZ
from onestop.wire import Alert

DUE_SOON, OVERDUE = "DossierDueSoon", "DossierOverdue"
ALERTNAME = {"due_soon": DUE_SOON, "overdue": OVERDUE, "escalation": OVERDUE}
SEVERITY = {DUE_SOON: "warning", OVERDUE: "critical"}
STEP_VI = {"officer": "cán bộ xử lý hồ sơ", "commune_leaders": "lãnh đạo UBND xã", "province": "Văn phòng UBND tỉnh"}
STEP_EN = {"officer": "the handling officer", "commune_leaders": "the commune's leaders", "province": "the province office"}


@dataclass(frozen=True, slots=True)
class Step:
    """One escalation step: from ``after_days`` working days overdue, ``name``'s route is notified too."""

    name: str
    after_days: int


def parse_escalation(text: str) -> tuple[Step, ...]:
    """``"officer=0,commune_leaders=1,province=3"`` → steps in order (validated by the settings)."""
    steps = tuple(Step(name, int(days)) for name, days in (part.split("=") for part in text.split(",")))
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"escalation {text!r}: a step name appears twice")
    return steps


def ddmmyyyy(at: datetime | None) -> str:
    return at.astimezone(VN_TZ).strftime("%d/%m/%Y") if at is not None else "?"


def province_of(commune_code: str, default: str) -> str:
    found = commune(commune_code)
    return found.province_code if found is not None else default


def labels(alert: Alert, step: Step, default_province: str) -> dict[str, str]:
    """The label set of ``alert`` at escalation ``step``; empty values are left out, as Alertmanager would."""
    name = ALERTNAME[alert.kind]
    found = {
        "alertname": name,
        "severity": SEVERITY[name],
        "escalation": step.name,
        "province_code": province_of(alert.commune_code, default_province),
        "commune_code": alert.commune_code,
        "receiving_commune_code": alert.receiving_commune_code,
        "field": alert.field,
        "procedure_code": alert.procedure_code,
        "dossier_id": alert.dossier_id,
    }
    return {k: v for k, v in found.items() if v}


@dataclass(frozen=True, slots=True)
class Texts:
    """Everything a message names, resolved once per alert."""

    dossier: str
    procedure: str
    procedure_code: str
    field: str
    handling: str
    receiving: str
    due: str
    original_due: str


def _commune_name(code: str) -> str:
    found = commune(code)
    return f"{found.name} ({code})" if found is not None else f"xã/phường {code}"


def texts(alert: Alert, catalogue: Catalogue) -> Texts:
    procedure = catalogue.find(alert.procedure_code, alert.due_at)
    return Texts(
        dossier=alert.dossier_id, procedure=procedure.name if procedure else alert.procedure_code,
        procedure_code=alert.procedure_code, field=alert.field or "?",
        handling=_commune_name(alert.commune_code), receiving=_commune_name(alert.receiving_commune_code),
        due=ddmmyyyy(alert.due_at), original_due=ddmmyyyy(alert.original_due_at),
    )


def annotations(alert: Alert, step: Step, working_days_overdue: int, catalogue: Catalogue) -> dict[str, str]:
    t = texts(alert, catalogue)
    overdue = ALERTNAME[alert.kind] == OVERDUE
    summary_vi, summary_en = (_overdue_summaries if overdue else _due_soon_summaries)(t, working_days_overdue)
    where_vi = (f"Thủ tục {t.procedure} ({t.procedure_code}), lĩnh vực {t.field}. Tiếp nhận tại {t.receiving}, "
                f"đơn vị xử lý {t.handling}. Hạn xử lý {t.due}")
    where_en = (f"Procedure {t.procedure} ({t.procedure_code}), field {t.field}. Received at {t.receiving}, "
                f"handled by {t.handling}. Due {t.due}")
    if t.original_due not in ("?", t.due):
        where_vi += f" (hạn ban đầu {t.original_due})"
        where_en += f" (originally {t.original_due})"
    if overdue:
        act_vi = ("Đề nghị khẩn trương giải quyết và gửi văn bản xin lỗi công dân, hẹn lại ngày trả kết quả "
                  "(mẫu 04).")
        act_en = "Resolve it now and send the citizen the apology letter with a new date (form 04)."
    else:
        act_vi = ("Đề nghị giải quyết trước hạn; nếu không kịp, lập văn bản xin lỗi và đề nghị gia hạn (mẫu 04) "
                  "chậm nhất 1 ngày làm việc trước hạn.")
        act_en = ("Resolve it before the due date, or issue the apology and extension letter (form 04) at least "
                  "one working day before it.")
    to_vi = f"Cảnh báo gửi {STEP_VI.get(step.name, step.name)}."
    to_en = f"Sent to {STEP_EN.get(step.name, step.name)}."
    return {
        "summary": summary_vi,
        "description": f"{where_vi}. {act_vi} {to_vi}",
        "summary_en": summary_en,
        "description_en": f"{where_en}. {act_en} {to_en}",
        "commune": t.handling,
        "due_date": t.due,
        "working_days_overdue": str(working_days_overdue if overdue else 0),
        "alert_id": alert.alert_id,
    }


def _overdue_summaries(t: Texts, days: int) -> tuple[str, str]:
    if days <= 0:
        return (f"Hồ sơ {t.dossier} ({t.procedure}) đã quá hạn, hạn xử lý {t.due}",
                f"Dossier {t.dossier} ({t.procedure}) is overdue, due {t.due}")
    unit_en = "working day" if days == 1 else "working days"
    return (f"Hồ sơ {t.dossier} ({t.procedure}) quá hạn {days} ngày làm việc, hạn xử lý {t.due}",
            f"Dossier {t.dossier} ({t.procedure}) is {days} {unit_en} overdue, due {t.due}")


def _due_soon_summaries(t: Texts, _days: int) -> tuple[str, str]:
    return (f"Hồ sơ {t.dossier} ({t.procedure}) sắp đến hạn xử lý {t.due}",
            f"Dossier {t.dossier} ({t.procedure}) is due soon, on {t.due}")
