"""The business date of a DAG run: the day a run reports on (docs/calendar.md, README "Airflow").

Used by the pipeline's tasks and by the alerts of a failed task, which the pipeline imports: kept apart so
that neither imports the other for it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pendulum

from chiso.contract.entities import PORTAL_TIMEZONE


def resolve_business_date(requested: str | None, logical_date: datetime | None) -> date:
    """The business date of a run: the ``business_date`` param if given, else the day before the run.

    A scheduled (or catch-up) run fires the morning after the day it reports on; asset-triggered and
    manual runs may have no logical date, so they must name the day.
    """
    if requested:
        try:
            return date.fromisoformat(str(requested))
        except ValueError:
            raise ValueError(f"business_date must be YYYY-MM-DD, got {requested!r}") from None
    if logical_date is None:
        raise ValueError("This run has no logical date: trigger it with conf {\"business_date\": \"YYYY-MM-DD\"}")
    return pendulum.instance(logical_date).in_timezone(PORTAL_TIMEZONE).date() - timedelta(days=1)


def business_date_of_run(context) -> date:
    """The business date of the running DAG run (its ``business_date`` param, else from its logical date)."""
    return resolve_business_date(context["params"].get("business_date"), context.get("logical_date"))
