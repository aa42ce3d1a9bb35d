"""Citizen satisfaction as Decision 766/QĐ-TTg (2022) scores it: group 5, sub-indicator 5.4.

    satisfaction = 100% − (overdue share + share of dossiers with a complaint or a bad rating)

per handling commune and calendar month, over the dossiers that finished in that month (the
same dossiers the on-time counters judge). A dossier counts as unsatisfied when any of its
ratings came with a complaint or its latest score is bad (``bad_at_most``, 2 of 5 by default).
The sub-indicator reaches its full score at 90%: ``attainment = min(1, rate / 0.9)``.

The two shares are added as the formula says, so a dossier both overdue and complained about
counts twice; the rate is floored at 0. Source and defaults: docs/domain.md, "Satisfaction".
"""

from __future__ import annotations

from typing import Mapping

import msgspec

from onestop.fold import DossierState


class SatisfactionPolicy(msgspec.Struct, frozen=True):
    bad_at_most: int = 2  # scores 1..bad_at_most of 5 are a bad rating
    full_score_at: float = 0.90  # 766: the satisfaction sub-indicator scores in full from 90%


DEFAULT_SATISFACTION = SatisfactionPolicy()


def unsatisfied(state: DossierState, policy: SatisfactionPolicy = DEFAULT_SATISFACTION) -> bool:
    """A complaint, or a bad latest rating."""
    return state.rating_complaint or (state.rating_score is not None and state.rating_score <= policy.bad_at_most)


class SatisfactionRow(msgspec.Struct, frozen=True):
    commune_code: str  # the handling unit
    month: str  # first day of the month, ISO
    finished: int
    overdue: int
    complaint_or_bad_rating: int
    rated: int

    @property
    def rate(self) -> float | None:
        if not self.finished:
            return None
        return max(0.0, 1.0 - (self.overdue + self.complaint_or_bad_rating) / self.finished)

    def attainment(self, policy: SatisfactionPolicy = DEFAULT_SATISFACTION) -> float | None:
        rate = self.rate
        return None if rate is None else min(1.0, rate / policy.full_score_at)


def satisfaction_table(counts: Mapping[tuple, int]) -> list[SatisfactionRow]:
    """Rows from ``satisfaction`` counter keys ``(family, month, commune, measure) -> n``."""
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for key, n in counts.items():
        if key[0] != "satisfaction" or not n:
            continue
        _, month, commune, measure = key
        cell = rows.setdefault((commune, month), {})
        cell[measure] = cell.get(measure, 0) + n
    return [SatisfactionRow(commune, month, m.get("finished", 0), m.get("overdue", 0),
                            m.get("complaint_or_bad_rating", 0), m.get("rated", 0))
            for (commune, month), m in sorted(rows.items())]
