"""Inline charts of the reports: small PNGs (no display needed).

The nightly e-mail's two charts (:func:`score_trend`, :func:`groups_against_targets`) are drawn with
Pillow: a national night draws ~6,700 of them, and matplotlib took ~70 ms a chart (figure set-up, a
tight bounding box drawn twice, text layout) where Pillow takes a few. They keep matplotlib's look
(DejaVu Sans from matplotlib's own fonts, the same colours, line widths in points at 125 dpi) and are
drawn at twice the size and reduced, so that lines and text are smoothed. The campaign reports' chart
(:func:`units_against_targets`, a few per campaign report) is still drawn with matplotlib (Agg).

Charts carry no title (the HTML around them does, so that the text stays readable and searchable);
they are 700 px wide for a 700 px column and scale down on a phone. DejaVu Sans has every Vietnamese
letter; numbers are written the Vietnamese way (78,95).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH_IN, DPI = 5.6, 125  # 700 px wide; fonts stay legible when a phone halves it
WIDTH_PX = round(WIDTH_IN * DPI)
POINT = DPI / 72          # pixels per typographic point: sizes below are matplotlib's, in points
SUPERSAMPLE = 2           # drawn at twice the size, then reduced: smooth lines and text
INK, MUTED, ACCENT, TARGET = "#1f2933", "#829ab1", "#1d4ed8", "#b42318"
GRID, WHITE = "#e4e7eb", "#ffffff"
TREND_HEIGHT_PX = round(2.5 * DPI)
PALETTE_COLOURS = 64


def decimal_comma(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}".replace(".", ",")


# ----------------------------------------------------------------------------- drawing with Pillow

@lru_cache(maxsize=None)
def _font_file(bold: bool) -> str:
    import matplotlib  # only for the path of its fonts (DejaVu Sans); pyplot is not imported

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"))


def _font(points: float, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The font at ``points``, in the supersampled canvas's pixels (for measuring)."""
    return _font_px(round(points * POINT * SUPERSAMPLE), bold)


class _Canvas:
    """A white image at ``scale`` times the chart's size, addressed in the final chart's pixels.

    A chart of diagonal lines and dots is drawn at SUPERSAMPLE times its size and reduced (Pillow does
    not smooth lines); one of axis-aligned bars and text only needs no smoothing and is drawn at size."""

    def __init__(self, width: int, height: int, scale: int = SUPERSAMPLE):
        self.width, self.height, self.scale = width, height, scale
        self.image = Image.new("RGB", (width * scale, height * scale), WHITE)
        self.draw = ImageDraw.Draw(self.image)

    def _at(self, x: float, y: float) -> tuple[float, float]:
        return x * self.scale, y * self.scale

    def line(self, points: list[tuple[float, float]], colour: str, width_pt: float) -> None:
        width = max(1, round(width_pt * POINT * self.scale))
        self.draw.line([self._at(x, y) for x, y in points], fill=colour, width=width,
                       joint="curve" if len(points) > 2 else None)

    def dashed(self, points: list[tuple[float, float]], colour: str, width_pt: float) -> None:
        """matplotlib's '--': dashes 3.7 line widths long, gaps 1.6, continuing across vertices."""
        on, off = 3.7 * width_pt * POINT, 1.6 * width_pt * POINT
        drawing, left = True, on
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            length = math.hypot(x1 - x0, y1 - y0)
            done = 0.0
            while done < length:
                step = min(left, length - done)
                if drawing:
                    a, b = done / length, (done + step) / length
                    self.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                              colour, width_pt)
                done += step
                left -= step
                if left <= 1e-9:
                    drawing = not drawing
                    left = on if drawing else off

    def dot(self, x: float, y: float, diameter_pt: float, colour: str) -> None:
        radius = diameter_pt * POINT * self.scale / 2
        cx, cy = self._at(x, y)
        self.draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)

    def rectangle(self, x0: float, y0: float, x1: float, y1: float, colour: str) -> None:
        self.draw.rectangle((*self._at(x0, y0), *self._at(x1, y1)), fill=colour)

    def text(self, x: float, y: float, words: str, colour: str, points: float = 10, anchor: str = "la",
             bold: bool = False) -> None:
        """``words`` with its ``anchor`` (Pillow's: "lm" left-middle, "rm", "mt", "ls" …) at (x, y)."""
        mask, left, top = _stamp(words, round(points * POINT * self.scale), bold, anchor)
        x, y = self._at(x, y)
        self.image.paste(colour, (round(x) + left, round(y) + top), mask)

    def text_width(self, words: str, points: float = 10, bold: bool = False) -> float:
        return _font(points, bold).getlength(words) / SUPERSAMPLE

    def vertical_text(self, x: float, y: float, words: str, colour: str, points: float = 10) -> None:
        """Text read bottom to top, centred on (x, y) (an axis label)."""
        mask = _vertical_label(words, round(points * POINT * self.scale))
        x, y = self._at(x, y)
        self.image.paste(colour, (round(x) - mask.width // 2, round(y) - mask.height // 2), mask)

    def png(self) -> bytes:
        """Reduced to the chart's size (a box filter: the smoothing), then to a palette of 64 colours
        (five inks and their smoothed edges) and saved as PNG: a third of the bytes of an RGB PNG, and
        quicker to write, since zlib then works on one byte a pixel instead of three."""
        buffer = io.BytesIO()
        small = self.image.reduce(self.scale) if self.scale > 1 else self.image
        small.quantize(PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()


@lru_cache(maxsize=None)
def _font_px(pixels: int, bold: bool) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(_font_file(bold), pixels)


@lru_cache(maxsize=4096)
def _stamp(words: str, pixels: int, bold: bool, anchor: str) -> tuple[Image.Image, int, int]:
    """The text's coverage mask, drawn once: tick labels, group names and most values ("87,2%") recur
    in every chart of the night. Returns the mask and its offset from the anchor point."""
    font = _font_px(pixels, bold)
    left, top, right, bottom = font.getbbox(words, anchor=anchor)
    mask = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
    ImageDraw.Draw(mask).text((-left, -top), words, fill=255, font=font, anchor=anchor)
    return mask, left, top


@lru_cache(maxsize=64)
def _vertical_label(words: str, pixels: int) -> Image.Image:
    """The mask of an axis label turned a quarter left, drawn once."""
    mask, _left, _top = _stamp(words, pixels, False, "la")
    return mask.rotate(90, expand=True)


def nice_ticks(low: float, high: float, most: int = 7) -> list[float]:
    """Round tick values from low to high, at most ``most`` of them (steps 1, 2, 2.5, 5 × 10^k)."""
    span = max(high - low, 1e-9)
    magnitude = 10 ** math.floor(math.log10(span / most))
    for multiple in (1, 2, 2.5, 5, 10, 20):
        step = multiple * magnitude
        if span / step <= most:
            break
    first = math.ceil(low / step - 1e-9) * step
    count = int(math.floor((high - first) / step + 1e-9)) + 1
    return [round(first + index * step, 10) for index in range(count)]


def _tick_label(value: float, ticks: list[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1
    decimals = 0 if abs(step - round(step)) < 1e-9 else (1 if abs(step * 10 - round(step * 10)) < 1e-9 else 2)
    return decimal_comma(value, decimals)


def date_ticks(first: date, last: date) -> list[date]:
    """Days to label: every day of a week, every other day of a fortnight, else the 1st, 8th, 15th and
    22nd of each month (matplotlib's AutoDateLocator chooses these for a month)."""
    span = (last - first).days
    if span <= 7:
        return [first + timedelta(days=n) for n in range(span + 1)]
    if span <= 14:
        return [first + timedelta(days=n) for n in range(0, span + 1, 2)]
    if span <= 92:
        return [first + timedelta(days=n) for n in range(span + 1) if (first + timedelta(days=n)).day in (1, 8, 15, 22)]
    return [first + timedelta(days=n) for n in range(span + 1) if (first + timedelta(days=n)).day == 1]


def date_tick_label(day: date, first: date, last: date) -> str:
    """A date tick as the text writes dates: "24/11"; past three months, where ticks are months, "11/2024"
    (a year's span would write "01/11" twice)."""
    return f"{day:%d/%m}" if (last - first).days <= 92 else f"{day:%m/%Y}"


# ----------------------------------------------------------------------------- the total score over time

@dataclass(frozen=True)
class TrendLayout:
    """Where the trend chart puts things, in the PNG's pixels (the tests read the pixels through it)."""
    left: float
    right: float
    top: float
    bottom: float
    first: date
    last: date
    low: float
    high: float

    def x(self, day: date) -> float:
        span = max((self.last - self.first).days, 1)
        margin = span * 0.05  # matplotlib's 5% margins either side of the data
        return self.left + (self.right - self.left) * ((day - self.first).days + margin) / (span + 2 * margin)

    def y(self, value: float) -> float:
        return self.bottom - (self.bottom - self.top) * (value - self.low) / max(self.high - self.low, 1e-9)


def trend_layout(points: list[tuple[date, Decimal]], peer_average: list[tuple[date, Decimal]] | None) -> TrendLayout:
    everything = list(points or []) + list(peer_average or [])
    values = [float(v) for _, v in everything] or [0.0, 100.0]
    days = [d for d, _ in everything] or [date.today()]
    low, high = max(0.0, min(values) - 2), min(100.0, max(values) + 2)
    if high <= low:
        low, high = max(0.0, low - 1), min(100.0, high + 1)
    return TrendLayout(left=62, right=WIDTH_PX - 58, top=30, bottom=TREND_HEIGHT_PX - 30,
                       first=min(days), last=max(days), low=low, high=high)


def score_trend(points: list[tuple[date, Decimal]], peer_average: list[tuple[date, Decimal]] | None,
                unit_label: str, average_label: str, y_label: str = "điểm") -> bytes:
    """The total score (year to date) over the last days, with the peers' average for comparison."""
    layout = trend_layout(points, peer_average)
    canvas = _Canvas(WIDTH_PX, TREND_HEIGHT_PX)
    ticks = nice_ticks(layout.low, layout.high)
    for tick in ticks:  # the grid below everything
        canvas.line([(layout.left, layout.y(tick)), (layout.right, layout.y(tick))], GRID, 0.8)
    canvas.line([(layout.left, layout.top - 4), (layout.left, layout.bottom)], MUTED, 0.8)
    canvas.line([(layout.left, layout.bottom), (layout.right + 18, layout.bottom)], MUTED, 0.8)
    tick_length = 3.5 * POINT
    for tick in ticks:
        y = layout.y(tick)
        canvas.line([(layout.left - tick_length, y), (layout.left, y)], INK, 0.8)
        canvas.text(layout.left - tick_length - 4, y, _tick_label(tick, ticks), INK, 10, "rm")
    for day in date_ticks(layout.first, layout.last):
        x = layout.x(day)
        canvas.line([(x, layout.bottom), (x, layout.bottom + tick_length)], INK, 0.8)
        canvas.text(x, layout.bottom + tick_length + 3, date_tick_label(day, layout.first, layout.last), INK, 10, "mt")
    canvas.vertical_text(12, (layout.top + layout.bottom) / 2, y_label, MUTED, 10)
    unit_line = [(layout.x(d), layout.y(float(v))) for d, v in points or []]
    average_line = [(layout.x(d), layout.y(float(v))) for d, v in peer_average or []]
    if len(average_line) > 1:
        canvas.dashed(average_line, MUTED, 1.4)
    if unit_line:
        if len(unit_line) > 1:
            canvas.line(unit_line, ACCENT, 2.2)
        for x, y in unit_line:
            canvas.dot(x, y, 3 + 1, ACCENT)  # marker size 3 pt plus its 1 pt edge, as matplotlib draws it
        x, y = unit_line[-1]
        canvas.text(x - 10 * POINT, y - 7 * POINT, decimal_comma(float(points[-1][1]), 2), ACCENT, 11, "ls", bold=True)
    _legend(canvas, layout, [(unit_label, ACCENT, 2.2, "marker")] * bool(unit_line)
            + [(average_label, MUTED, 1.4, "dashed")] * bool(average_line), unit_line + average_line)
    return canvas.png()


def _legend(canvas: _Canvas, layout: TrendLayout, entries: list[tuple[str, str, float, str]],
            data: list[tuple[float, float]]) -> None:
    """matplotlib's loc="best": the place among the usual nine that covers the fewest data points."""
    if not entries:
        return
    row, handle, gap, pad = 10 * POINT * 1.45, 2.0 * 10 * POINT, 0.8 * 10 * POINT, 0.5 * 10 * POINT
    width = handle + gap + max(canvas.text_width(label) for label, *_ in entries) + 2 * pad
    height = row * len(entries) + 2 * pad
    left, right, top, bottom = layout.left, layout.right, layout.top, layout.bottom
    middle_x, middle_y = (left + right - width) / 2, (top + bottom - height) / 2
    places = [(right - width, top), (left, top), (left, bottom - height), (right - width, bottom - height),
              (right - width, middle_y), (left, middle_y), (middle_x, bottom - height), (middle_x, top),
              (middle_x, middle_y)]
    # The lines between their points too, not only the points (a legend must not sit on a line).
    dense = [(x0 + (x1 - x0) * t / 4, y0 + (y1 - y0) * t / 4)
             for (x0, y0), (x1, y1) in zip(data, data[1:]) for t in range(4)] + data

    def covered(place):
        x, y = place
        return sum(1 for px, py in dense if x <= px <= x + width and y <= py <= y + height)

    x, y = min(places, key=covered)
    for index, (label, colour, width_pt, style) in enumerate(entries):
        middle = y + pad + row * (index + 0.5)
        segment = [(x + pad, middle), (x + pad + handle, middle)]
        if style == "dashed":
            canvas.dashed(segment, colour, width_pt)
        else:
            canvas.line(segment, colour, width_pt)
            canvas.dot(x + pad + handle / 2, middle, 3 + 1, colour)
        canvas.text(x + pad + handle + gap, middle, label, INK, 10, "lm")


# ----------------------------------------------------------------------------- the six groups

@dataclass(frozen=True)
class GroupsLayout:
    """Where the groups chart puts things, in the PNG's pixels."""
    left: float
    right: float
    top: float
    bottom: float
    rows: int
    height: int

    def x(self, percent: float) -> float:
        return self.left + (self.right - self.left) * percent / 112

    def y(self, index: int) -> float:
        """Middle of the index-th bar from the top."""
        pitch = (self.bottom - self.top) / self.rows
        return self.top + pitch * (index + 0.5)

    @property
    def bar_height(self) -> float:
        return 0.6 * (self.bottom - self.top) / self.rows


def groups_layout(labels: list[str], has_target: bool) -> GroupsLayout:
    height = round((0.4 * len(labels) + 0.7) * DPI * 0.9)
    widest = max((_font(10).getlength(label) / SUPERSAMPLE for label in labels), default=0)
    return GroupsLayout(left=widest + 3.5 * POINT + 16, right=WIDTH_PX - 8, top=34 if has_target else 10,
                        bottom=height - 32, rows=max(len(labels), 1), height=height)


def groups_against_targets(groups: list[tuple[str, float, float | None]], target_label: str) -> bytes:
    """Horizontal bars: each group's score as % of its maximum; a red mark where a target applies.

    ``groups``: (label, percent of max, target percent or None), drawn top to bottom.
    """
    has_target = any(target is not None for _, _, target in groups)
    layout = groups_layout([label for label, _, _ in groups], has_target)
    canvas = _Canvas(WIDTH_PX, layout.height, scale=1)  # bars and text only: nothing to smooth
    tick_length = 3.5 * POINT
    for tick in (0, 25, 50, 75, 100):
        x = layout.x(tick)
        canvas.line([(x, layout.top), (x, layout.bottom)], GRID, 0.8)
        canvas.line([(x, layout.bottom), (x, layout.bottom + tick_length)], INK, 0.8)
        canvas.text(x, layout.bottom + tick_length + 3, str(tick), INK, 10, "mt")
    half = layout.bar_height / 2
    for index, (_label, percent, _target) in enumerate(groups):
        y = layout.y(index)
        canvas.rectangle(layout.x(0), y - half, layout.x(max(0.0, min(percent, 112))), y + half, ACCENT)
    canvas.line([(layout.left, layout.top), (layout.left, layout.bottom)], MUTED, 0.8)  # spines above the bars
    canvas.line([(layout.left, layout.bottom), (layout.right, layout.bottom)], MUTED, 0.8)
    for index, (label, percent, target) in enumerate(groups):
        y = layout.y(index)
        canvas.line([(layout.left - tick_length, y), (layout.left, y)], INK, 0.8)
        canvas.text(layout.left - tick_length - 4, y, label, INK, 10, "rm")
        canvas.text(layout.x(min(percent, 100) + 1), y, decimal_comma(percent, 1) + "%", INK, 10, "lm")
        if target is not None:
            mark = 0.38 * (layout.bottom - layout.top) / layout.rows
            canvas.line([(layout.x(target), y - mark), (layout.x(target), y + mark)], TARGET, 2.5)
    if has_target:  # above the bars' top right corner, as matplotlib's loc="lower right" at (1, 1)
        label_width = canvas.text_width(target_label)
        middle = layout.top - 14
        end = layout.right - label_width - 8
        canvas.line([(end - 28, middle), (end - 4, middle)], TARGET, 2.5)
        canvas.text(end + 2, middle, target_label, INK, 10, "lm")
    return canvas.png()


# ----------------------------------------------------------------------------- campaign reports (matplotlib)

def _pyplot():
    """matplotlib's pyplot on the Agg backend, imported when a campaign chart is drawn (not every night)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.08,
                   metadata={"Software": None})
    _pyplot().close(figure)
    return buffer.getvalue()


def _style(axes) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.spines["left"].set_color(MUTED)
    axes.spines["bottom"].set_color(MUTED)
    axes.tick_params(colors=INK, labelsize=10)
    axes.grid(axis="y", color=GRID, linewidth=0.8)
    axes.set_axisbelow(True)


def percent_axis_limit(rows: list[tuple[str, float | None, float, float | None]]) -> float:
    """The right end of a campaign chart's percent axis: room for the largest value, target or baseline
    and its label, at most 105. Payment targets of 5% get an axis of a few percent, not of 100."""
    largest = max([v for _, value, target, baseline in rows for v in (value, target, baseline) if v is not None]
                  or [1.0])
    return min(105.0, max(1.0, largest * 1.18))


def axis_label(value: float, _position=None) -> str:
    """An axis tick in the text's notation: 2,5 and 60, never 2.5 or 60.0."""
    return decimal_comma(value, 0 if abs(value - round(value)) < 1e-9 else (1 if abs(value * 10 - round(value * 10)) < 1e-6 else 2))


def units_against_targets(rows: list[tuple[str, float | None, float, float | None]], target_label: str,
                          baseline_label: str, now_label: str) -> bytes:
    """One indicator across units (campaign reports): value now as bars, baseline and target as marks.

    ``rows``: (unit label, value now, target, baseline or None), units of one kind (one target scale).
    """
    from matplotlib.ticker import FuncFormatter

    figure, axes = _pyplot().subplots(figsize=(WIDTH_IN, 0.28 * len(rows) + 0.8))
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
    limit = percent_axis_limit(rows)
    for index, (_, value, target, baseline) in enumerate(rows):
        axes.text((value or 0) + limit / 100, index, "—" if value is None else decimal_comma(value, 1),
                  va="center", fontsize=10, color=INK)
    axes.set_xlim(0, limit)
    axes.xaxis.set_major_formatter(FuncFormatter(axis_label))
    axes.legend(fontsize=10, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3)
    return _png(figure)
