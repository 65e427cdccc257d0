# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""GET /metrics against the real tools: `promtool check metrics` accepts it,
names and types are what docs/operations.md lists, and a real Prometheus
server scrapes weftd and can query the weft_ series."""

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

import weft_harness as wh
from weft_harness import (admin_call, dead_addr, free_port, parse_prom, prom_get, service,
                          unique_name, vip6_addr, vip_addr, wait_for)

PROMETHEUS = "/usr/bin/prometheus"

# docs/operations.md "Metrics": name -> (type, label names)
DOCUMENTED = {
    "weft_connections_total": ("counter", {"service", "endpoint", "direction"}),
    "weft_connections_active": ("gauge", {"service", "endpoint", "direction"}),
    "weft_bytes_total": ("counter", {"service", "endpoint", "direction", "flow"}),
    "weft_connect_duration_seconds": ("histogram", {"service", "endpoint", "direction"}),
    "weft_connect_errors_total": ("counter", {"service", "endpoint", "direction", "reason"}),
    "weft_connections_failed_total": ("counter", {"service", "direction", "reason"}),
    "weft_accepted_total": ("counter", set()),
    "weft_unattributed_total": ("counter", set()),
    "weft_bpf_verdicts_total": ("counter", {"verdict"}),
    "weft_config_reloads_total": ("counter", {"result"}),
    "weft_config_hash": ("gauge", set()),
    "weft_config_last_reload_success_timestamp_seconds": ("gauge", set()),
    "weft_log_suppressed_total": ("counter", set()),
    "weft_build_info": ("gauge", {"version"}),
    "weft_ready": ("gauge", set()),
    "weft_enrolled_cgroups": ("gauge", set()),
}


def _family(name, types):
    """Sample name -> its family in # TYPE (histogram suffixes stripped)."""
    if name in types:
        return name
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[: -len(suf)]) == "histogram":
            return name[: -len(suf)]
    return None


@pytest.fixture(scope="module")
def traffic(weft_module):
    """weftd with service web = [A (http), a dead endpoint], round-robin and
    no retry, after 4 clients: 2 reach A, 2 are reset after a refused connect."""
    h = weft_module
    t = type("Traffic", (), {})()
    t.cg = h.cgroup(tag="prom")
    t.a = h.server("http", "A")
    t.dead = dead_addr()
    t.vip = vip_addr()
    t.a6 = h.server("http", "A6", listen="[::1]:0")
    t.vip6 = vip6_addr()
    t.d = h.weftd([t.cg], [service("web", [t.vip], [t.a.addr, t.dead], attempts=1,
                                   protocol="tcp"),
                           service("web6", [t.vip6], [t.a6.addr]),
                           service("empty", [vip_addr()], [])])
    t.results = [h.client("http", t.vip, cgroup=t.cg) for _ in range(4)]
    t.ok = [r for r in t.results if r["ok"] and r.get("status_line") == "HTTP/1.1 200 OK"]
    t.res6 = h.client("http", t.vip6, cgroup=t.cg)
    return t


def test_traffic_as_expected(traffic):
    # round-robin over A and the dead one, no retry: some clients fail
    assert 1 <= len(traffic.ok) <= 3, traffic.results
    assert wait_for(lambda: len(traffic.a.conns()) == len(traffic.ok), 3), traffic.a.conns()
    assert traffic.res6["ok"] and traffic.res6["reply"]["server"] == "A6", traffic.res6


def test_promtool_check_metrics(traffic):
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("WEFT_REQUIRE_PRIV") == "1":
            pytest.fail("promtool not found (scripts/deps.sh installs prometheus)")
        pytest.skip("promtool not found (Debian package prometheus; scripts/deps.sh installs it)")
    st, hdr, body = admin_call(traffic.d.admin, "GET", "/metrics")
    assert st == 200, (st, body)
    assert hdr.get("content-type") == "text/plain; version=0.0.4; charset=utf-8", hdr
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", \
        "promtool check metrics: rc=%d\n%s%s" % (r.returncode, r.stdout, r.stderr)


def test_names_types_labels(traffic):
    st, _, body = admin_call(traffic.d.admin, "GET", "/metrics")
    samples, types, helps = parse_prom(body)
    assert body.endswith("\n")
    for name in list(types) + [n for n, _, _ in samples]:
        assert name.startswith("weft_") or name.startswith("process_"), name
    for fam in types:
        assert fam in helps, "no # HELP for %s" % fam
    seen = {}
    for name, labels, value in samples:
        fam = _family(name, types)
        assert fam is not None, "sample %s has no # TYPE" % name
        seen.setdefault(fam, []).append((name, labels, value))
    for fam, (typ, labelset) in DOCUMENTED.items():
        assert types.get(fam) == typ, (fam, types.get(fam), typ)
        assert fam in seen, "no sample of %s" % fam
        for name, labels, _ in seen[fam]:
            want = labelset | ({"le"} if name.endswith("_bucket") else set())
            assert set(labels) == want, (name, labels, want)
    for p in ("process_cpu_seconds_total", "process_resident_memory_bytes",
              "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
              "process_start_time_seconds"):
        assert p in types and prom_get(samples, p), p
    now = time.time()
    start = prom_get(samples, "process_start_time_seconds")[0]
    assert now - 600 < start <= now + 1, (start, now)
    assert prom_get(samples, "process_resident_memory_bytes")[0] > 0
    assert prom_get(samples, "weft_build_info")[0] == 1.0


def test_values_after_traffic(traffic):
    d, a, dead = traffic.d, traffic.a, traffic.dead
    samples = parse_prom(admin_call(d.admin, "GET", "/metrics")[2])[0]
    lab = dict(service="web", direction="outbound")
    nok = len(traffic.ok)
    assert prom_get(samples, "weft_connections_total", endpoint=a.addr, **lab) == [nok]
    assert prom_get(samples, "weft_connections_total", endpoint=dead, **lab) == [0.0]
    assert prom_get(samples, "weft_connections_active", endpoint=a.addr, **lab) == [0.0]
    assert prom_get(samples, "weft_connect_errors_total", endpoint=dead, reason="refused",
                    **lab) == [4 - nok]
    # an IPv6 endpoint label ([::1]:port) is a valid label value
    assert prom_get(samples, "weft_connections_total", service="web6",
                    endpoint=traffic.a6.addr) == [1.0]
    reasons = {l["reason"] for n, l, _ in samples if n == "weft_connect_errors_total"}
    assert reasons >= {"refused", "timeout", "unreachable", "other"}, reasons
    assert prom_get(samples, "weft_connect_errors_total", endpoint=a.addr, reason="refused",
                    **lab) == [0.0]
    # the request and reply went through: bytes both ways
    assert prom_get(samples, "weft_bytes_total", endpoint=a.addr, flow="to_endpoint", **lab)[0] > 0
    assert prom_get(samples, "weft_bytes_total", endpoint=a.addr, flow="to_client", **lab)[0] > 0
    assert prom_get(samples, "weft_accepted_total")[0] >= 4
    assert prom_get(samples, "weft_ready") == [1.0]
    assert prom_get(samples, "weft_enrolled_cgroups") == [1.0]
    assert prom_get(samples, "weft_bpf_verdicts_total", verdict="redirected")[0] >= 4
    verdicts = {l["verdict"] for n, l, _ in samples if n == "weft_bpf_verdicts_total"}
    # the documented verdicts (more may be added)
    assert verdicts >= {"redirected", "not_service", "skipped_own", "skipped_stale_agent",
                        "refused_stale_agent", "error", "handoff", "handoff_error",
                        "getpeername"}, verdicts
    # a service with no endpoints has its failure series, at 0
    assert prom_get(samples, "weft_connections_failed_total", service="empty",
                    reason="no_endpoint") == [0.0]


def test_connect_duration_histogram(traffic):
    d, a = traffic.d, traffic.a
    samples = parse_prom(admin_call(d.admin, "GET", "/metrics")[2])[0]
    lab = dict(service="web", endpoint=a.addr, direction="outbound")
    buckets = [(l["le"], v) for n, l, v in samples
               if n == "weft_connect_duration_seconds_bucket"
               and all(l.get(k) == x for k, x in lab.items())]
    assert buckets, "no buckets for %r" % lab
    assert buckets[-1][0] == "+Inf", buckets
    les = [float(le) for le, _ in buckets]
    assert les == sorted(les) and len(set(les)) == len(les), buckets
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets must be cumulative: %r" % buckets
    count = prom_get(samples, "weft_connect_duration_seconds_count", **lab)
    total = prom_get(samples, "weft_connect_duration_seconds_sum", **lab)
    assert len(count) == 1 and len(total) == 1, (count, total)
    nok = len(traffic.ok)
    assert counts[-1] == count[0] == nok, (buckets, count)
    assert 0 < total[0] < nok, total      # loopback connects
    # a connect on loopback is well under a second
    one_s = [v for le, v in buckets if float(le) == 1.0]
    assert one_s == [nok], buckets


def test_error_series_for_no_endpoint(traffic, weft_module):
    """Connections to a service without endpoints are counted as failed."""
    h, d = weft_module, traffic.d
    st = json.loads(admin_call(d.admin, "GET", "/services")[2])
    vip_empty = [s for s in st["services"] if s["name"] == "empty"][0]["addresses"][0]
    res = h.client("http", vip_empty, cgroup=traffic.cg, timeout=5)
    assert not res["ok"] or res.get("status_line") is None or res["status_line"] == "", res
    samples = parse_prom(admin_call(d.admin, "GET", "/metrics")[2])[0]
    assert prom_get(samples, "weft_connections_failed_total", service="empty",
                    reason="no_endpoint") == [1.0]
    st = json.loads(admin_call(d.admin, "GET", "/services")[2])
    assert [s["connect_failed"] for s in st["services"] if s["name"] == "empty"] == [1], st


# --------------------------------------------------------------------------
# a real Prometheus server

def _prom_query(port, q, timeout=3):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def test_real_prometheus_scrapes_weftd(weft, tmp_path):
    if not os.access(PROMETHEUS, os.X_OK):
        msg = "%s not found (Debian package prometheus; scripts/deps.sh installs it)" % PROMETHEUS
        if os.environ.get("WEFT_REQUIRE_PRIV") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [a.addr])])
    for _ in range(3):
        res = weft.client("http", vip, cgroup=cg)
        assert res["ok"] and res["reply"]["server"] == "A", res

    name = unique_name("prom")
    conf = tmp_path / (name + ".yml")
    conf.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: weft\n    metrics_path: /metrics\n"
        "    static_configs:\n      - targets: ['%s']\n" % d.admin)
    port = free_port()
    log = tmp_path / (name + ".log")
    logf = open(log, "wb")
    p = wh.spawn([PROMETHEUS, "--config.file=%s" % conf,
                  "--storage.tsdb.path=%s" % (tmp_path / (name + "-data")),
                  "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                 stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    logf.close()
    weft._push("prometheus %s" % name, lambda: wh.stop_process(p, 5.0))

    def prom_log():
        return log.read_text(errors="replace")[-3000:]

    q = 'weft_connections_total{service="web"}'
    deadline = time.monotonic() + 20
    res = None
    while time.monotonic() < deadline:
        assert p.poll() is None, "prometheus exited %s:\n%s" % (p.returncode, prom_log())
        res = _prom_query(port, q)
        if res and res.get("status") == "success" and res["data"]["result"]:
            break
        time.sleep(0.3)
    else:
        up = _prom_query(port, "up")
        pytest.fail("no %s from Prometheus within 20s; last answer %r; up: %r\nlog:\n%s"
                    % (q, res, up, prom_log()))
    series = res["data"]["result"]
    assert len(series) == 1, series
    m = series[0]["metric"]
    assert m["__name__"] == "weft_connections_total", m
    assert (m["service"], m["endpoint"], m["direction"], m["job"], m["instance"]) == \
        ("web", a.addr, "outbound", "weft", d.admin), m
    assert float(series[0]["value"][1]) == 3.0, series

    up = _prom_query(port, 'up{job="weft"}')
    assert up and [float(r["value"][1]) for r in up["data"]["result"]] == [1.0], up
    # the histogram is usable as Prometheus users use it
    hq = ('histogram_quantile(0.5, sum by (le) '
          '(weft_connect_duration_seconds_bucket{service="web"}))')
    hres = _prom_query(port, hq)
    assert hres and hres["status"] == "success" and hres["data"]["result"], hres
    assert 0 <= float(hres["data"]["result"][0]["value"][1]) < 1.0, hres
    # scrape problems would show in Prometheus' own log
    assert "level=error" not in prom_log(), prom_log()
