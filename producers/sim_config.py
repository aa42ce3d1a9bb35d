"""What to simulate: the province, the volume, the period, and every rate of the simulator.

The defaults and the facts behind them are in docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime

__all__ = ["DEFAULT_MIX", "SimulationConfig", "SimulationError"]

# Weighted procedure mix at a commune desk: certification and civil status dominate the volume.
# Every code must be in the catalogue (checked at start); weights are relative.
DEFAULT_MIX: dict[str, float] = {
    "2.000815": 30,  # certified copy from original
    "2.000884": 8,  # signature attestation
    "LOCAL-CT-0001": 3,  # attestation of contracts
    "1.001193": 10,  # birth registration
    "1.000689": 1,  # birth + parentage recognition
    "1.000656": 3,  # death registration
    "1.000894": 3,  # marriage registration
    "2.000635": 6,  # civil-status extract copy
    "1.004884": 1,  # re-registration of birth
    "1.004873": 5,  # marital-status certificate
    "1.013978": 4,  # first land registration
    "1.013949": 3,  # land allocation / change of use
    "1.001776": 4,  # monthly social-assistance allowance
    "1.001731": 1,  # funeral-cost support
    "1.001699": 1,  # disability certificate
    "1.010833": 1,  # relatives of people with meritorious services
    "2.000720": 3,  # household-business registration change
}


class SimulationError(ValueError):
    """A simulation that cannot run as configured; the message says what to change."""


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Defaults and their sources: docs/simulator.md."""

    province_code: str = "42"  # Hà Tĩnh, 69 communes
    communes: int | None = None  # first N communes in code order; None = all
    dossiers: int = 1000  # the main knob: dossiers arriving over the period (exact)
    start: date = date(2026, 11, 2)
    days: int = 10  # calendar days; the period ends at local midnight of start + days
    seed: int = 42
    not_before: datetime | None = None  # live mode: nothing arrives before this instant
    # channels and arrivals
    online_share: float = 0.30  # Hà Tĩnh 29.1% (2020); provinces 16.94%, national 39.98% (Nov 2025)
    postal_share: float = 0.02
    online_after_hours_share: float = 0.25  # of online submissions: evenings of working days
    morning_share: float = 0.60  # of office-hours arrivals: the first session
    commune_size_spread: float = 0.5  # sigma of the log-normal commune size
    daily_variation: float = 0.15  # sigma of the log-normal day-to-day variation
    desk_pickup_hours: float = 1.5  # median working hours until the desk takes up a remote submission
    # reception (no clock)
    refusal_at_reception_rate: float = 0.01
    withdrawal_before_acceptance_rate: float = 0.005  # of online and postal submissions
    reception_supplement_rate: float = 0.04
    reception_abandon_share: float = 0.15  # of reception supplement requests: the citizen never returns
    # processing (the clock runs)
    supplement_rate: float = 0.05
    second_supplement_rate: float = 0.05  # of dossiers with a processing-stage supplement
    supplement_wait_days: float = 2.0  # median working days until the supplement arrives
    financial_obligation_rate: float = 0.85  # of land dossiers
    financial_wait_days: float = 3.0
    hop_rate: float = 0.25  # inter-agency hop, of dossiers with a multi-day legal time
    inter_commune_share: float = 0.03  # of accepted dossiers: handled by another commune than the receiving one
    withdrawal_rate: float = 0.01
    refusal_rate: float = 0.005  # refused after acceptance
    stop_rate: float = 0.005  # processing stopped (form 05)
    late_rate: float = 0.02  # resolved after the original due date
    extension_rate: float = 0.4  # of late dossiers: an apology letter with a new date (form 04)
    # returning the result
    electronic_result_share: float = 0.5  # of online dossiers: the result goes to the e-store
    pickup_median_hours: float = 12.0  # median working hours from result ready to handed over
    pickup_median_hours_same_day: float = 2.0
    procedure_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    # service practices (docs/simulator.md, "Service practices"): all off by default, so a default
    # run emits exactly the events it always did.
    service_calendar_file: str | None = None  # declarations of the province ("packaged": the packaged file)
    no_appointment_share: float = 0.0  # of communes: declare no-appointment days
    no_appointment_weekday: int = 3  # 0 = Monday; Thursday as in Đồng Lộc
    no_appointment_same_day_rate: float = 0.9  # listed dossiers at the counter on those days, resolved on the spot
    weekend_service_share: float = 0.0  # of communes: open the counter on Saturday mornings
    village_service_share: float = 0.0  # of communes: serve in the villages on Saturday mornings
    service_day_volume: float = 0.5  # a service day's arrivals, relative to the commune's average working day
    weekend_beneficiary_share: float = 0.5  # of weekend service dossiers: people with merit, social protection
    rating_rate: float = 0.0  # of returned dossiers: the citizen rates the service
    bad_rating_rate: float = 0.05  # of ratings: score 1 or 2
    complaint_rate: float = 0.02  # of ratings: with a complaint
    flaky_network_share: float = 0.0  # of communes: weak network, events delayed and sent in bursts from a spool
    network_delay_s: float = 2.0  # median delivery delay of a good network (with network modelling on)
    flaky_delay_s: float = 300.0  # median delivery delay of a flaky network between outages
    outages_per_day: float = 1.0  # mean outages per day at a flaky commune (office hours)
    outage_hours: float = 2.0  # median length of an outage

    @property
    def models_practices(self) -> bool:
        """Service calendar, reception points and beneficiary groups are simulated."""
        return bool(self.service_calendar_file or self.no_appointment_share or self.weekend_service_share
                    or self.village_service_share)

    @property
    def models_network(self) -> bool:
        return self.flaky_network_share > 0

    def __post_init__(self) -> None:
        problems = [f"{f.name} must be between 0 and 1, got {getattr(self, f.name)}" for f in fields(self)
                    if f.name.endswith(("_rate", "_share")) and not 0 <= getattr(self, f.name) <= 1]
        if self.online_share + self.postal_share > 1:
            problems.append("online_share + postal_share must not exceed 1")
        if self.online_after_hours_share >= 1 and self.online_share >= 1:
            problems.append("with online_share 1, online_after_hours_share must be below 1")
        if self.dossiers < 0:
            problems.append(f"dossiers must be >= 0, got {self.dossiers}")
        if self.days < 1:
            problems.append(f"days must be >= 1, got {self.days}")
        if self.communes is not None and self.communes < 1:
            problems.append(f"communes must be >= 1, got {self.communes}")
        if not self.procedure_mix or any(w < 0 for w in self.procedure_mix.values()) \
                or sum(self.procedure_mix.values()) <= 0:
            problems.append("procedure_mix needs positive weights")
        for name in ("commune_size_spread", "daily_variation", "outages_per_day"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if not 0 <= self.no_appointment_weekday <= 6:
            problems.append(f"no_appointment_weekday must be 0 (Monday) to 6, got {self.no_appointment_weekday}")
        if self.service_day_volume < 0:
            problems.append("service_day_volume must be >= 0")
        for name in ("desk_pickup_hours", "supplement_wait_days", "financial_wait_days", "pickup_median_hours",
                     "pickup_median_hours_same_day", "network_delay_s", "flaky_delay_s", "outage_hours"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0")
        if self.not_before is not None and self.not_before.tzinfo is None:
            problems.append("not_before must carry a timezone")
        if problems:
            raise SimulationError("invalid simulation: " + "; ".join(problems))
