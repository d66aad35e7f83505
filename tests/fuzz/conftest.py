"""Fuzz tests (Hypothesis): how many cases each property ran is printed at the end of the run."""

from __future__ import annotations

from tests.fuzz._support import CASES, SUCCEEDED


def pytest_terminal_summary(terminalreporter):
    if not CASES:
        return
    terminalreporter.section("fuzz cases: reader calls per property (of which succeeded)")
    for name, count in sorted(CASES.items()):
        terminalreporter.write_line(f"{count:6d} ({SUCCEEDED[name]:5d})  {name}")
    terminalreporter.write_line(f"{sum(CASES.values()):6d} ({sum(SUCCEEDED.values()):5d})  in all")
