# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""`weftd -c FILE --check`: the contract scripts and operators rely on.

A valid file exits 0 and prints `FILE: OK (N services, M cgroups)`. A bad one
exits 2 and prints every problem on stderr, one `FILE:LINE: key: message`
line each, in line order. Nothing here needs root, BPF or a network: --check
only reads the file (and the TLS files it names).
"""
import os
import subprocess
from pathlib import Path

import pytest

WEFTD = os.environ.get("WEFTD")
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not WEFTD or not os.access(WEFTD, os.X_OK),
    reason="set WEFTD to the path of a built weftd (make e2e does)",
)


def check(path):
    return subprocess.run(
        [WEFTD, "-c", str(path), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(tmp_path, text, name="weft.conf"):
    p = tmp_path / name
    p.write_text(text)
    return p


def assert_ok(path, services, cgroups):
    r = check(path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{path}: OK ({services} services, {cgroups} cgroups)\n"
    assert r.stderr == ""


def assert_errors(path, lines):
    r = check(path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.splitlines() == lines


# --- valid files -----------------------------------------------------------------


def test_default_config_is_valid():
    assert_ok(REPO / "config" / "weft.conf", 2, 1)


@pytest.mark.parametrize(
    "name,services,cgroups",
    [("plain-host.conf", 2, 2), ("multi-service.conf", 5, 3)],
)
def test_examples_are_valid(name, services, cgroups, tmp_path):
    # examples point tls at /etc/weft/tls/ (made by scripts/weft-ca): stand-ins here
    text = (REPO / "config" / "examples" / name).read_text()
    for n in ("ca.pem", "node.pem", "node.key"):
        (tmp_path / n).write_text("x\n")
        text = text.replace("/etc/weft/tls/" + n, str(tmp_path / n))
    conf = tmp_path / name
    conf.write_text(text)
    assert_ok(conf, services, cgroups)


def test_empty_file_is_valid(tmp_path):
    # every key has a default; an agent with no services proxies nothing
    assert_ok(write(tmp_path, "# nothing\n"), 0, 0)


def test_tls_files_that_exist(tmp_path):
    for n in ("ca.pem", "node.pem", "node.key"):
        (tmp_path / n).write_text("x\n")
    conf = write(
        tmp_path,
        f'tls: {{ ca = "{tmp_path}/ca.pem"; cert = "{tmp_path}/node.pem"; key = "{tmp_path}/node.key"; }};\n'
        'services = ( { name = "web"; addresses = [ "127.10.0.1:80" ];\n'
        '  endpoints = ( { address = "198.18.0.2:8080"; node = "198.18.0.2:4143"; } ); } );\n',
    )
    assert_ok(conf, 1, 0)


# --- bad files: exit 2, each problem on its own line ----------------------------------

BAD = {
    "syntax": (
        "agent: {\n  outbound_port = ;\n};\n",
        [
            "{f}:2: syntax error: unexpected text; look for a missing ';', '=', quote or bracket, "
            "or a ',' before ']' or ')', here or on the line before"
        ],
    ),
    "unknown-key": (
        "agent: {\n  outbnd_port = 15001;\n};\n",
        ["{f}:2: agent.outbnd_port: unknown key; did you mean 'outbound_port'?"],
    ),
    "wrong-type": (
        'agent: {\n  admin = "127.0.0.1:9990";\n  outbound_port = "15001";\n};\n',
        ["{f}:3: agent.outbound_port: expected an integer, got a string"],
    ),
    "out-of-range": (
        "agent: { heartbeat_stale_ms = 999; };\n",
        ["{f}:1: agent.heartbeat_stale_ms: 999 is out of range (1000-60000)"],
    ),
    "bad-enum": (
        'agent: { fail_mode = "opne"; };\n',
        ["{f}:1: agent.fail_mode: unknown value 'opne'; valid values are \"open\", \"closed\""],
    ),
    "bad-address": (
        'services = (\n  { name = "web";\n    addresses = [ "10.0.0.1" ]; }\n);\n',
        ["{f}:3: services[0].addresses[0]: '10.0.0.1' has no port; write it as host:port"],
    ),
    "duplicate-vip": (
        "services = (\n"
        '  { name = "web"; addresses = [ "127.10.0.1:80" ]; },\n'
        '  { name = "api"; addresses = [ "127.10.0.1:80" ]; }\n'
        ");\n",
        [
            "{f}:3: services[1].addresses[0]: 127.10.0.1:80 is already used by service 'web' (line 2); "
            "each address belongs to one service"
        ],
    ),
    "missing-required": (
        'services = (\n  { protocol = "tcp"; }\n);\n',
        [
            "{f}:2: services[0]: missing required key 'name'; write name = \"web\"; "
            "(each service needs a unique name)",
            "{f}:2: services[0]: missing required key 'addresses'; list what apps dial, "
            'e.g. addresses = [ "127.10.0.1:80" ];',
        ],
    ),
    "missing-tls-file": (
        'tls: {\n  ca = "/nonexistent/ca.pem";\n  cert = "/nonexistent/node.pem";\n  key = "/nonexistent/node.key";\n};\n',
        [
            "{f}:2: tls.ca: cannot read '/nonexistent/ca.pem': No such file or directory",
            "{f}:3: tls.cert: cannot read '/nonexistent/node.pem': No such file or directory",
            "{f}:4: tls.key: cannot read '/nonexistent/node.key': No such file or directory",
        ],
    ),
    "endpoint-is-a-vip": (
        'services = ( { name = "web"; addresses = [ "127.10.0.1:80" ];\n'
        '  endpoints = ( { address = "127.10.0.1:80"; } ); } );\n',
        [
            "{f}:2: services[0].endpoints[0].address: 127.10.0.1:80 is an address of service 'web' (line 1); "
            "an endpoint must be where a server listens, or connections would loop"
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config(tmp_path, case):
    text, lines = BAD[case]
    conf = write(tmp_path, text)
    assert_errors(conf, [line.format(f=conf) for line in lines])


def test_all_errors_are_printed_in_line_order(tmp_path):
    conf = write(
        tmp_path,
        "agent: {\n"
        '  outbound_port = "x";\n'
        '  fail_mode = "closd";\n'
        "  zork = 1;\n"
        "};\n"
        "services = (\n"
        '  { name = "web"; addresses = [ "127.10.0.1" ];\n'
        '    endpoints = ( { address = "127.10.0.9:80"; } ); },\n'
        '  { name = "web"; addresses = [ "127.10.0.9:80" ]; protocol = "grpc"; }\n'
        ");\n",
    )
    f = conf
    assert_errors(
        conf,
        [
            f"{f}:2: agent.outbound_port: expected an integer, got a string",
            f"{f}:3: agent.fail_mode: unknown value 'closd'; valid values are \"open\", \"closed\"",
            f"{f}:4: agent.zork: unknown key; valid keys are admin, outbound_port, inbound, bpf_pin_path, "
            "fail_mode, heartbeat_stale_ms, mark, log_level, max_connections, max_connections_per_workload, "
            "buffer_memory_mb, buffer_memory_per_workload_pct, buffer_size, drain_timeout_ms, workers, "
            "redirect_loopback, splice, strict_inbound, log_rate_limit, zone, dns_servers, dns_timeout_ms",
            f"{f}:7: services[0].addresses[0]: '127.10.0.1' has no port; write it as host:port",
            f"{f}:8: services[0].endpoints[0].address: 127.10.0.9:80 is an address of service 'web' (line 9); "
            "an endpoint must be where a server listens, or connections would loop",
            f"{f}:9: services[1].name: 'web' is already the name of services[0] (line 7); "
            "service names must be unique",
            f"{f}:9: services[1].protocol: unknown value 'grpc'; valid values are "
            '"tcp", "http", "http2", "auto"',
        ],
    )


def test_every_line_has_the_format(tmp_path):
    # many problems of every kind: each stderr line is FILE:LINE: key: message
    conf = write(tmp_path, (REPO / "tests/fuzz/corpus/fuzz_config/types.conf").read_text())
    r = check(conf)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) >= 10
    for line in lines:
        head, _, rest = line.partition(": ")
        path, _, num = head.rpartition(":")
        assert path == str(conf) and num.isdigit() and int(num) > 0, line
        assert rest, line


def test_nonexistent_file():
    r = check("/nonexistent")
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["/nonexistent: cannot open: No such file or directory"]
    assert r.stdout == ""


def test_directory(tmp_path):
    assert_errors(tmp_path, [f"{tmp_path}: cannot read: Is a directory"])


def test_include_refused(tmp_path):
    other = write(tmp_path, "agent: { };\n", "other.conf")
    conf = write(tmp_path, f'@include "{other}"\n')
    assert_errors(conf, [f"{conf}:1: @include is not supported; put the whole configuration in one file"])
