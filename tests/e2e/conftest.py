# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""pytest wiring for weft's end-to-end tests (the machinery is in weft_harness.py).

Fixtures:
  weft_env     session: checks once that the suite can run (root, weftd binary,
               cgroup2, bpffs, bpftool, curl, BPF allowed). Missing any: skip
               with the reason, or fail when WEFT_REQUIRE_PRIV=1 (CI).
  weft         function: a weft_harness.Harness; everything it made (weftd,
               backends, cgroups, pins) is removed when the test ends.
  weft_module  module: the same, shared by the tests of one module.
  weft_binaries session: only checks that WEFTD exists (no root needed).

A failed test gets each weftd log and backend stderr of its harnesses attached
to its report. A session guard removes leftovers of dead earlier runs before
the first test and fails the session if this run leaves anything behind.
"""

import os
import shutil
import subprocess
import sys

import pytest

pytest_plugins = ["weft_requirepriv"]  # under WEFT_REQUIRE_PRIV=1 a skip fails

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import weft_harness as wh  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _binary(env_name, rel):
    p = os.environ.get(env_name)
    if p:
        return os.path.abspath(p)
    return os.path.join(REPO, rel)


class WeftEnv:
    def __init__(self):
        self.weftd = _binary("WEFTD", "build/weftd")
        # the build without sanitizers, for tests that measure memory (ASan's shadow and quarantine would)
        self.weftd_plain = _binary("WEFTD_PLAIN", "build/weftd")
        self.weftctl = _binary("WEFTCTL", "build/weftctl")
        self.cgroot = wh.cgroup2_mount()


def _problems(env):
    """Reasons the privileged suite cannot run here (empty list: it can)."""
    probs = []
    if os.geteuid() != 0:
        probs.append("not root (euid %d): the e2e tests attach BPF programs to cgroups" % os.geteuid())
    if not (os.path.isfile(env.weftd) and os.access(env.weftd, os.X_OK)):
        probs.append("weftd binary %s is missing or not executable (run `make`, or set WEFTD=)"
                     % env.weftd)
    if env.cgroot is None:
        probs.append("no cgroup2 mount in /proc/self/mountinfo")
    for tool in ("bpftool", "curl", "ip"):
        if shutil.which(tool) is None:
            probs.append("%s not found (run `make deps`)" % tool)
    if probs:
        return probs
    why = wh.ensure_bpffs()
    if why:
        probs.append(why)
    r = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    if r.returncode != 0:
        probs.append("BPF not usable here (bpftool prog show: %s)" % r.stderr.strip())
    return probs


def _skip_or_fail(reason):
    if os.environ.get("WEFT_REQUIRE_PRIV") == "1":
        pytest.fail("WEFT_REQUIRE_PRIV=1 but the e2e suite cannot run: " + reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def weft_env():
    env = WeftEnv()
    probs = _problems(env)
    if probs:
        _skip_or_fail("; ".join(probs))
    return env


@pytest.fixture(scope="session")
def weft_binaries():
    """Only the binaries (no root needed): for tests such as `weftd --check`."""
    env = WeftEnv()
    if not (os.path.isfile(env.weftd) and os.access(env.weftd, os.X_OK)):
        _skip_or_fail("weftd binary %s is missing (run `make`, or set WEFTD=)" % env.weftd)
    return env


@pytest.fixture(scope="session", autouse=True)
def _weft_session_guard():
    """Before: remove weft-e2e-* objects of earlier runs whose pytest is dead.
    After: kill anything this run started and still running, remove this run's
    leftovers, and fail if there were any."""
    if os.geteuid() == 0:
        old = wh.leftovers(include_dead_runs=True)
        if any(old.values()):
            sys.stderr.write("weft e2e: removing leftovers of dead runs: %r\n" % (old,))
            wh.remove_leftovers(old)
    yield
    alive = wh.started_alive()
    wh.kill_started()
    if os.geteuid() != 0:
        return
    left = wh.leftovers(include_dead_runs=False)
    errs = wh.remove_leftovers(left) if any(left.values()) else []
    problems = []
    if alive:
        problems.append("processes still running at session end: %s"
                        % [" ".join(p.args) if isinstance(p.args, list) else p.args for p in alive])
    if any(left.values()):
        problems.append("objects left behind: %r" % (left,))
    if errs:
        problems.append("could not remove: %r" % (errs,))
    if problems:
        pytest.fail("weft e2e session cleanup: " + "; ".join(problems), pytrace=False)


def _harness(request, weft_env, workdir):
    h = wh.Harness(weft_env.weftd, str(workdir))
    h.env = weft_env
    return h


@pytest.fixture
def weft(request, weft_env, tmp_path):
    h = _harness(request, weft_env, tmp_path)
    yield h
    errs = h.close()
    if errs:
        pytest.fail("teardown: " + "; ".join(errs), pytrace=False)


@pytest.fixture(scope="module")
def weft_module(request, weft_env, tmp_path_factory):
    h = _harness(request, weft_env, tmp_path_factory.mktemp("weftmod"))
    yield h
    errs = h.close()
    if errs:
        pytest.fail("module teardown: " + "; ".join(errs), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed or rep.when not in ("setup", "call"):
        return
    funcargs = getattr(item, "funcargs", {}) or {}
    for val in list(funcargs.values()):
        if not isinstance(val, wh.Harness):
            continue
        for d in val.daemons:
            rep.sections.append(("weftd %s log (%s)" % (d.name, d.log_path), d.log_tail(200)))
        for s in val.servers:
            err = s.stderr().strip()
            if err:
                rep.sections.append(("backend %s stderr" % s.name, err[-4000:]))
