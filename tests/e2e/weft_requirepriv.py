# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""pytest plugin: under WEFT_REQUIRE_PRIV=1 (CI) a skipped test is a failed
test, whatever skipped it (a tool `make deps` should have installed, a
missing privilege, a test's own pytest.skip): CI must never pass by not
testing. Elsewhere a skip stays a skip, with its reason."""

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if os.environ.get("WEFT_REQUIRE_PRIV") != "1" or not rep.skipped:
        return
    if hasattr(rep, "wasxfail"):
        return  # an expected failure is not a skip
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    rep.outcome = "failed"
    rep.longrepr = "skipped under WEFT_REQUIRE_PRIV=1 (CI fails instead): %s" % reason
