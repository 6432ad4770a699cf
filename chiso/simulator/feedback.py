"""Feedback items (PAKN): sent, received, answered within 15 working days (or not), published,
liked or disliked. A change feed: an item reappears on each day its state changes."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import numpy as np

from chiso.contract.model import PORTAL_DATETIME_FORMAT
from chiso.simulator.world import Unit, World

LIFETIME_DAYS = 40
_TITLES = ("Đề nghị giải quyết hồ sơ đúng hạn", "Phản ánh thái độ tiếp dân", "Hỏi về thủ tục đăng ký khai sinh",
           "Phản ánh lỗi nộp hồ sơ trực tuyến", "Kiến nghị về thu phí, lệ phí")


def _fmt(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime(PORTAL_DATETIME_FORMAT)


def _business_days_after(moment: datetime, count: int) -> datetime:
    day = np.busday_offset(np.datetime64(moment.date()), count, roll="forward").astype(date)
    return datetime.combine(day, moment.time())


def _items_sent(seed: int, unit: Unit, day: date) -> list[dict]:
    rng = random.Random(f"{seed}:{unit.code}:{day}:pakn")
    rate = unit.behaviour.feedback_per_day.at(day)
    count = sum(1 for _ in range(8) if rng.random() < rate / 8)
    items = []
    for number in range(1, count + 1):
        sent = datetime.combine(day, datetime.min.time()) + timedelta(minutes=rng.randint(360, 1320))
        received = sent + timedelta(hours=rng.randint(1, 20))
        deadline = _business_days_after(received, 15)
        on_time = rng.random() < unit.behaviour.feedback_on_time.at(day)
        answered = received + (deadline - received) * rng.uniform(0.1, 0.9) if on_time else \
            deadline + timedelta(days=rng.randint(1, 10))
        published = _business_days_after(answered, rng.choice((1, 1, 2, 3)))
        likes = rng.randint(0, 12)
        items.append({
            "MaPAKN": f"PAKN-{unit.code}-{day:%y%m%d}-{number:02d}",
            "MaDonVi": unit.code, "TieuDe": rng.choice(_TITLES), "PhanLoai": rng.randint(1, 5),
            "NguoiGui": f"{rng.choice(('Nguyễn', 'Trần', 'Lê', 'Phạm'))} {rng.choice(('Văn', 'Thị'))} "
                        f"{rng.choice(('Hùng', 'Lan', 'Minh', 'Hà', 'Sơn'))}",
            "SoDienThoaiNguoiGui": f"09{rng.randint(0, 99_999_999):08d}",
            "_events": {"sent": sent, "received": received, "answered": answered, "published": published},
            "HanXuLy": _fmt(deadline),
            "SoLuotThich": likes, "SoLuotKhongThich": likes + 3 if rng.random() < 0.05 else rng.randint(0, likes),
            "CoKhieuNaiTiep": int(rng.random() < 0.02),
        })
    return items


def _version_at_end_of(item: dict, day: date) -> dict:
    until = datetime.combine(day + timedelta(days=1), datetime.min.time())
    events = {name: moment for name, moment in item["_events"].items() if moment < until}
    status = 7 if "published" in events else 6 if "answered" in events else 2 if "received" in events else 1
    published = "published" in events
    return {
        **{k: v for k, v in item.items() if k != "_events"},
        "NgayGui": _fmt(events["sent"]), "NgayTiepNhan": _fmt(events.get("received")),
        "NgayTuChoi": None, "NgayYeuCauBoSung": None,
        "NgayXuLy": _fmt(events.get("answered")), "NgayCongKhai": _fmt(events.get("published")),
        "NgayCapNhat": _fmt(max(events.values())), "TrangThaiPAKN": status,
        "SoLuotThich": item["SoLuotThich"] if published else None,
        "SoLuotKhongThich": item["SoLuotKhongThich"] if published else None,
        "CoKhieuNaiTiep": item["CoKhieuNaiTiep"] if published else None,
    }


def feedback_rows(seed: int, world: World, day: date) -> Iterator[dict]:
    for unit in world.units:
        if unit.daily_dossiers <= 0:
            continue
        for back in range(LIFETIME_DAYS, -1, -1):
            sent_day = day - timedelta(days=back)
            if not unit.active_on(sent_day):
                continue
            for item in _items_sent(seed, unit, sent_day):
                if any(moment.date() == day for moment in item["_events"].values()):
                    yield _version_at_end_of(item, day)
