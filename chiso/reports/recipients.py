"""Who receives reports, in which language, and which units each sees: a YAML file
(CHISO_RECIPIENTS_FILE, default config/recipients.yml), validated on load.

    recipients:
      - email: vanphong@daklak.example.vn
        name: Văn phòng UBND tỉnh Đắk Lắk
        scope: {province: 000.00.00.H15}      # every unit of the province
      - email: vanphong@cukuin.example.vn
        name: Văn phòng HĐND và UBND huyện Cư Kuin
        scope: {district: 000.00.27.H15}      # a (former) district and its communes
      - email: chutich@eaktur.example.vn
        name: Chủ tịch UBND xã Ea Ktur
        scope: {commune: 000.37.27.H15}       # one commune, ranked among its peers
        language: vi                          # vi (default) or en
        reports: [daily, campaign]            # default: both
      - email: data@chiso.example.vn
        name: Nhóm kỹ thuật dữ liệu
        scope: team                           # every unit, plus the run's technical facts

``scope: all`` (every unit) and ``scope: <unit code>`` (one commune) are accepted as short forms.

The plans name who must receive or compile their reports (Công an huyện, Phòng Văn hóa và Thông tin, Sở
Nội vụ …): those roles are data, the seed ``targets/plan_recipients.csv`` (:func:`load_plan_roles`), and an
entry serves a role by naming it (``roles: [001-CONG-AN-HUYEN]``). Loading refuses an unknown role, a
scope other than the role's and a report kind the role needs but the entry does not get;
:func:`missing_roles` (``python -m chiso.reports.recipients check``) lists the roles no entry serves.
An entry serving a plan whose units are not in this warehouse (another world's plan) is left out of the
send rather than refused (:func:`check_scopes`).

The file is checked on load (syntax, addresses, duplicates, languages, report kinds); the unit codes
are checked against the warehouse's ``marts.dim_units`` before anything is sent
(:func:`check_scopes`), so a typo stops the send with the recipient's number rather than mailing an
empty report.

A simulated world's recipients (every province, every commune and the data team, as of a day) are
generated on demand rather than kept in the repository (the national world has 3,355 of them):

    python -m chiso.reports.recipients national --scenario national --as-of 2025-11-12 > national.yml

Their addresses are placeholders under ``national.example.vn`` (:data:`WORLD_MAIL_DOMAIN`), one per
unit code (``000.001.H01.X`` → ``000-001-h01-x@national.example.vn``).
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from chiso.core import settings

log = logging.getLogger(__name__)
PLAN_ROLES_FILE = settings.REPO_ROOT / "dbt_project" / "seeds" / "targets" / "plan_recipients.csv"
_ROLE_ID = re.compile(r"^[0-9A-Z][0-9A-Z_.-]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UNIT_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")
LANGUAGES = ("vi", "en")
REPORT_KINDS = ("daily", "campaign")
SCOPE_KINDS = ("all", "team", "province", "district", "commune")
# libyaml's safe loader when PyYAML has it: a national file (3,356 recipients) loads in 0.1 s, not 1 s.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The unit kind a scope's code must name.
_SCOPE_UNIT_KIND = {"province": "PROVINCE", "district": "DISTRICT", "commune": "COMMUNE"}


class RecipientsError(ValueError):
    pass


@dataclass(frozen=True)
class Unit:
    """A unit as the reports need it (a row of marts.dim_units)."""
    code: str
    name: str
    kind: str
    parent: str | None = None
    is_evaluated: bool = True


@dataclass(frozen=True)
class Scope:
    kind: str               # all, team, province, district or commune
    unit_code: str | None = None

    def describe(self) -> str:
        return self.kind if self.unit_code is None else f"{self.kind} {self.unit_code}"


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    scope: Scope = field(default_factory=lambda: Scope("all"))
    language: str = "vi"
    reports: tuple[str, ...] = REPORT_KINDS
    roles: tuple[str, ...] = ()     # the plans' roles it serves (plan_recipients.csv role_id)

    @property
    def is_team(self) -> bool:
        return self.scope.kind == "team"

    def wants(self, report_kind: str) -> bool:
        return report_kind in self.reports

    def units(self, catalogue: Mapping[str, Unit]) -> set[str]:
        """The codes of the units this recipient sees."""
        kind, code = self.scope.kind, self.scope.unit_code
        if kind in ("all", "team"):
            return set(catalogue)
        if kind == "commune":
            return {code}
        if kind == "district":
            return {code} | {u.code for u in catalogue.values() if u.parent == code}
        return {u.code for u in catalogue.values() if code in ancestors(u.code, catalogue) or u.code == code}

    def sees(self, unit_code: str, catalogue: Mapping[str, Unit] | None = None) -> bool:
        if self.scope.kind in ("all", "team"):
            return True
        if self.scope.kind == "commune":
            return unit_code == self.scope.unit_code
        if catalogue is None:
            raise ValueError(f"A {self.scope.kind} scope needs the unit catalogue")
        return unit_code in self.units(catalogue)

    def focus_unit(self, catalogue: Mapping[str, Unit]) -> str | None:
        """The unit whose score heads the report: the scope's unit, or the (first) province."""
        if self.scope.unit_code:
            return self.scope.unit_code
        provinces = sorted(u.code for u in catalogue.values() if u.kind == "PROVINCE")
        return provinces[0] if provinces else None


def ancestors(unit_code: str, catalogue: Mapping[str, Unit]) -> list[str]:
    chain, seen = [], {unit_code}
    parent = catalogue[unit_code].parent if unit_code in catalogue else None
    while parent and parent not in seen:
        chain.append(parent)
        seen.add(parent)
        parent = catalogue[parent].parent if parent in catalogue else None
    return chain


def _parse_scope(value, where: str) -> Scope:
    if value is None or value == "all":
        return Scope("all")
    if value == "team":
        return Scope("team")
    if isinstance(value, str):
        if not _UNIT_CODE.match(value):
            raise RecipientsError(f"{where}: scope {value!r} is not 'all', 'team', a unit code or "
                                  f"a mapping like {{commune: <unit code>}}")
        return Scope("commune", value)  # the short form: one commune's view
    if isinstance(value, dict) and len(value) == 1:
        (kind, code), = value.items()
        if kind not in _SCOPE_UNIT_KIND:
            raise RecipientsError(f"{where}: scope kind {kind!r} is not one of "
                                  f"{', '.join(_SCOPE_UNIT_KIND)} (or 'all', 'team')")
        if not isinstance(code, str) or not _UNIT_CODE.match(code):
            raise RecipientsError(f"{where}: scope {kind}: {code!r} is not a unit code")
        return Scope(kind, code)
    raise RecipientsError(f"{where}: scope must be 'all', 'team', a unit code or one of "
                          f"{{province|district|commune: <unit code>}}, got {value!r}")


@dataclass(frozen=True)
class PlanRole:
    """A recipient a plan names (a row of the seed targets/plan_recipients.csv)."""
    role_id: str
    plan_id: str
    role_vi: str
    duty: str               # compiles, reports or reported_to
    scope: Scope
    reports: tuple[str, ...]
    source_vi: str


def load_plan_roles(path: Path | None = None) -> dict[str, PlanRole]:
    """The roles the plans name, by role_id; RecipientsError on a malformed row (file and line)."""
    path = Path(path or PLAN_ROLES_FILE)
    roles = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            where = f"{path.name}:{line}"
            role_id = (row.get("role_id") or "").strip()
            if not _ROLE_ID.match(role_id) or role_id in roles:
                raise RecipientsError(f"{where}: role_id {role_id!r} is malformed or used twice")
            kind, _, code = (row.get("scope") or "").partition(":")
            scope = _parse_scope({kind: code}, where)
            reports = tuple((row.get("reports") or "").split())
            if not reports or any(r not in REPORT_KINDS for r in reports):
                raise RecipientsError(f"{where}: reports {row.get('reports')!r}: use {' and/or '.join(REPORT_KINDS)}")
            if not (row.get("source_vi") or "").strip() or not (row.get("plan_id") or "").strip():
                raise RecipientsError(f"{where}: a role needs its plan_id and the plan's sentence (source_vi)")
            roles[role_id] = PlanRole(role_id, row["plan_id"], unicodedata.normalize("NFC", row.get("role_vi", "")),
                                      row.get("duty", ""), scope, reports, row["source_vi"])
    return roles


def _check_roles(entry_roles, scope: Scope, reports: list[str], plan_roles: dict[str, PlanRole] | None,
                 where: str) -> tuple[str, ...]:
    if entry_roles is None:
        return ()
    if isinstance(entry_roles, str):
        entry_roles = [entry_roles]
    if not isinstance(entry_roles, list) or not all(isinstance(r, str) and _ROLE_ID.match(r) for r in entry_roles):
        raise RecipientsError(f"{where}: roles must be a list of role ids of plan_recipients.csv, got {entry_roles!r}")
    if plan_roles is None:
        return tuple(entry_roles)
    for role_id in entry_roles:
        role = plan_roles.get(role_id)
        if role is None:
            raise RecipientsError(f"{where}: role {role_id} is not a role of plan_recipients.csv")
        if role.scope != scope:
            raise RecipientsError(f"{where}: role {role_id} ({role.role_vi}) sees {role.scope.describe()}, "
                                  f"but the entry's scope is {scope.describe()}")
        lacking = [kind for kind in role.reports if kind not in reports]
        if lacking:
            raise RecipientsError(f"{where}: role {role_id} ({role.role_vi}) needs the {', '.join(lacking)} "
                                  f"report(s), which the entry does not get")
    return tuple(dict.fromkeys(entry_roles))


def missing_roles(recipients: list[Recipient], plan_roles: dict[str, PlanRole]) -> list[PlanRole]:
    """The roles the plans name that no recipient serves."""
    served = {role for recipient in recipients for role in recipient.roles}
    return [role for role_id, role in plan_roles.items() if role_id not in served]


def load_recipients(path: Path | None = None, plan_roles: dict[str, PlanRole] | None = None) -> list[Recipient]:
    """The recipients file, validated; entries' roles are checked against ``plan_roles`` (default: the
    seed targets/plan_recipients.csv, when it is there)."""
    path = Path(path or settings.require("CHISO_RECIPIENTS_FILE"))
    if plan_roles is None and PLAN_ROLES_FILE.exists():
        plan_roles = load_plan_roles()
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise RecipientsError(f"Cannot read recipients file {path}: {exc}") from exc
    entries = (document or {}).get("recipients") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise RecipientsError(f"{path}: expected a non-empty list under 'recipients'")
    recipients, seen = [], set()
    for index, entry in enumerate(entries, start=1):
        where = f"{path}: recipient #{index}"
        if not isinstance(entry, dict):
            raise RecipientsError(f"{where}: expected a mapping with email, name, scope, language, reports")
        unknown = set(entry) - {"email", "name", "scope", "language", "reports", "roles"}
        if unknown:
            raise RecipientsError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        email = str(entry.get("email", "")).strip().lower()
        if not _EMAIL.match(email):
            raise RecipientsError(f"{where}: email {entry.get('email')!r} is not an e-mail address")
        if email in seen:
            raise RecipientsError(f"{where}: {email} is listed twice")
        seen.add(email)
        name = unicodedata.normalize("NFC", str(entry.get("name") or email))
        scope = _parse_scope(entry.get("scope", "all"), where)
        language = str(entry.get("language") or "vi").strip().lower()
        if language not in LANGUAGES:
            raise RecipientsError(f"{where}: language {language!r} is not one of {', '.join(LANGUAGES)}")
        reports = entry.get("reports", list(REPORT_KINDS))
        if isinstance(reports, str):
            reports = [reports]
        if not isinstance(reports, list) or not reports or any(r not in REPORT_KINDS for r in reports):
            raise RecipientsError(f"{where}: reports must be a non-empty list of {', '.join(REPORT_KINDS)}, "
                                  f"got {entry.get('reports')!r}")
        roles = _check_roles(entry.get("roles"), scope, reports, plan_roles, where)
        recipients.append(Recipient(email, name, scope, language, tuple(dict.fromkeys(reports)), roles))
    return recipients


def check_scopes(recipients: list[Recipient], catalogue: Mapping[str, Unit]) -> list[Recipient]:
    """Every scope names a unit of the warehouse, of the kind the scope says; raises RecipientsError.

    Returns the recipients to serve from this warehouse: an entry that serves a plan's roles (its scope
    already checked against the role's on load) but whose unit is not here belongs to a plan of another
    warehouse (the shipped file serves every plan's roles; one warehouse holds one world) and is left
    out, with a log line, rather than refused."""
    problems, served = [], []
    for index, recipient in enumerate(recipients, start=1):
        code, kind = recipient.scope.unit_code, recipient.scope.kind
        if code is None:
            served.append(recipient)
            continue
        unit = catalogue.get(code)
        if unit is None and recipient.roles:
            log.info("%s (%s) serves %s, whose unit %s is not in this warehouse: not sent", recipient.email,
                     recipient.name, ", ".join(recipient.roles), code)
        elif unit is None:
            problems.append(f"recipient #{index} ({recipient.email}): scope {kind} {code} is not a unit of "
                            f"marts.dim_units")
        elif unit.kind != _SCOPE_UNIT_KIND[kind]:
            problems.append(f"recipient #{index} ({recipient.email}): {code} ({unit.name}) is a "
                            f"{unit.kind}, not a {_SCOPE_UNIT_KIND[kind]}")
        else:
            served.append(recipient)
    if problems:
        raise RecipientsError("; ".join(problems))
    return served


# ----------------------------------------------------------------------------- a simulated world's recipients

# Placeholder addresses of generated recipients: a documented example domain, never a real inbox.
WORLD_MAIL_DOMAIN = "national.example.vn"
TEAM_NAME = "Nhóm kỹ thuật dữ liệu"


def mailbox_for(unit_code: str) -> str:
    """An e-mail-safe local part for a unit code: lower case, anything but letters and digits a dash."""
    local = re.sub(r"[^0-9a-z]+", "-", unit_code.lower()).strip("-")
    if not local:
        raise ValueError(f"Unit code {unit_code!r} has no letter or digit to make an address of")
    return local


def world_recipients(world, as_of: date, domain: str = WORLD_MAIL_DOMAIN) -> list[dict]:
    """The recipients file's entries for a simulated world as of a day: one per province (scope
    province), one per commune (scope commune), then the data team (scope team, nightly e-mail only).
    Names are the world's unit names ("UBND tỉnh …", "UBND xã …", "UBND phường …"), in NFC."""
    active = [unit for unit in world.units if unit.active_on(as_of)]
    entries = []
    for scope_kind, unit_kind in (("province", "PROVINCE"), ("commune", "COMMUNE")):
        for unit in (u for u in active if u.kind == unit_kind):  # the world's order: province by province
            entries.append({"email": f"{mailbox_for(unit.code)}@{domain}",
                            "name": unicodedata.normalize("NFC", unit.name),
                            "scope": {scope_kind: unit.code}})
    entries.append({"email": f"data@{domain}", "name": TEAM_NAME, "scope": "team", "reports": ["daily"]})
    return entries


def dump_recipients(entries: list[dict], comment: str = "") -> str:
    """A recipients file's text for ``entries`` (one flow mapping a line keeps 3,000 entries readable)."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()] + ["recipients:"]
    for entry in entries:
        lines.append("  - " + yaml.safe_dump(entry, allow_unicode=True, sort_keys=False,
                                             default_flow_style=True, width=10_000).strip())
    return "\n".join(lines) + "\n"


def write_world_recipients(path: Path, world, as_of: date, domain: str = WORLD_MAIL_DOMAIN) -> Path:
    """Write :func:`world_recipients` to ``path`` (the national benchmark's recipients file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_recipients(world_recipients(world, as_of, domain), _header(world.name, as_of, domain)),
                    encoding="utf-8")
    return path


def _header(scenario: str, as_of: date, domain: str) -> str:
    return (f"Generated by `python -m chiso.reports.recipients national --scenario {scenario} --as-of {as_of}`:\n"
            f"every province, every commune and the data team of the simulated world {scenario} as of {as_of}.\n"
            f"Addresses under {domain} are placeholders (an example domain, not real mailboxes).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chiso.reports.recipients",
                                     description="Generate the recipients file of a simulated world.")
    commands = parser.add_subparsers(dest="command", required=True)
    national = commands.add_parser("national", help="every province, every commune and the data team of a "
                                                    "simulator scenario as of a day, as a recipients file")
    national.add_argument("--scenario", default="national", help="simulator scenario (default: national)")
    national.add_argument("--as-of", type=date.fromisoformat, required=True, help="the day (YYYY-MM-DD)")
    national.add_argument("--domain", default=WORLD_MAIL_DOMAIN, help=f"placeholder domain ({WORLD_MAIL_DOMAIN})")
    national.add_argument("--out", type=Path, help="write here instead of standard output")
    checker = commands.add_parser("check", help="validate a recipients file and list the plans' roles it does "
                                                "not serve (exit 1 if any)")
    checker.add_argument("--file", type=Path, default=settings.REPO_ROOT / "config" / "recipients.yml",
                         help="the recipients file (default: config/recipients.yml)")
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check_command(args.file)
    from chiso.simulator.scenarios import get_scenario

    world = get_scenario(args.scenario)
    if args.out:
        write_world_recipients(args.out, world, args.as_of, args.domain)
    else:
        sys.stdout.write(dump_recipients(world_recipients(world, args.as_of, args.domain),
                                         _header(world.name, args.as_of, args.domain)))
    return 0


def _check_command(path: Path) -> int:
    plan_roles = load_plan_roles()
    try:
        recipients = load_recipients(path, plan_roles)
    except RecipientsError as exc:
        print(exc, file=sys.stderr)
        return 1
    missing = missing_roles(recipients, plan_roles)
    for role in missing:
        print(f"{path}: no entry serves {role.role_id} ({role.role_vi}, {role.scope.describe()}, "
              f"{' '.join(role.reports)}): {role.source_vi}", file=sys.stderr)
    print(f"{len(recipients)} recipients serve {len(plan_roles) - len(missing)}/{len(plan_roles)} roles the plans name")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
