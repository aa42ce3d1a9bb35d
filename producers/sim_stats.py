"""What a simulation run produced, as the simulator planned it (the summary and the tests read it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from producers.sim_arrivals import Arrival


@dataclass
class SimulationStats:
    """What a run produced, as the simulator planned it (the summary reads it)."""

    received: dict[str, int] = field(default_factory=dict)  # dossiers per receiving commune
    channels: dict[int, int] = field(default_factory=dict)  # dossiers per channel (first event)
    outcomes: dict[str, int] = field(default_factory=dict)  # planned outcome per dossier
    accepted: int = 0  # accepted within the period
    accepted_online: int = 0
    planned_overdue: int = 0  # accepted dossiers the default SLA policy will judge overdue
    overdue_ids: list[str] = field(default_factory=list)
    handled_elsewhere: int = 0  # accepted within the period, handled by another commune than the receiving one
    # service practices and ratings (zero unless the run simulates them)
    service_days: dict[str, int] = field(default_factory=dict)  # dossiers received on service days, per kind
    promised: int = 0  # listed dossiers received at the counter on a no-appointment day
    on_the_spot: int = 0  # of those, resolved on the spot as planned
    ratings: int = 0
    bad_ratings: int = 0
    complaints: int = 0

    def note_rating(self, score: int, complaint: bool, late: bool) -> None:
        self.ratings += 1
        self.bad_ratings += score <= 2
        self.complaints += complaint

    def count(self, arrival: Arrival, outcome: str) -> None:
        self.received[arrival.commune.code] = self.received.get(arrival.commune.code, 0) + 1
        self.channels[int(arrival.channel)] = self.channels.get(int(arrival.channel), 0) + 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
