"""How a unit behaves over time, and how the simulator makes generated data hit it exactly.

A unit's propensities (share of online dossiers, of dossiers on time, …) are schedules: values at
dates, linear in between, constant outside. Rates the plans quote are period aggregates, so the
simulator does not flip a coin per dossier: it hands out each day's quota so that the cumulative
count since 1 January is the cumulative expectation, rounded (error diffusion). Any period's rate
then lands within a dossier or two of its target, whatever the volume, while every day can still
be generated on its own.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Schedule:
    """A value that changes over time: ((date, value), …) in date order, linear in between."""

    points: tuple[tuple[date, float], ...]

    @classmethod
    def constant(cls, value: float) -> Schedule:
        return cls(((date(2000, 1, 1), value),))

    @classmethod
    def of(cls, *points: tuple[str | date, float]) -> Schedule:
        parsed = tuple((date.fromisoformat(d) if isinstance(d, str) else d, v) for d, v in points)
        if list(parsed) != sorted(parsed, key=lambda p: p[0]):
            raise ValueError("schedule points must be in date order")
        return cls(parsed)

    def at(self, day: date) -> float:
        dates = [d for d, _ in self.points]
        index = bisect_right(dates, day)
        if index == 0:
            return self.points[0][1]
        if index == len(self.points):
            return self.points[-1][1]
        (d0, v0), (d1, v1) = self.points[index - 1], self.points[index]
        return v0 + (v1 - v0) * (day - d0).days / (d1 - d0).days


def _constant(value: float):
    return field(default_factory=lambda: Schedule.constant(value))


@dataclass(frozen=True)
class Behaviour:
    """Propensities of one unit. Shares are fractions of the population named beside each."""

    online: Schedule = _constant(0.5)  # of received dossiers: submitted online
    on_time: Schedule = _constant(0.95)  # of dossiers: ended by their due date
    paid_online: Schedule = _constant(0.3)  # of dossiers with a fee: paid online
    digitised: Schedule = _constant(0.7)  # of dossiers: with digitised components
    e_result: Schedule = _constant(0.8)  # of ended dossiers: result has an electronic file
    reused: Schedule = _constant(0.3)  # of dossiers: re-use a digitised component
    personal_store: Schedule = _constant(0.2)  # of dossiers: file from / result to the personal store
    vneid: Schedule = _constant(0.4)  # of dossiers: VNeID-verified applicant
    synced: Schedule = _constant(0.99)  # of dossiers: synced to the national portal
    satisfied: Schedule = _constant(0.97)  # of ratings: not KHÔNG HÀI LÒNG
    supplement: Schedule = _constant(0.05)  # of dossiers: one supplement request
    login_minutes: Schedule = _constant(9.0)  # online: mean minutes from login to submission
    feedback_per_day: Schedule = _constant(0.05)  # PAKN received per day
    feedback_on_time: Schedule = _constant(0.9)  # of PAKN: answered within 15 working days

