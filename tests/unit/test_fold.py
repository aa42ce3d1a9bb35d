"""The lifecycle fold: order, duplicates, conflicts and illegal transitions.

``dossier_history`` (a Hypothesis strategy) is also used by test_report.py.
"""

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from onestop.events import STATUS_OF, Channel, DossierEvent, EventType, Rating
from onestop.fold import ALLOWED, DossierState, apply, fold

E = EventType
VN = timezone(timedelta(hours=7))
T0 = datetime(2025, 5, 5, 9, 0, tzinfo=VN)  # Monday


def ev(seq: int, kind: EventType, at: datetime | None = None, dossier: str = "D1", **kw) -> DossierEvent:
    kw.setdefault("commune_code", "18754")
    kw.setdefault("procedure_code", "2.000720")
    kw.setdefault("channel", Channel.IN_PERSON)
    if kind in (E.ACCEPTED, E.EXTENDED, E.DUE_DATE_CORRECTED):
        kw.setdefault("due_at", T0 + timedelta(days=3, hours=8))
    return DossierEvent(event_id=kw.pop("event_id", f"{dossier}-{seq}"), event_type=kind, dossier_id=dossier,
                        seq=seq, occurred_at=at or T0 + timedelta(hours=seq), **kw)


def happy_path() -> list[DossierEvent]:
    return [ev(1, E.SUBMITTED, channel=Channel.ONLINE), ev(2, E.ACCEPTED, channel=Channel.ONLINE),
            ev(3, E.STEP_ASSIGNED, step="công chức tư pháp"), ev(4, E.RESULT_READY), ev(5, E.RESULT_RETURNED)]


# --- examples -----------------------------------------------------------------------


def test_a_normal_lifecycle_ends_returned_with_dates_kept():
    state = fold(happy_path())
    assert state.status == 10 and not state.is_open
    assert state.accepted_at == T0 + timedelta(hours=2)
    assert state.finished_at == T0 + timedelta(hours=4)  # result ready is the on-time reference
    assert state.returned_at == T0 + timedelta(hours=5)
    assert state.closed_by == "result_ready"
    assert state.channel == 2


def test_accepted_dossiers_are_open_until_result_ready():
    events = happy_path()
    assert fold(events[:1]).is_open is False  # submitted: no clock yet
    assert fold(events[:2]).is_open and fold(events[:3]).is_open
    assert fold(events[:4]).is_open is False


def test_a_redelivered_event_changes_nothing():
    state = fold(happy_path()[:3])
    outcome = apply(state, happy_path()[1])
    assert outcome.duplicate and outcome.state == state and not outcome.rejected


def test_a_redelivered_early_event_is_a_duplicate_while_buffered():
    state = apply(None, ev(3, E.STEP_ASSIGNED)).state
    outcome = apply(state, ev(3, E.STEP_ASSIGNED))
    assert outcome.duplicate and outcome.state == state


def test_same_seq_with_another_event_id_is_a_conflict_and_changes_nothing():
    state = fold(happy_path()[:3])
    impostor = ev(2, E.ACCEPTED, event_id="other", due_at=T0 + timedelta(days=30))
    outcome = apply(state, impostor)
    assert outcome.state == state
    assert [r.code for r in outcome.rejected] == ["seq_conflict"]
    assert "D1-2" in outcome.rejected[0].message and "other" in outcome.rejected[0].message


def test_same_seq_conflict_is_caught_while_buffered_too():
    state = apply(None, ev(3, E.STEP_ASSIGNED)).state
    outcome = apply(state, ev(3, E.RESULT_READY, event_id="other"))
    assert outcome.state == state and outcome.rejected[0].code == "seq_conflict"


def test_out_of_order_events_wait_for_the_gap_then_apply_in_seq_order():
    first, second, third = happy_path()[:3]
    outcome = apply(None, third)
    assert outcome.buffered and outcome.state.status is None
    outcome = apply(outcome.state, first)
    assert outcome.state.status == 1 and len(outcome.state.pending) == 1
    outcome = apply(outcome.state, second)
    assert outcome.applied == (second, third) and outcome.state.status == 4 and not outcome.state.pending


def test_result_ready_before_acceptance_is_rejected_and_consumes_its_seq():
    outcome = apply(fold([ev(1, E.SUBMITTED)]), ev(2, E.RESULT_READY))
    assert outcome.rejected[0].code == "illegal_transition"
    assert "result_ready" in outcome.rejected[0].message and "status 1" in outcome.rejected[0].message
    assert outcome.state.status == 1 and outcome.state.finished_at is None
    later = apply(outcome.state, ev(3, E.ACCEPTED))
    assert later.state.status == 2 and later.state.rejected == 1


def test_an_event_after_a_terminal_status_is_rejected_as_closed():
    stopped = fold([ev(1, E.ACCEPTED), ev(2, E.PROCESSING_STOPPED, reason="hồ sơ giả mạo")])
    outcome = apply(stopped, ev(3, E.RESULT_READY))
    assert outcome.rejected[0].code == "illegal_transition"
    assert "closed" in outcome.rejected[0].message
    assert outcome.state.status == 8 and outcome.state.finished_at == stopped.finished_at
    assert outcome.state.closed_by == "processing_stopped"


def test_an_event_for_another_dossier_is_rejected():
    state = fold([ev(1, E.ACCEPTED)])
    outcome = apply(state, ev(2, E.RESULT_READY, dossier="D2"))
    assert outcome.state == state and outcome.rejected[0].code == "wrong_dossier"


def test_extension_keeps_the_original_date():
    new_date = T0 + timedelta(days=10)
    state = fold([ev(1, E.ACCEPTED), ev(2, E.EXTENDED, due_at=new_date, reason="cần xác minh")])
    assert state.original_due_at == T0 + timedelta(days=3, hours=8)
    assert state.due_at == new_date and state.extensions == 1 and state.extended_at == T0 + timedelta(hours=2)


def test_a_receipt_correction_moves_both_dates_without_an_extension():
    fixed = T0 + timedelta(days=4)
    state = fold([ev(1, E.ACCEPTED), ev(2, E.DUE_DATE_CORRECTED, due_at=fixed)])
    assert state.original_due_at == fixed and state.due_at == fixed


def test_a_receipt_correction_leaves_an_extension_in_force():
    extended, fixed = T0 + timedelta(days=10), T0 + timedelta(days=4)
    state = fold([ev(1, E.ACCEPTED), ev(2, E.EXTENDED, due_at=extended), ev(3, E.DUE_DATE_CORRECTED, due_at=fixed)])
    assert state.original_due_at == fixed and state.due_at == extended


def test_supplement_and_financial_waits_are_recorded_as_pauses():
    state = fold([ev(1, E.ACCEPTED), ev(2, E.SUPPLEMENT_REQUESTED), ev(3, E.SUPPLEMENT_RECEIVED),
                  ev(4, E.FINANCIAL_OBLIGATION_REQUESTED)])
    assert state.status == 6 and state.processing_supplements == 1
    assert [(p.kind, p.end is None) for p in state.pauses] == [("supplement", False), ("financial", True)]


def test_finishing_during_a_wait_closes_the_pause():
    state = fold([ev(1, E.ACCEPTED), ev(2, E.SUPPLEMENT_REQUESTED), ev(3, E.WITHDRAWAL_REQUESTED)])
    assert state.status == 7 and state.pauses[-1].end == state.finished_at
    assert state.closed_by == "withdrawal_requested"


def test_reception_supplement_then_resubmission_then_acceptance():
    state = fold([ev(1, E.SUBMITTED), ev(2, E.RECEPTION_SUPPLEMENT_REQUESTED), ev(3, E.SUBMITTED), ev(4, E.ACCEPTED)])
    assert state.status == 2 and state.submitted_at == T0 + timedelta(hours=1) and state.rejected == 0


def test_a_hop_to_another_handling_commune_is_kept_whatever_the_arrival_order():
    events = [ev(1, E.ACCEPTED), ev(2, E.STEP_ASSIGNED, handling_commune_code="18757", step="UBND xã B"),
              ev(3, E.STEP_COMPLETED)]
    for order in (events, events[::-1], [events[1], events[0], events[2]]):
        state = fold(order)
        assert (state.commune_code, state.handling_commune_code) == ("18754", "18757")


def test_versions_stamped_on_the_accepted_event_are_kept():
    state = fold([ev(1, E.ACCEPTED, procedure_version="2025.07", calendar_version="holidays-0.108")])
    assert (state.procedure_version, state.calendar_version) == ("2025.07", "holidays-0.108")


def test_a_state_serialised_before_event_ids_existed_still_dedups_by_seq():
    old = DossierState(dossier_id="D1", commune_code="18754", handling_commune_code="18754",
                       procedure_code="2.000720", channel=1, status=2, last_seq=1)
    assert apply(old, ev(1, E.ACCEPTED, event_id="unknown")).duplicate


# --- properties ---------------------------------------------------------------------

_INSTANTS = st.datetimes(min_value=datetime(2025, 1, 2), max_value=datetime(2026, 12, 1), timezones=st.just(VN))
_GAPS = st.integers(min_value=1, max_value=5 * 24 * 60).map(lambda m: timedelta(minutes=m))
PROCEDURES = ("1.001193", "2.000720", "1.013978", "1.004884", "9.999999")  # the last is not in the catalogue
COMMUNES = ("18754", "03595", "18757")


@st.composite
def dossier_history(draw, dossier_id: str = "D1", max_events: int = 9) -> list[DossierEvent]:
    """A random lifecycle that mostly follows the legal transitions, with some illegal events mixed in."""
    at, status, events = draw(_INSTANTS), None, []
    common = dict(commune_code=draw(st.sampled_from(COMMUNES)), procedure_code=draw(st.sampled_from(PROCEDURES)),
                  channel=draw(st.sampled_from(list(Channel))))
    for seq in range(1, draw(st.integers(1, max_events)) + 1):
        legal = sorted(ALLOWED.get(status, frozenset()), key=lambda t: t.value)
        if not legal or draw(st.integers(0, 9)) == 0:
            kind = draw(st.sampled_from(list(EventType)))  # any event: often illegal here
        else:
            kind = draw(st.sampled_from(legal))
        at += draw(_GAPS)
        due = at + timedelta(days=draw(st.integers(0, 30)), hours=8)
        extra = {"due_at": due} if kind in (E.ACCEPTED, E.EXTENDED, E.DUE_DATE_CORRECTED) else {}
        if kind is E.RATED:
            extra["rating"] = Rating(score=draw(st.integers(1, 5)), complaint=draw(st.booleans()))
        if kind is E.STEP_ASSIGNED and draw(st.booleans()):
            extra["handling_commune_code"] = draw(st.sampled_from(COMMUNES))
        events.append(DossierEvent(event_id=f"{dossier_id}-{seq}", event_type=kind, dossier_id=dossier_id, seq=seq,
                                   occurred_at=at, **common, **extra))
        if kind in legal and STATUS_OF[kind] is not None:
            status = STATUS_OF[kind]
    return events


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_arrival_order_folds_to_the_same_state(data):
    events = data.draw(dossier_history())
    shuffled = data.draw(st.permutations(events))
    assert fold(shuffled) == fold(events)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_duplicates_anywhere_change_nothing(data):
    events = data.draw(dossier_history())
    copies = data.draw(st.lists(st.sampled_from(events), max_size=6))
    arrival = data.draw(st.permutations(events + copies))
    assert fold(arrival) == fold(events)


@settings(max_examples=100, deadline=None)
@given(dossier_history())
def test_every_event_is_applied_or_rejected_exactly_once(events):
    state, applied, rejected = None, 0, 0
    for event in events:
        outcome = apply(state, event)
        state, applied, rejected = outcome.state, applied + len(outcome.applied), rejected + len(outcome.rejected)
        assert apply(state, event).duplicate  # a second copy is always recognised
    assert applied + rejected == len(events) and state.rejected == rejected


def test_an_event_far_beyond_the_next_seq_is_refused_and_the_dossier_goes_on():
    from datetime import datetime, timezone

    from onestop.events import Channel, DossierEvent, EventType
    from onestop.fold import apply

    def event(seq: int, kind: EventType, **kw) -> DossierEvent:
        return DossierEvent(event_id=f"far-{seq}", event_type=kind, dossier_id="FAR", seq=seq,
                            occurred_at=datetime(2026, 11, 2, 2, seq % 50, tzinfo=timezone.utc), commune_code="18073",
                            procedure_code="2.000815", channel=Channel.IN_PERSON, **kw)

    far = apply(None, event(4_000_000_000, EventType.SUBMITTED))
    assert [r.code for r in far.rejected] == ["seq_too_far_ahead"]
    assert far.state.pending == () and far.state.last_seq == 0
    nearly = apply(far.state, event(1000, EventType.SUBMITTED))  # 1,000 ahead of seq 0 is still plausible
    assert nearly.buffered and [p.seq for p in nearly.state.pending] == [1000]
    first = apply(nearly.state, event(1, EventType.SUBMITTED))
    assert first.state.last_seq == 1 and first.state.status == 1
