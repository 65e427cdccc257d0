# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""bpffs: "if nothing is mounted at /sys/fs/bpf, weftd mounts it (and says so)".

Each weftd here runs in a mount namespace of its own (unshare -m, private
propagation) where /sys/fs/bpf has been unmounted first, so the machine's
bpffs and everyone else's pins are never touched. The namespace has one
process, weftd: when it exits the namespace goes, and with it the bpffs weftd
mounted and anything pinned there (nothing to clean up on the host even
after a SIGKILL).
"""

import os

from weft_harness import BPFFS, service, vip_addr, wait_for, weft_progs

# Unmount every bpffs stacked on /sys/fs/bpf (lazily: submounts go too), in
# this namespace only, then run what follows ("$@": weftd and its arguments).
UNMOUNT = 'while mountpoint -q %s; do umount -l %s || exit 97; done' % (BPFFS, BPFFS)


def private_ns(script):
    """argv words that run SCRIPT, then exec the rest, in a new private mount namespace."""
    return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
            script + '; exec "$@"', "sh"]


def mounts_at(pid, path):
    """(fstype, mount options) of each mount on path in pid's mount namespace, in order."""
    out = []
    with open("/proc/%d/mountinfo" % pid) as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if pre.split()[4] == path:
                out.append((post.split()[0], pre.split()[5] + "," + post.split()[2]))
    return out


def host_bpffs():
    return mounts_at(os.getpid(), BPFFS)


def test_mounts_bpffs_when_none_is_mounted(weft):
    before = host_bpffs()
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [a.addr])], start=False)
    d.start(wrap=private_ns(UNMOUNT))

    log = d.run_log()
    assert "INFO  mounted bpffs at /sys/fs/bpf (nothing was mounted there; agent.bpf_pin_path is '%s')" \
        % d.pin_path in log, log
    # weftd's namespace: one bpffs on /sys/fs/bpf, mode 0700; the pins are in it
    mine = mounts_at(d.pid, BPFFS)
    assert len(mine) == 1 and mine[0][0] == "bpf" and "mode=700" in mine[0][1], mine
    pins = os.listdir("/proc/%d/root%s" % (d.pid, d.pin_path))
    assert {"weft_services", "weft_agent", "weft_connect4", "links"} <= set(pins), pins
    # ... and not in ours: the machine's bpffs is untouched
    assert host_bpffs() == before
    assert not os.path.exists(d.pin_path)

    # it works: programs attached to the cgroup, a connect to the VIP is proxied
    assert weft_progs(cg.path), "nothing attached to %s" % cg.path
    res = weft.client("http", vip, cgroup=cg)
    assert res["ok"] and res["reply"]["server"] == "A", res

    assert d.terminate() == 0
    assert "stopped: programs detached, pins removed" in d.run_log()
    assert weft_progs(cg.path) == []
    assert host_bpffs() == before


def test_leaves_a_nonempty_directory_alone(weft):
    """Something that is not bpffs and not empty at /sys/fs/bpf: weftd does not
    mount over it (that would hide what is there) and says what to do."""
    cg = weft.cgroup(tag="app")
    d = weft.weftd([cg], [], start=False)
    d.start(wait=False, wrap=private_ns(
        UNMOUNT + ' && mount -t tmpfs weft-e2e-tmpfs %s && mkdir %s/keep' % (BPFFS, BPFFS)))
    assert d.proc.wait(10) == 1
    log = d.run_log()
    assert ("agent.bpf_pin_path '%s' is not on a BPF filesystem: /sys/fs/bpf is not bpffs and is not "
            "empty, so weftd does not mount bpffs over it" % d.pin_path) in log, log
    assert "mounted bpffs" not in log
    assert weft_progs(cg.path) == []


def test_pin_path_elsewhere_is_not_mounted(weft, tmp_path):
    """A pin path outside /sys/fs/bpf on another filesystem stays an error,
    even when nothing is mounted at /sys/fs/bpf: weftd mounts only there."""
    cg = weft.cgroup(tag="app")
    d = weft.weftd([cg], [], start=False)
    pin = str(tmp_path / "pins")
    with open(d.conf_path, "w") as f:
        f.write(d.config_text.replace('bpf_pin_path = "%s"' % d.pin_path, 'bpf_pin_path = "%s"' % pin))
    d.start(wait=False, wrap=private_ns(UNMOUNT))
    assert d.proc.wait(10) == 1
    log = d.run_log()
    assert "agent.bpf_pin_path '%s' is not on a BPF filesystem ('%s' is not bpffs)" % (pin, tmp_path) in log, log
    assert "mounted bpffs" not in log
    assert not os.path.exists(pin)


def test_sigkill_leaves_nothing(weft):
    """Killed, weftd takes its namespace with it: the bpffs it mounted, the
    pins, and so the links (a link goes when its last pin and fd go)."""
    cg = weft.cgroup(tag="app")
    d = weft.weftd([cg], [], start=False)
    d.start(wrap=private_ns(UNMOUNT))
    assert weft_progs(cg.path)
    d.kill9()
    assert wait_for(lambda: weft_progs(cg.path) == [], 10), weft_progs(cg.path)
