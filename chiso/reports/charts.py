"""Inline charts of the reports: small PNGs drawn with matplotlib (Agg, no display needed).

Charts carry no title (the HTML around them does, so that the text stays readable and searchable);
they are sized for a 700 px column and scale down on a phone. DejaVu Sans, matplotlib's default
font, has every Vietnamese letter.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

WIDTH_IN, DPI = 5.6, 125  # 700 px wide; fonts stay legible when a phone halves it
INK, MUTED, ACCENT, TARGET = "#1f2933", "#829ab1", "#1d4ed8", "#b42318"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.08,
                   metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _style(axes) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.spines["left"].set_color(MUTED)
    axes.spines["bottom"].set_color(MUTED)
    axes.tick_params(colors=INK, labelsize=10)
    axes.grid(axis="y", color="#e4e7eb", linewidth=0.8)
    axes.set_axisbelow(True)


def score_trend(points: list[tuple[date, Decimal]], peer_average: list[tuple[date, Decimal]] | None,
                unit_label: str, average_label: str, y_label: str = "điểm") -> bytes:
    """The total score (year to date) over the last days, with the peers' average for comparison."""
    figure, axes = plt.subplots(figsize=(WIDTH_IN, 2.5))
    _style(axes)
    if points:
        days, values = zip(*points)
        axes.plot(days, [float(v) for v in values], color=ACCENT, linewidth=2.2, marker="o", markersize=3,
                  label=unit_label)
        axes.annotate(f"{float(values[-1]):.2f}".replace(".", ","), (days[-1], float(values[-1])),
                      textcoords="offset points", xytext=(-10, 7), fontsize=11, color=ACCENT,
                      fontweight="bold")
    if peer_average:
        days, values = zip(*peer_average)
        axes.plot(days, [float(v) for v in values], color=MUTED, linewidth=1.4, linestyle="--", label=average_label)
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%d/%m"))
    axes.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=8))
    everything = [float(v) for _, v in (points or [])] + [float(v) for _, v in (peer_average or [])]
    if everything:
        low, high = min(everything), max(everything)
        axes.set_ylim(max(0.0, low - 2), min(100.0, high + 2))
    axes.set_ylabel(y_label, fontsize=10, color=MUTED)
    axes.legend(fontsize=10, frameon=False, loc="best")
    return _png(figure)


def groups_against_targets(groups: list[tuple[str, float, float | None]], target_label: str) -> bytes:
    """Horizontal bars: each group's score as % of its maximum; a red mark where a target applies.

    ``groups``: (label, percent of max, target percent or None).
    """
    figure, axes = plt.subplots(figsize=(WIDTH_IN, 0.4 * len(groups) + 0.7))
    _style(axes)
    axes.grid(axis="x", color="#e4e7eb", linewidth=0.8)
    axes.grid(axis="y", visible=False)
    labels = [g[0] for g in groups][::-1]
    values = [g[1] for g in groups][::-1]
    targets = [g[2] for g in groups][::-1]
    bars = axes.barh(labels, values, color=ACCENT, height=0.6)
    for bar, value in zip(bars, values):
        axes.text(min(value, 100) + 1, bar.get_y() + bar.get_height() / 2, f"{value:.1f}".replace(".", ",") + "%",
                  va="center", fontsize=10, color=INK)
    shown = False
    for index, target in enumerate(targets):
        if target is None:
            continue
        axes.plot([target, target], [index - 0.38, index + 0.38], color=TARGET, linewidth=2.5,
                  label=None if shown else target_label)
        shown = True
    axes.set_xlim(0, 112)
    axes.set_xticks([0, 25, 50, 75, 100])
    if shown:
        axes.legend(fontsize=10, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=1)
    return _png(figure)


def units_against_targets(rows: list[tuple[str, float | None, float, float | None]], target_label: str,
                          baseline_label: str, now_label: str) -> bytes:
    """One indicator across units (campaign reports): value now as bars, baseline and target as marks.

    ``rows``: (unit label, value now, target, baseline or None).
    """
    figure, axes = plt.subplots(figsize=(WIDTH_IN, 0.28 * len(rows) + 0.8))
    _style(axes)
    axes.grid(axis="x", color="#e4e7eb", linewidth=0.8)
    axes.grid(axis="y", visible=False)
    rows = rows[::-1]
    labels = [r[0] for r in rows]
    values = [r[1] or 0.0 for r in rows]
    colours = [("#1e7b34" if (r[1] or 0) >= r[2] else ACCENT) for r in rows]
    axes.barh(labels, values, color=colours, height=0.6, label=now_label)
    for index, (_, value, target, baseline) in enumerate(rows):
        axes.plot([target, target], [index - 0.38, index + 0.38], color=TARGET, linewidth=2.5,
                  label=target_label if index == 0 else None)
        if baseline is not None:
            axes.plot([baseline], [index], marker="|", markersize=12, color=INK,
                      label=baseline_label if index == 0 else None)
        axes.text((value or 0) + 1, index, "—" if value is None else f"{value:.1f}".replace(".", ","),
                  va="center", fontsize=10, color=INK)
    axes.set_xlim(0, 105)
    axes.legend(fontsize=10, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3)
    return _png(figure)
