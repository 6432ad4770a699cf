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
