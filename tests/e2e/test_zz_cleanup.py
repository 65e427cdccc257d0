# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Runs last (file order): the suite left nothing named weft-e2e-* behind."""

import json
import os

import weft_harness as wh


def test_nothing_left_behind(weft_env):
    alive = wh.started_alive()
    assert alive == [], "processes started by the suite still running: %r" % [p.args for p in alive]
    left = wh.leftovers(include_dead_runs=False)
    assert left == {"cgroups": [], "pins": [], "netns": [], "processes": []}, left
    # And no weft-e2e cgroup is still shown with programs attached.
    tree = wh.bpftool_json("cgroup", "tree", wh.cgroup2_mount(), check=False) or []
    meshed = [e for e in tree if wh.run_prefix() in json.dumps(e)]
    assert meshed == [], meshed
    assert not [e for e in os.listdir(wh.BPFFS) if e.startswith(wh.run_prefix())]
