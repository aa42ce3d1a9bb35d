"""What a simulated history must produce, counted straight from its events.

This is the independent check of ``onestop demo`` and of the integration
tests: it reads event types and commune codes and nothing else, and shares no
code with the worker (no fold, no SLA clock, no counters). It holds for
histories that follow the lifecycle, as the simulator's do (no illegal
transitions, no missing seqs).

- A dossier is **open** (in the backlog) once it has an ``accepted`` event and
  none that finishes it.
- It is **received** by the commune on its events (``commune_code``), once it
  is accepted: reception belongs to the receiving unit.
- It is **resolved** when an event after acceptance finishes it (result ready,
  withdrawn, stopped, refused), and it counts for the **handling** commune: the
  one named by its latest event that names one, else the receiving commune.
  Timeliness and the backlog belong to the handling unit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from onestop.events import DossierEvent

FINISHING = frozenset({"result_ready", "result_returned", "withdrawal_requested", "processing_stopped", "refused",
                       "refused_at_reception"})


@dataclass
class DossierFacts:
    receiving: str
    handling: str
    handling_seq: int = 0  # seq of the latest event that named the handling commune
    kinds: set[str] = field(default_factory=set)

    @property
    def accepted(self) -> bool:
        return "accepted" in self.kinds

    @property
    def open(self) -> bool:
        return self.accepted and not self.kinds & FINISHING

    @property
    def resolved(self) -> bool:
        return self.accepted and bool(self.kinds & FINISHING)


def dossier_facts(events: Iterable[DossierEvent]) -> dict[str, DossierFacts]:
    facts: dict[str, DossierFacts] = {}
    for e in events:
        f = facts.get(e.dossier_id)
        if f is None:
            f = facts[e.dossier_id] = DossierFacts(receiving=e.commune_code, handling=e.commune_code)
        f.kinds.add(e.event_type.value)
        if e.handling_commune_code is not None and e.seq >= f.handling_seq:
            f.handling, f.handling_seq = e.handling_commune_code, e.seq
    return facts


def expected_backlog(events: Iterable[DossierEvent]) -> Counter:
    """Open dossiers per handling commune."""
    return Counter(f.handling for f in dossier_facts(events).values() if f.open)


def expected_received(events: Iterable[DossierEvent]) -> Counter:
    """Accepted dossiers per receiving commune."""
    return Counter(f.receiving for f in dossier_facts(events).values() if f.accepted)


def expected_resolved(events: Iterable[DossierEvent]) -> Counter:
    """Dossiers finished after acceptance, per handling commune."""
    return Counter(f.handling for f in dossier_facts(events).values() if f.resolved)
