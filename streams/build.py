"""The worker's ``Processor``, built from the settings, without Faust.

The Faust worker (``streams.app``) and the bulk passes over ``dossier.events``
(``onestop rebuild``, ``onestop reconcile``; ``ops.bulk_fold``) build it here,
so they judge with the same calendars, catalogue, policy, clock and admission
rules.
"""

from __future__ import annotations

from datetime import timedelta

from onestop.admission import rules_from
from onestop.catalogue import load_catalogue
from onestop.servicecal import load_service_calendar
from onestop.settings import Settings
from onestop.sla import SlaPolicy
from onestop.workcal import load_calendar
from streams.clock import Clock
from streams.counters import Counters
from streams.evaluate import Evaluator
from streams.processor import Processor


def build_processor(settings: Settings, *, counters: Counters | None = None) -> Processor:
    """``counters``: what keeps the counts (default: ``Counters``, moved record by record as the worker needs)."""
    policy = SlaPolicy(due_soon_within=settings.due_soon_hours, boundary=settings.sla_boundary,
                       result_ready_while_waiting=settings.result_ready_while_waiting)
    evaluator = Evaluator(load_calendar(settings.calendar_override), load_catalogue(settings.catalogue_file),
                          policy, settings.escalate_after_working_days)
    clock = Clock(settings.clock, allowed_lateness=timedelta(seconds=settings.allowed_lateness_s),
                  live_lag=settings.live_lag, quorum=settings.event_clock_quorum)
    service = load_service_calendar(settings.service_calendar_file, legal=evaluator.calendar)
    return Processor(evaluator, clock, service, rules_from(settings, evaluator.catalogue),
                     seq_gap_timeout=timedelta(seconds=settings.seq_gap_timeout_s), counters=counters)
