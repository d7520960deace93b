"""Fast tier: the `server-protocol` check: nothing statically visible, log signatures only."""

from __future__ import annotations

import snapfake as sf
from tritondoctor.checks import server_protocol as check

LINES = {
    24: "This API is restricted, expecting header 'triton-access-token'",
    32: "Path /tmp/env/bin/activate does not exist",
    38: "Request for unknown model: 'add_sub'",
}


def test_run_reports_nothing() -> None:
    assert sf.run(check, sf.base()) == [] and sf.run(check, sf.without_target()) == []


def test_every_row_has_a_signature_that_matches_its_line() -> None:
    for row, line in LINES.items():
        assert any(row in s.rows and s.pattern.search(line) for s in check.CHECK.signatures), row
