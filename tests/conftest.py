"""Suite-wide rules: in CI (MINICTR_REQUIRE_ALL=1) a skipped test is a failed test, because every
kernel feature the suite needs exists on the machines CI runs on."""

import os

import pytest

REQUIRE_ALL = os.environ.get("MINICTR_REQUIRE_ALL") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped where everything must run (MINICTR_REQUIRE_ALL=1): {report.longrepr}"
