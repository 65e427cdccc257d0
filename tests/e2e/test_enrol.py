# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Cgroups coming and going: inotify enrolment and release, nested globs."""

import os
import time

from weft_harness import Cgroup, service, unique_name, vip_addr, wait_for, weft_progs


def test_new_cgroup_enrolled_at_once_and_released(weft):
    """A pod-like tree: slice/<pod>/<container>. The glob's middle level does
    not exist at start; weftd must follow it down with inotify."""
    slice_ = weft.cgroup(tag="pods")
    a = weft.server("http", "A")
    vip = vip_addr()
    # With inotify the periodic backstop scan runs every 10 s, so it cannot be
    # what finds the new cgroup within the deadline below.
    d = weft.weftd([os.path.join(slice_.path, "pod-*", "ctr-*")], [service("web", [vip], [a.addr])])
    time.sleep(0.2)
    assert "enrolled cgroup" not in d.log()

    pod = Cgroup.create(slice_.path, "pod-" + unique_name("x"))
    ctr = Cgroup.create(pod.path, "ctr-" + unique_name("y"))
    try:
        t0 = time.monotonic()
        assert wait_for(lambda: ("enrolled cgroup %s " % ctr.path) in d.log(), timeout=2.0,
                        interval=0.01), d.log_tail()
        took = time.monotonic() - t0
        assert took < 0.3, "enrolled after %.3fs; inotify should take milliseconds" % took
        assert {p["name"] for p in weft_progs(ctr.path)} >= {"weft_connect4", "weft_sockops"}
        res = weft.client("http", vip, cgroup=ctr)
        assert res["ok"] and res["reply"]["server"] == "A", res
        assert weft_progs(pod.path) == [], "only the matching level is enrolled"
    finally:
        ctr.destroy()
    # the container cgroup goes: its links are released (the log says why)
    assert wait_for(lambda: "released cgroup %s (it was removed)" % ctr.path in d.log(),
                    timeout=2.0, interval=0.02), d.log_tail()
    pod.destroy()
