"""Recipients come from configuration, and a bad file is refused with a message naming the entry."""

from __future__ import annotations

import pytest

from chiso.reports.recipients import RecipientsError, load_recipients
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
    assert province.sees("U2") and province.scope == "all"


@pytest.mark.parametrize("text, message", [
    ("recipients: []\n", "non-empty list"),
    ("recipients:\n  - {email: not-an-address}\n", "recipient #1: email 'not-an-address'"),
    ("recipients:\n  - {email: a@x.vn}\n  - {email: A@x.vn}\n", "recipient #2: a@x.vn is listed twice"),
    ("recipients:\n  - {email: a@x.vn, phone: '090'}\n", "unknown field(s) phone"),
    ("recipients: [\n", "Cannot read recipients file"),
])
def test_bad_files_are_refused_with_a_clear_message(tmp_path, text, message):
    with pytest.raises(RecipientsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_recipients(_write(tmp_path, text))
