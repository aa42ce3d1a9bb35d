"""What a stored dossier says about its SLA alerts: whether one is owed or held, and the reason it gives.

The processor decides alerts; these are the facts it reads off a stored dossier to do so,
after a rebuild as well as record by record.
"""

from __future__ import annotations

import msgspec

from streams.model import StoredDossier, alert_id

ALERTING = {"due_soon", "overdue"}


def with_held(stored: StoredDossier, held: bool) -> StoredDossier:
    return stored if stored.held is held else msgspec.structs.replace(stored, held=held)


def owes_alert(stored: StoredDossier) -> bool:
    """An open dossier due soon or overdue whose alert was decided but is not recorded as sent.

    ``held`` says so for alerts decided while the partition caught up. An overdue dossier without
    its alert id is owed one too (a state stored before ``held`` existed); a due-soon one without
    ``held`` is not: it was born inside the window, which is counted but not paged.
    """
    if stored.sla not in ALERTING or not stored.state.is_open:
        return False
    if stored.held:
        return True
    if stored.sla == "due_soon" and not stored.escalated:
        return False
    kind = "escalation" if stored.escalated else stored.sla
    return alert_id(stored.state.dossier_id, kind, stored.judged_due_at) not in stored.alerts


def alert_reason(stored: StoredDossier, kind: str) -> str:
    due = stored.judged_due_at.isoformat() if stored.judged_due_at else "?"
    return {
        "due_soon": f"due {due}, within the due-soon horizon",
        "overdue": f"due {due} has passed",
        "escalation": f"still overdue several working days after {due}",
        "cleared": f"no longer due soon or overdue (status {stored.state.status})",
    }[kind]
