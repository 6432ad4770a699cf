"""Recipients come from configuration, and a bad file is refused with a message naming the entry."""

from __future__ import annotations

import re

import pytest

from chiso.reports.recipients import Recipient, RecipientsError, Scope, Unit, check_scopes, load_recipients
from chiso.core.settings import REPO_ROOT


def _write(tmp_path, text):
    path = tmp_path / "recipients.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_file_is_valid():
    recipients = load_recipients(REPO_ROOT / "config" / "recipients.yml")
    assert recipients and all("@" in r.email for r in recipients)


def test_scope_limits_the_units_a_recipient_sees(tmp_path):
    path = _write(tmp_path, "recipients:\n  - {email: a@x.vn, name: Xã A, scope: U1}\n  - {email: b@x.vn}\n")
    commune, province = load_recipients(path)
    assert commune.sees("U1") and not commune.sees("U2")
    assert province.sees("U2") and province.scope == Scope("all")
    assert province.language == "vi" and province.reports == ("daily", "campaign")


CATALOGUE = {u.code: u for u in [
    Unit("P", "UBND tỉnh", "PROVINCE"), Unit("D", "UBND huyện", "DISTRICT", "P"), Unit("D2", "UBND huyện 2", "DISTRICT", "P"),
    Unit("C1", "UBND xã 1", "COMMUNE", "D"), Unit("C2", "UBND xã 2", "COMMUNE", "D"), Unit("C3", "UBND xã 3", "COMMUNE", "D2"),
    Unit("S", "Sở", "AGENCY", "P")]}


def test_province_district_commune_and_team_scopes(tmp_path):
    path = _write(tmp_path, """recipients:
  - {email: p@x.vn, scope: {province: P}}
  - {email: d@x.vn, scope: {district: D}, language: en, reports: [campaign]}
  - {email: c@x.vn, scope: {commune: C1}}
  - {email: t@x.vn, scope: team, reports: daily}
""")
    province, district, commune, team = load_recipients(path)
    assert province.units(CATALOGUE) == set(CATALOGUE)
    assert district.units(CATALOGUE) == {"D", "C1", "C2"} and district.language == "en"
    assert district.wants("campaign") and not district.wants("daily")
    assert commune.units(CATALOGUE) == {"C1"} and commune.focus_unit(CATALOGUE) == "C1"
    assert team.is_team and team.units(CATALOGUE) == set(CATALOGUE) and team.reports == ("daily",)
    assert team.focus_unit(CATALOGUE) == "P"
    check_scopes([province, district, commune, team], CATALOGUE)


def test_scopes_are_checked_against_the_units(tmp_path):
    path = _write(tmp_path, "recipients:\n  - {email: a@x.vn, scope: {commune: D}}\n  - {email: b@x.vn, scope: {province: Q}}\n")
    with pytest.raises(RecipientsError, match=r"recipient #1 \(a@x.vn\): D \(UBND huyện\) is a DISTRICT, not a COMMUNE; "
                                              r"recipient #2 \(b@x.vn\): scope province Q is not a unit"):
        check_scopes(load_recipients(path), CATALOGUE)


@pytest.mark.parametrize("text, message", [
    ("recipients: []\n", "non-empty list"),
    ("recipients:\n  - {email: not-an-address}\n", "recipient #1: email 'not-an-address'"),
    ("recipients:\n  - {email: a@x.vn}\n  - {email: A@x.vn}\n", "recipient #2: a@x.vn is listed twice"),
    ("recipients:\n  - {email: a@x.vn, phone: '090'}\n", "unknown field(s) phone"),
    ("recipients: [\n", "Cannot read recipients file"),
    ("recipients:\n  - {email: a@x.vn, language: fr}\n", "recipient #1: language 'fr' is not one of vi, en"),
    ("recipients:\n  - {email: a@x.vn, scope: {ward: X}}\n", "scope kind 'ward' is not one of province"),
    ("recipients:\n  - {email: a@x.vn, scope: {commune: 'xã A'}}\n", "scope commune: 'xã A' is not a unit code"),
    ("recipients:\n  - {email: a@x.vn, reports: [weekly]}\n", "reports must be a non-empty list of daily, campaign"),
])
def test_bad_files_are_refused_with_a_clear_message(tmp_path, text, message):
    with pytest.raises(RecipientsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_recipients(_write(tmp_path, text))


def test_a_national_recipients_file_is_generated_for_the_world_as_of_a_day(tmp_path):
    import unicodedata
    from datetime import date

    from chiso.reports.recipients import main, write_world_recipients
    from chiso.simulator.scenarios import national

    world = national()
    for day, provinces, communes in ((date(2025, 11, 12), 34, 3321), (date(2025, 6, 30), 63, 10035)):
        path = write_world_recipients(tmp_path / f"{day}.yml", world, day)
        recipients = load_recipients(path)
        kinds = [r.scope.kind for r in recipients]
        assert (kinds.count("province"), kinds.count("commune"), kinds.count("team")) == (provinces, communes, 1)
        assert len({r.email for r in recipients}) == len(recipients)
        assert all(r.email.endswith("@national.example.vn") for r in recipients)
        # The scopes name units of the world as of that day, of the right kind (what check_scopes asks
        # of marts.dim_units before a send).
        catalogue = {u.code: Unit(u.code, u.name, u.kind, u.parent_code) for u in world.units if u.active_on(day)}
        check_scopes(recipients, catalogue)
        for r in recipients:
            assert r.name == unicodedata.normalize("NFC", r.name)
            if r.scope.kind != "team":
                assert r.name == catalogue[r.scope.unit_code].name
        assert recipients[0].name.startswith("UBND tỉnh ") and recipients[-1].scope.kind == "team"
    assert any(r.name.startswith("UBND xã ") for r in recipients)
    hanoi = next(r for r in recipients if r.scope.unit_code == "000.00.00.H01")
    assert (hanoi.email, hanoi.name) == ("000-00-00-h01@national.example.vn", "UBND tỉnh Hà Nội")
    # The command line writes the same file.
    assert main(["national", "--as-of", "2025-06-30", "--out", str(tmp_path / "cli.yml")]) == 0
    assert (tmp_path / "cli.yml").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- the plans' named recipients

def _plan_text(plan_id: str) -> str:
    """The plan's text (../shared/seeds), whitespace collapsed."""
    import re

    from chiso.transform.targets import SEEDS, read_csv

    seed_file = next(row["seed_file"] for _, row in read_csv(SEEDS / "targets" / "target_plans.csv")
                     if row["plan_id"] == plan_id)
    return re.sub(r"\s+", " ", (REPO_ROOT.parent / "shared" / "seeds" / seed_file).read_text(encoding="utf-8"))


def test_every_recipient_the_plans_name_has_an_entry():
    from chiso.reports.recipients import load_plan_roles, missing_roles

    roles = load_plan_roles()
    shipped = load_recipients(REPO_ROOT / "config" / "recipients.yml", roles)
    assert [role.role_id for role in missing_roles(shipped, roles)] == []
    # Every plan with a reporting duty names at least one recipient, and campaign plans a compiler.
    assert {role.plan_id for role in roles.values()} >= {"KH_EAKTUR_2025", "KH_IATOR_100NGAY_2024",
                                                        "KH_CUKUIN_60NGAY_2024", "KH_DAKLAK_PAR_SIPAS_2025",
                                                        "KH_DAKRVE_DVCTT_2025_2026"}
    by_email = {r.email: r for r in shipped}
    for role in roles.values():
        serving = [r for r in shipped if role.role_id in r.roles]
        for recipient in serving:
            assert recipient.scope == role.scope and set(role.reports) <= set(recipient.reports), role.role_id
    assert len(by_email) == len(shipped)
    # Placeholders only, under the documented example domain.
    assert all(r.email.endswith(".example.vn") for r in shipped)


def test_the_roles_quote_their_plans():
    """Each role's source is the plan's own words: every quoted fragment („…“, split at the elisions) is in
    the plan's text. Seed 002 is an OCR scan without diacritics, so its quotes are read, not matched."""
    import re

    from chiso.reports.recipients import load_plan_roles

    checked = 0
    for role in load_plan_roles().values():
        assert "„" in role.source_vi, role.role_id
        if role.plan_id == "KH_CUKUIN_60NGAY_2024":
            continue
        text = _plan_text(role.plan_id)
        for quote in re.findall(r"„(.*?)“", role.source_vi):
            for fragment in quote.split("…"):
                fragment = re.sub(r"\s+", " ", fragment).strip(" :;,.-")
                if len(fragment) >= 8:
                    assert fragment in text, (role.role_id, fragment)
                    checked += 1
    assert checked >= 10


def test_every_role_names_a_unit_of_its_kind_in_a_simulator_world():
    from chiso.reports.recipients import load_plan_roles
    from chiso.simulator.scenarios import SCENARIOS, get_scenario

    units = {u.code: u for name in SCENARIOS if name != "national" for u in get_scenario(name).units}
    for role in load_plan_roles().values():
        unit = units.get(role.scope.unit_code)
        assert unit is not None and unit.kind == role.scope.kind.upper(), (role.role_id, role.scope)


@pytest.mark.parametrize("entry, message", [
    ("{email: a@x.vn, scope: {district: 000.00.17.H21}, roles: [001-CONG-AN-TINH]}", "role 001-CONG-AN-TINH is not a role"),
    ("{email: a@x.vn, scope: {district: 000.00.27.H15}, roles: [001-CONG-AN-HUYEN]}",
     "role 001-CONG-AN-HUYEN (Công an huyện Chư Prông) sees district 000.00.17.H21, but the entry's scope is "
     "district 000.00.27.H15"),
    ("{email: a@x.vn, scope: {district: 000.00.27.H15}, reports: [daily], roles: [002-PHONG-VHTT]}",
     "role 002-PHONG-VHTT (Phòng Văn hóa và Thông tin huyện Cư Kuin) needs the campaign report(s)"),
    ("{email: a@x.vn, roles: 'not a role'}", "roles must be a list of role ids"),
])
def test_an_entry_serving_a_role_is_checked_against_it(tmp_path, entry, message):
    with pytest.raises(RecipientsError, match=re.escape(f"recipient #1: {message}" if "roles must" not in message
                                                        else message)):
        load_recipients(_write(tmp_path, f"recipients:\n  - {entry}\n"))


def test_the_check_command_names_a_role_without_an_entry(tmp_path, capsys):
    from chiso.reports.recipients import main

    shipped = (REPO_ROOT / "config" / "recipients.yml").read_text(encoding="utf-8")
    assert main(["check", "--file", str(REPO_ROOT / "config" / "recipients.yml")]) == 0
    without = re.sub(r"  - email: congan@chuprong\.example\.vn\n(    .*\n)+", "", shipped)
    assert without != shipped
    assert main(["check", "--file", str(_write(tmp_path, without))]) == 1
    err = capsys.readouterr().err
    assert "no entry serves 001-CONG-AN-HUYEN (Công an huyện Chư Prông" in err and "(qua Công an huyện)" in err


def test_a_role_entry_of_another_world_is_left_out_not_refused(tmp_path):
    path = _write(tmp_path, """recipients:
  - {email: p@x.vn, scope: {province: P}}
  - {email: congan@chuprong.example.vn, scope: {district: 000.00.17.H21}, reports: [campaign], roles: [001-CONG-AN-HUYEN]}
""")
    province, police = load_recipients(path)
    assert check_scopes([province, police], CATALOGUE) == [province]
    # Without a role, the same unknown unit is a typo: refused.
    with pytest.raises(RecipientsError, match=r"recipient #1 \(x@x.vn\): scope district 000.00.17.H21 is not a unit"):
        check_scopes([Recipient("x@x.vn", "X", Scope("district", "000.00.17.H21"))], CATALOGUE)
