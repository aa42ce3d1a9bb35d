"""What a simulated desk does differently under its commune's practices, and what citizens say afterwards.

``Desk`` is consulted by ``sim_lifecycle.Lifecycle`` only when the run simulates practices or
ratings (otherwise the lifecycle never calls it, and a default run is unchanged):

- on a weekend service day, ``weekend_beneficiary_share`` of the dossiers are from people with
  merit or social-protection beneficiaries (their procedures, with the beneficiary group);
- events say where the dossier was received (``reception_point``) and, for the fields that
  have one, the beneficiary group;
- on a declared no-appointment day, a listed procedure received at the counter is resolved on the
  spot with probability ``no_appointment_same_day_rate``, within the working day;
- ``rating_rate`` of returned dossiers get a ``rated`` event: at the counter minutes after the
  hand-back, or online within two days for results sent to the e-store. Ratings come from a
  generator of their own (``Random(f"{seed}:ratings")``), so switching them on adds rating
  events and changes nothing else.
"""

from __future__ import annotations

from datetime import datetime, timezone
from random import Random
from typing import TYPE_CHECKING, Any

from onestop.catalogue import Catalogue
from onestop.events import Channel, EventType, Rating, ReceptionPoint
from onestop.servicecal import ServiceCalendar
from producers.sim_arrivals import Arrival
from producers.sim_practices import BENEFICIARY_PROCEDURES, GROUP_OF_FIELD

if TYPE_CHECKING:
    from producers.sim_config import SimulationConfig

SPOT_MIN, SPOT_MAX = 10 * 60, 2 * 3600  # working seconds a desk spends on a dossier resolved on the spot
SCORES_WHEN_NOT_BAD = ((3, 0.2), (4, 0.4), (5, 0.4))


class Desk:
    def __init__(self, cfg: "SimulationConfig", service: ServiceCalendar | None, catalogue: Catalogue,
                 stats: Any) -> None:
        self.cfg, self.service, self.stats = cfg, service, stats
        self.ratings = Random(f"{cfg.seed}:ratings")
        self._beneficiary = sorted(c for c in BENEFICIARY_PROCEDURES if c in catalogue)
        self._field = {p.code: p.field for p in catalogue}

    # --- reception --------------------------------------------------------------------------

    def procedure(self, a: Arrival, rng: Random, drawn: str) -> str:
        if a.service != "weekend_service" or not self._beneficiary:
            return drawn
        if rng.random() < self.cfg.weekend_beneficiary_share:
            return self._beneficiary[min(int(rng.random() * len(self._beneficiary)), len(self._beneficiary) - 1)]
        return drawn

    def tags(self, a: Arrival, code: str) -> dict[str, Any]:
        """Contract 1.1 fields for the first event and the receipt (none unless practices are simulated)."""
        if self.service is None:
            return {}
        if a.service == "village_service":
            point = ReceptionPoint.OUTREACH
        else:
            point = {Channel.IN_PERSON: ReceptionPoint.COUNTER, Channel.ONLINE: ReceptionPoint.ONLINE,
                     Channel.POSTAL: ReceptionPoint.POSTAL}[a.channel]
        tags: dict[str, Any] = {"reception_point": point}
        group = GROUP_OF_FIELD.get(self._field.get(code, ""))
        if group:
            tags["beneficiary_group"] = group
        return tags

    def promised(self, a: Arrival, code: str, accepted: datetime) -> bool:
        """Received at the counter on a no-appointment day that lists ``code``."""
        if self.service is None or a.channel is not Channel.IN_PERSON or a.service == "village_service":
            return False
        return code in self.service.at(a.commune.code, accepted)[0].no_appointment

    # --- after the hand-back ----------------------------------------------------------------

    def rating(self, a: Arrival, returned_ts: int, electronic: bool, late: bool) -> tuple[int, EventType, dict] | None:
        cfg, rr = self.cfg, self.ratings
        if not cfg.rating_rate or rr.random() >= cfg.rating_rate:
            return None
        if rr.random() < cfg.bad_rating_rate:
            score = 1 + int(rr.random() * 2)
        else:
            u, score = rr.random(), 5
            for value, weight in SCORES_WHEN_NOT_BAD:
                if u < weight:
                    score = value
                    break
                u -= weight
        complaint = rr.random() < cfg.complaint_rate
        online = electronic or a.channel is Channel.ONLINE
        ts = returned_ts + (rr.randint(600, 2 * 86400) if online else rr.randint(60, 300))
        self.stats.note_rating(score, complaint, late)
        return ts, EventType.RATED, {"rating": Rating(score=score, complaint=complaint,
                                                      via="online" if online else "hand_back")}


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)
