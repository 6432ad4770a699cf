"""Recipients come from configuration, and a bad file is refused with a message naming the entry."""

from __future__ import annotations

import pytest

from chiso.reports.recipients import RecipientsError, Scope, Unit, check_scopes, load_recipients
from chiso.settings import REPO_ROOT


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
