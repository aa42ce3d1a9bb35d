"""Working time as a number line, for the simulator's hot path.

The simulator places every processing event in office hours: "two working
hours after the specialist took it", "three working days of supplement wait".
``WorkCalendar.add_working_time`` answers that, but walks day by day; a
province-sized run asks it millions of times. ``WorkAxis`` lays the calendar's
own sessions (``WorkCalendar.sessions``, so holidays, make-up Saturdays and the
lunch break come from the calendar) end to end once, as integer POSIX seconds,
and answers by bisection. Position ``w`` is "working seconds since the first
session"; ``instant(position(t) + d)`` equals ``calendar.add_working_time(t, d)``
for every ``d > 0`` (the unit tests check it against the calendar).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, timedelta

from onestop.workcal import CalendarError, WorkCalendar

_CHUNK_DAYS = 62  # the axis grows lazily, two months at a time
_LIMIT_DAYS = 3660  # as in WorkCalendar: ten closed years in a row is a broken calendar


class WorkAxis:
    """Sessions of working days from ``first_day`` on, growing on demand."""

    def __init__(self, calendar: WorkCalendar, first_day: date) -> None:
        self.calendar = calendar
        self._starts: list[int] = []  # session start, POSIX seconds
        self._ends: list[int] = []
        self._cum: list[int] = []  # working seconds before the session starts
        self._cum_end: list[int] = []  # working seconds when it ends
        self._days: list[date] = []  # the local working day of each session
        self._day_open: list[int] = []  # position where that working day opens
        self._day_close: list[int] = []  # position where it closes
        self._first_day = self._next_day = first_day
        while not self._starts:
            self._grow()

    # --- building ---------------------------------------------------------------------

    def _grow(self) -> None:
        if (self._next_day - self._first_day).days > _LIMIT_DAYS:
            raise CalendarError(f"no working time within {_LIMIT_DAYS} days after {self._first_day} "
                                f"({self.calendar.version})")
        total = self._cum_end[-1] if self._cum_end else 0
        for _ in range(_CHUNK_DAYS):
            day, self._next_day = self._next_day, self._next_day + timedelta(days=1)
            sessions = self.calendar.sessions(day)
            if not sessions:
                continue
            opened = total
            for start, end in sessions:
                s, e = int(start.timestamp()), int(end.timestamp())
                self._starts.append(s)
                self._ends.append(e)
                self._cum.append(total)
                total += e - s
                self._cum_end.append(total)
                self._days.append(day)
                self._day_open.append(opened)
            self._day_close.extend([total] * len(sessions))

    def _cover_instant(self, ts: int) -> None:
        while self._ends[-1] <= ts:
            self._grow()

    def _cover_position(self, w: int) -> None:
        while self._cum_end[-1] < w:
            self._grow()

    # --- queries ----------------------------------------------------------------------

    def position(self, ts: int) -> int:
        """Working seconds up to ``ts``; an instant outside office hours counts as the next opening."""
        self._cover_instant(ts)
        i = bisect_right(self._starts, ts) - 1
        if i < 0:
            return 0
        return self._cum[i] + ts - self._starts[i] if ts < self._ends[i] else self._cum_end[i]

    def instant(self, w: int) -> int:
        """The earliest instant at which ``w`` working seconds have passed (a session end, not the next start)."""
        self._cover_position(w)
        i = bisect_left(self._cum_end, w)
        return self._starts[i] + w - self._cum[i]

    def add(self, ts: int, seconds: int) -> int:
        """``calendar.add_working_time``: ``seconds`` of office time after ``ts``."""
        if seconds <= 0:
            return self.opening_at_or_after(ts)
        return self.instant(self.position(ts) + seconds)

    def opening_at_or_after(self, ts: int) -> int:
        """The first working instant at or after ``ts`` (``calendar.clock_start``)."""
        self._cover_instant(ts)
        i = bisect_right(self._ends, ts)
        return max(ts, self._starts[i])

    def _session(self, w: int) -> int:
        self._cover_position(w)
        return bisect_left(self._cum_end, w)

    def day_of(self, w: int) -> date:
        """The local date of ``instant(w)``."""
        return self._days[self._session(w)]

    def day_bounds(self, w: int) -> tuple[int, int]:
        """Positions where the working day of ``instant(w)`` opens and closes."""
        i = self._session(w)
        return self._day_open[i], self._day_close[i]
