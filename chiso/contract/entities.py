"""The entities of the portal's extracts, field by field, in the portal's own vocabulary.

Sources: ../shared/domain/README.md §3-§5 (field names as the provincial one-stop systems sync them
to the national portal). Where the brief names no field, the name follows the portal's style and is
marked "[chiso]" in its description.
"""

from __future__ import annotations

from chiso.contract.model import (  # noqa: F401 (re-exported for callers of v1)
    CONTRACT_VERSION,
    PORTAL_DATETIME_FORMAT,
    PORTAL_TIMEZONE,
    Entity,
    Field,
)

# ----------------------------------------------------------------------------- code lists

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
CHANNELS = {1: "Trực tiếp", 2: "Trực tuyến", 3: "Dịch vụ bưu chính công ích"}
APPLICANT_KINDS = {1: "Công dân", 2: "Doanh nghiệp", 3: "Cơ quan nhà nước", 4: "Khác"}
ONLINE_PAYMENT = {0: "Không thanh toán trực tuyến", 1: "Thanh toán trên Cổng DVCQG",
                  2: "Thanh toán qua cổng thanh toán của tỉnh"}
PAKN_STATUSES = {1: "Mới gửi", 2: "Đã tiếp nhận", 3: "Từ chối tiếp nhận", 4: "Yêu cầu bổ sung",
                 5: "Đang xử lý", 6: "Đã trả lời", 7: "Đã công khai"}
PAKN_KINDS = {1: "Cơ chế, chính sách", 2: "Thủ tục hành chính", 3: "Hành vi, thái độ cán bộ",
              4: "Hạ tầng, dịch vụ công trực tuyến", 5: "Khác"}
SATISFACTION = {1: "RẤT HÀI LÒNG", 2: "HÀI LÒNG", 3: "KHÔNG HÀI LÒNG"}
ONLINE_LEVELS = {"TOAN_TRINH": "Dịch vụ công trực tuyến toàn trình",
                 "MOT_PHAN": "Dịch vụ công trực tuyến một phần",
                 "KHONG": "Không cung cấp trực tuyến"}
PROCEDURE_LEVELS = {1: "Trung ương", 2: "Tỉnh", 3: "Huyện (đến 30/6/2025)", 4: "Xã"}
PUBLICATION_KINDS = {1: "Công bố mới", 2: "Sửa đổi, bổ sung", 3: "Bãi bỏ"}
UNIT_KINDS = {"PROVINCE": "UBND tỉnh", "AGENCY": "Sở, ban, ngành", "DISTRICT": "UBND huyện (đến 30/6/2025)",
              "COMMUNE": "UBND xã, phường, đặc khu"}


def _dt(name, label, description, required=False):
    return Field(name, "datetime", label, description, required=required)


# ----------------------------------------------------------------------------- dossiers

FEE = (
    Field("MaPhiLePhi", "string", "Mã phí, lệ phí", "Fee code.", required=True),
    Field("TenPhiLePhi", "string", "Tên phí, lệ phí", "Fee name."),
    Field("Gia", "integer", "Số tiền", "Amount in VND.", required=True),
)
DOCUMENT = (
    Field("MaGiayTo", "string", "Mã giấy tờ", "Code of the submitted document.", required=True),
    Field("TenGiayTo", "string", "Tên giấy tờ", "Name of the submitted document."),
    Field("DuocSoHoa", "flag", "Được số hóa", "The document was digitised.", required=True),
    Field("DuocTaiSuDung", "flag", "Được tái sử dụng", "Re-used from an earlier digitised dossier.", required=True),
    Field("DuocLayTuKhoDMQG", "flag", "Lấy từ kho dữ liệu cá nhân",
          "Taken from the citizen's personal data store on the national portal.", required=True),
)
RESULT = (
    Field("TenGiayTo", "string", "Tên giấy tờ kết quả", "Name of the result document.", required=True),
    Field("DuongDanTepTinKetQua", "string", "Đường dẫn tệp kết quả",
          "Link to the electronic result file; empty when the result is paper only."),
    Field("DayLenKhoDMQG", "flag", "Đẩy lên kho dữ liệu cá nhân",
          "[chiso] The result was pushed to the citizen's personal data store."),
)
SUPPLEMENT = (
    _dt("NgayBoSung", "Ngày yêu cầu bổ sung", "When the unit asked the applicant for more documents.", True),
    _dt("NgayTiepNhanBoSung", "Ngày tiếp nhận bổ sung", "When the supplement was received (null while awaited)."),
    _dt("NgayHenTraMoi", "Ngày hẹn trả mới", "The new due date after the supplement."),
)

DOSSIERS = Entity(
    name="dossiers",
    title_vi="Hồ sơ thủ tục hành chính",
    description="One dossier (HoSo) as synced to the national portal. A daily extract carries every "
                "dossier created or changed that day; the latest version of a dossier wins.",
    key=("MaHoSo",),
    province_field="MaDonViTiepNhan",
    field_list=(
        Field("MaHoSo", "string", "Mã hồ sơ", "Dossier id: receiving unit id, yyMMdd, daily counter.", required=True),
        Field("MaTTHC", "string", "Mã thủ tục", "Procedure code (e.g. 1.001193).", required=True),
        Field("TenTTHC", "string", "Tên thủ tục", "Procedure name."),
        Field("MaLinhVuc", "string", "Mã lĩnh vực", "Field (domain) code of the procedure."),
        Field("TenLinhVuc", "string", "Tên lĩnh vực", "Field name (Đất đai, Tư pháp - Hộ tịch…)."),
        Field("MaDonViTiepNhan", "string", "Mã đơn vị tiếp nhận", "Electronic id of the receiving unit.",
              required=True),
        Field("DonViXuLy", "string", "Đơn vị xử lý", "Electronic id of the unit that processes the dossier."),
        Field("KenhThucHien", "integer", "Kênh thực hiện", "Channel; null means direct.", codes=CHANNELS),
        _dt("NgayDangNhap", "Thời điểm đăng nhập",
            "[chiso] Online dossiers: when the applicant logged in to start the submission (seed 004)."),
        _dt("NgayNopHoSo", "Ngày nộp", "When the applicant submitted."),
        _dt("NgayTiepNhan", "Ngày tiếp nhận", "When the unit received the dossier.", required=True),
        _dt("NgayHenTra", "Ngày hẹn trả", "Due date promised to the applicant."),
        _dt("NgayKetThucXuLy", "Ngày kết thúc xử lý", "When processing finished."),
        _dt("NgayTra", "Ngày trả kết quả", "When the result was returned."),
        _dt("NgayTuChoi", "Ngày từ chối", "When the dossier was refused."),
        _dt("NgayCapNhat", "Ngày cập nhật", "[chiso] When this version of the dossier was recorded.", True),
        Field("TrangThaiHoSo", "integer", "Trạng thái hồ sơ", "Status 1-10.", required=True,
              codes=DOSSIER_STATUSES),
        Field("ChuHoSo", "string", "Chủ hồ sơ", "Applicant's name.", personal=True),
        Field("SoGiayToChuHoSo", "string", "Số giấy tờ chủ hồ sơ", "Applicant's 12-digit citizen ID (CCCD).",
              personal=True),
        Field("SoDienThoai", "string", "Số điện thoại", "Applicant's phone.", personal=True),
        Field("Email", "string", "Email", "Applicant's e-mail.", personal=True),
        Field("DiaChiChuHoSo", "string", "Địa chỉ", "[chiso] Applicant's address.", personal=True),
        Field("LoaiDoiTuong", "integer", "Loại đối tượng", "Kind of applicant.", codes=APPLICANT_KINDS),
        Field("DanhSachLePhi", "array", "Danh sách lệ phí", "Fees of the dossier.", items=FEE),
        Field("DuocThanhToanTrucTuyen", "integer", "Thanh toán trực tuyến",
              "How fees were paid online (0 or null: not online).", codes=ONLINE_PAYMENT),
        Field("TaiLieuNop", "array", "Tài liệu nộp", "Submitted documents.", items=DOCUMENT),
        Field("HoSoCoThanhPhanSoHoa", "flag", "Có thành phần số hóa", "The dossier has digitised components."),
        Field("TaiKhoanDuocXacThucVoiVNeID", "flag", "Xác thực VNeID",
              "The applicant's account is verified with VNeID (national population data)."),
        Field("DanhSachGiayToKetQua", "array", "Giấy tờ kết quả", "Result documents.", items=RESULT),
        Field("DanhSachHoSoBoSung", "array", "Hồ sơ bổ sung", "Supplement requests.", items=SUPPLEMENT),
        Field("DongBoDVCQG", "flag", "Đồng bộ Cổng DVCQG",
              "[chiso] The dossier was synced to the national portal (DOSSIER_SYNC)."),
    ),
    notes=("Nested lists (fees, documents, results, supplements) travel inside the dossier.",),
)

PROCESS_LOG = Entity(
    name="process_log",
    title_vi="Tiến trình xử lý hồ sơ",
    description="One row per processing step of a dossier (tienTrinh), sent on the day the step happened.",
    key=("MaHoSo", "STT"),
    province_field="DonViXuLy",
    field_list=(
        Field("MaHoSo", "string", "Mã hồ sơ", "The dossier.", required=True),
        Field("STT", "integer", "Số thứ tự", "Step number within the dossier, from 1.", required=True),
        Field("DonViXuLy", "string", "Đơn vị xử lý", "Electronic id of the unit of the step."),
        Field("NguoiXuLy", "string", "Người xử lý", "Official who handled the step (not the applicant)."),
        _dt("ThoiDiemXuLy", "Thời điểm xử lý", "When the step happened.", True),
        Field("TrangThai", "integer", "Trạng thái", "Dossier status after the step.", required=True,
              codes=DOSSIER_STATUSES),
        Field("NoiDungXuLy", "string", "Nội dung xử lý", "What was done."),
    ),
)

FEEDBACK = Entity(
    name="feedback",
    title_vi="Phản ánh, kiến nghị (PAKN)",
    description="Feedback items (PAKN) about a unit, sent again each time their state changes.",
    key=("MaPAKN",),
    province_field="MaDonVi",
    field_list=(
        Field("MaPAKN", "string", "Mã PAKN", "Feedback id.", required=True),
        Field("MaDonVi", "string", "Mã đơn vị", "Electronic id of the unit the feedback is about.", required=True),
        Field("TieuDe", "string", "Tiêu đề", "Title."),
        Field("PhanLoai", "integer", "Phân loại", "Kind of feedback.", codes=PAKN_KINDS),
        Field("NguoiGui", "string", "Người gửi", "Sender's name.", personal=True),
        Field("SoDienThoaiNguoiGui", "string", "Số điện thoại người gửi", "Sender's phone.", personal=True),
        _dt("NgayGui", "Ngày gửi", "When the citizen sent it.", True),
        _dt("NgayTiepNhan", "Ngày tiếp nhận", "When the unit received it."),
        _dt("NgayTuChoi", "Ngày từ chối", "When it was refused (due within 2 working days)."),
        _dt("NgayYeuCauBoSung", "Ngày yêu cầu bổ sung", "First supplement request (due within 5 working days)."),
        _dt("HanXuLy", "Hạn xử lý", "Handling deadline (15 working days)."),
        _dt("NgayXuLy", "Ngày xử lý xong", "When the answer was given."),
        _dt("NgayCongKhai", "Ngày công khai", "When the answer was published (due within 2 working days)."),
        _dt("NgayCapNhat", "Ngày cập nhật", "[chiso] When this version was recorded.", True),
        Field("TrangThaiPAKN", "integer", "Trạng thái", "Status of the feedback.", required=True,
              codes=PAKN_STATUSES),
        Field("SoLuotThich", "integer", "Lượt thích", "Likes of the published answer."),
        Field("SoLuotKhongThich", "integer", "Lượt không thích", "Dislikes of the published answer."),
        Field("CoKhieuNaiTiep", "flag", "Có khiếu nại tiếp", "The citizen complained again after the answer."),
    ),
)

RATINGS = Entity(
    name="ratings",
    title_vi="Đánh giá mức độ hài lòng",
    description="A citizen's satisfaction rating of one dossier, as the provincial systems record it.",
    key=("MaHoSo",),
    province_field="MaDonVi",
    field_list=(
        Field("MaHoSo", "string", "Mã hồ sơ", "The rated dossier.", required=True),
        Field("MaDonVi", "string", "Mã đơn vị", "Electronic id of the unit rated.", required=True),
        _dt("NgayDanhGia", "Ngày đánh giá", "When the rating was given.", True),
        Field("MucDoHaiLong", "integer", "Mức độ hài lòng", "Satisfaction.", required=True, codes=SATISFACTION),
        Field("KenhDanhGia", "integer", "Kênh đánh giá", "Channel of the rating.", codes=CHANNELS),
        Field("YKien", "string", "Ý kiến", "Free-text comment."),
    ),
)

PROCEDURES = Entity(
    name="procedures",
    title_vi="Danh mục thủ tục hành chính",
    description="The procedure catalogue as of the day: one row per procedure and version "
                "(online level, fee and eligibility change over time).",
    key=("MaTTHC", "HieuLucTu"),
    change_feed=False,
    field_list=(
        Field("MaTTHC", "string", "Mã thủ tục", "Procedure code.", required=True),
        Field("TenTTHC", "string", "Tên thủ tục", "Procedure name.", required=True),
        Field("MaLinhVuc", "string", "Mã lĩnh vực", "Field code."),
        Field("TenLinhVuc", "string", "Tên lĩnh vực", "Field name."),
        Field("CapThucHien", "integer", "Cấp thực hiện", "Level that performs the procedure.",
              codes=PROCEDURE_LEVELS),
        Field("MucDoDVC", "string", "Mức độ DVC trực tuyến", "Online service level.", required=True,
              codes=ONLINE_LEVELS),
        Field("LePhi", "integer", "Lệ phí", "Fee in VND (0: free)."),
        Field("CoKetQuaBangVanBan", "flag", "Trả kết quả bằng văn bản", "The procedure returns a written result."),
        Field("DoiTuongCaNhan", "flag", "Đối tượng cá nhân", "Applicants are individuals."),
        Field("DuDieuKienToanTrinh", "flag", "Đủ điều kiện toàn trình", "Eligible to be provided fully online."),
        Field("ThoiHanGiaiQuyet", "integer", "Thời hạn giải quyết (ngày làm việc)",
              "Statutory processing time in working days."),
        _dt("HieuLucTu", "Hiệu lực từ", "First moment this version applies.", True),
        _dt("HieuLucDen", "Hiệu lực đến", "Last moment this version applies (null: still in force)."),
    ),
)

PROCEDURE_PUBLICATIONS = Entity(
    name="procedure_publications",
    title_vi="Công bố, công khai thủ tục hành chính",
    description="Publication events from the national TTHC database: decision, legal basis, made public.",
    key=("MaTTHC", "SoQuyetDinh"),
    field_list=(
        Field("MaTTHC", "string", "Mã thủ tục", "Procedure code.", required=True),
        Field("MaCoQuanCongBo", "string", "Cơ quan công bố", "Electronic id of the publishing province/ministry.",
              required=True),
        Field("SoQuyetDinh", "string", "Số quyết định", "Number of the publication decision.", required=True),
        Field("LoaiCongBo", "integer", "Loại công bố", "Added, amended or abolished.", required=True,
              codes=PUBLICATION_KINDS),
        _dt("NgayQuyetDinh", "Ngày quyết định", "Date of the publication decision (QĐ công bố).", True),
        _dt("NgayHieuLucVanBan", "Ngày văn bản có hiệu lực", "When the legal basis takes effect.", True),
        _dt("NgayCongKhai", "Ngày công khai", "When the procedure was made public in the national database."),
        Field("DayDuBayBoPhan", "flag", "Đủ 7 bộ phận", "All 7 mandatory parts are published.", required=True),
    ),
)

UNITS = Entity(
    name="units",
    title_vi="Danh mục đơn vị",
    description="The unit catalogue as of the day, every version with its validity: provinces, "
                "departments, districts (until 30/6/2025) and communes, in three code schemes.",
    key=("MaDonVi", "HieuLucTu"),
    change_feed=False,
    field_list=(
        Field("MaDonVi", "string", "Mã định danh điện tử", "Electronic id (e.g. 000.00.00.H21); "
              "dossiers name their unit by it.", required=True),
        Field("MaDonViDVCQG", "string", "Mã đơn vị trên Cổng DVCQG", "The portal's code (e.g. H21.227)."),
        Field("MaThongKe", "string", "Mã thống kê", "Statistical code: province 2 digits, commune 5 digits."),
        Field("TenDonVi", "string", "Tên đơn vị", "Name.", required=True),
        Field("LoaiDonVi", "string", "Loại đơn vị", "Kind of unit.", required=True, codes=UNIT_KINDS),
        Field("MaDonViCha", "string", "Mã đơn vị cấp trên", "Electronic id of the parent unit."),
        _dt("HieuLucTu", "Hiệu lực từ", "First moment this version applies.", True),
        _dt("HieuLucDen", "Hiệu lực đến", "Last moment it applies (null: still in force)."),
    ),
)

UNIT_CROSSWALK = Entity(
    name="unit_crosswalk",
    title_vi="Bảng chuyển đổi đơn vị hành chính",
    description="Old unit → successor unit at a reorganisation (1/7/2025: districts abolished, communes "
                "merged).",
    key=("MaDonViCu", "MaDonViMoi"),
    change_feed=False,
    field_list=(
        Field("MaDonViCu", "string", "Mã đơn vị cũ", "Electronic id of the unit that ceased.", required=True),
        Field("MaDonViMoi", "string", "Mã đơn vị mới", "Electronic id of its successor.", required=True),
        _dt("NgayHieuLuc", "Ngày hiệu lực", "When the change took effect.", True),
        Field("CanCuPhapLy", "string", "Căn cứ pháp lý", "Legal basis of the change."),
    ),
)

ENTITIES: dict[str, Entity] = {e.name: e for e in (
    UNITS, UNIT_CROSSWALK, PROCEDURES, PROCEDURE_PUBLICATIONS, DOSSIERS, PROCESS_LOG, FEEDBACK, RATINGS)}


def get_entity(name: str) -> Entity:
    try:
        return ENTITIES[name]
    except KeyError:
        raise ValueError(f"Unknown extract entity {name!r}; known: {', '.join(ENTITIES)}") from None
