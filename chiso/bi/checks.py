"""Run a card's SQL and its independent ``expected`` query, and put both into comparable rows.

Used by the tests (every card's figures equal the marts), by the Superset test (the figures a browser
shows) and by scripts/bench_bi.py (each card's time).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from chiso.bi.dashboards import Card, bind


def normalised(value):
    """Numbers to 2 decimals (what the cards show), dates as ISO text: equal figures compare equal."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, Decimal)):
        return round(float(value), 2)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def run(conn, query: str, values: dict[str, str]) -> tuple[list[str], list[tuple]]:
    cursor = conn.execute(bind(query), values)
    return [column.name for column in cursor.description], cursor.fetchall()


def card_rows(conn, card: Card, values: dict[str, str]) -> tuple[list[str], list[tuple]]:
    """The card's columns and rows, as a BI tool gets them."""
    return run(conn, card.sql, values)


def compared_rows(conn, card: Card, values: dict[str, str]) -> list[tuple]:
    """What the card's check compares: its rows, or the aggregates ``expected.totals`` takes over them."""
    if card.expected.totals:
        query = f"select {card.expected.totals} from ({card.sql.rstrip().rstrip(';')}) as card"
        return sorted(tuple(normalised(v) for v in row) for row in run(conn, query, values)[1])
    return sorted((tuple(normalised(v) for v in row) for row in card_rows(conn, card, values)[1]), key=repr)


def expected_rows(conn, card: Card, values: dict[str, str]) -> list[tuple]:
    return sorted((tuple(normalised(v) for v in row) for row in run(conn, card.expected.sql, values)[1]), key=repr)
