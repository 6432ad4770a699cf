"""Entities of the extract and the fields of each, as the portal names them.

Dates are ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh (domain README §3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PORTAL_DATETIME_FORMAT = "%Y%m%d%H%M%S"
PORTAL_TIMEZONE = "Asia/Ho_Chi_Minh"

# TrangThaiHoSo, domain README §3.
DOSSIER_STATUSES = {
    1: "Đăng ký (chưa tiếp nhận)",
    2: "Đã tiếp nhận",
    3: "Không được tiếp nhận",
    4: "Đang xử lý",
    5: "Yêu cầu bổ sung",
    6: "Chờ thanh toán phí",
    7: "Công dân rút hồ sơ",
    8: "Dừng xử lý",
    9: "Đã xử lý xong",
    10: "Đã trả kết quả",
}

# KenhThucHien: 1 direct (or null), 2 online, 3 public postal service.
CHANNELS = {1: "Trực tiếp", 2: "Trực tuyến", 3: "Dịch vụ bưu chính công ích"}


@dataclass(frozen=True)
class Entity:
    name: str  # as used in URLs, landing paths and raw table names
    key: str  # field identifying one record (a record may reappear: the latest version wins)
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    datetime_fields: tuple[str, ...] = ()
    # Applicants' personal data: pseudonymised at load time, never stored in clear.
    personal_fields: tuple[str, ...] = ()
    code_lists: dict[str, frozenset[int | None]] = field(default_factory=dict)

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.optional

    @property
    def raw_table(self) -> str:
        return f"portal__{self.name}"


UNITS = Entity(
    name="units",
    key="MaDonVi",
    required=("MaDonVi", "TenDonVi", "LoaiDonVi"),
    optional=("MaDonViCha", "MaThongKe"),
)

DOSSIERS = Entity(
    name="dossiers",
    key="MaHoSo",
    required=(
        "MaHoSo",
        "MaTTHC",
        "TenTTHC",
        "MaLinhVuc",
        "TenLinhVuc",
        "MaDonViTiepNhan",
        "NgayTiepNhan",
        "NgayHenTra",
        "TrangThaiHoSo",
    ),
    optional=(
        "KenhThucHien",
        "NgayNopHoSo",
        "NgayKetThucXuLy",
        "NgayTra",
        "NgayTuChoi",
        "ChuHoSo",
        "SoGiayToChuHoSo",
        "SoDienThoai",
        "Email",
        "LoaiDoiTuong",
    ),
    datetime_fields=("NgayNopHoSo", "NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra", "NgayTuChoi"),
    personal_fields=("ChuHoSo", "SoGiayToChuHoSo", "SoDienThoai", "Email"),
    code_lists={
        "TrangThaiHoSo": frozenset(DOSSIER_STATUSES),
        "KenhThucHien": frozenset([None, *CHANNELS]),
        "LoaiDoiTuong": frozenset([None, 1, 2, 3, 4]),
    },
)

ENTITIES: dict[str, Entity] = {e.name: e for e in (UNITS, DOSSIERS)}


def get_entity(name: str) -> Entity:
    try:
        return ENTITIES[name]
    except KeyError:
        raise ValueError(f"Unknown extract entity {name!r}; known: {', '.join(ENTITIES)}") from None
