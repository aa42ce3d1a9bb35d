"""Working time as a clock: how many working seconds the calendar has counted since a fixed epoch.

Monitoring needs "no event from a commune for N *working* hours" without a
second calendar written in PromQL. So the processes export the province's
working clock (``seconds``) and whether it is working time now
(``is_working``), both read from the same ``WorkCalendar`` that judges the SLA
clock (holidays, make-up Saturdays, provincial overrides, office hours). The
difference of two readings of the clock is the working time between them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from onestop.workcal import WorkCalendar

EPOCH = date(2020, 1, 1)  # the clock reads 0 at this local midnight; any fixed day before the data will do


class WorkingClock:
    def __init__(self, calendar: WorkCalendar, epoch: date = EPOCH) -> None:
        self.calendar = calendar
        self.epoch = epoch
        # Working seconds in [epoch, day 00:00), for every day from the epoch to the latest asked.
        self._day_starts: list[float] = [0.0]

    def _before(self, day: date) -> float:
        index = (day - self.epoch).days
        if index < 0:
            raise ValueError(f"{day} is before the working clock's epoch {self.epoch}")
        starts = self._day_starts
        while len(starts) <= index:
            previous = self.epoch + timedelta(days=len(starts) - 1)
            starts.append(starts[-1] + _working_seconds_of(self.calendar, previous))
        return starts[index]

    def seconds(self, at: datetime) -> float:
        """Working seconds from the epoch's local midnight to ``at``."""
        local = self.calendar.local(at)
        day = local.date()
        today = self.calendar.working_time_between(self.calendar.at(day, time.min), local)
        return self._before(day) + today.total_seconds()

    def is_working(self, at: datetime) -> bool:
        """True inside an office session of a working day."""
        local = self.calendar.local(at)
        return any(start <= local < end for start, end in self.calendar.sessions(local.date()))


def _working_seconds_of(calendar: WorkCalendar, day: date) -> float:
    return sum((end - start for start, end in calendar.sessions(day)), timedelta()).total_seconds()
