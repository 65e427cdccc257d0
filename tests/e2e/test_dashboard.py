# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""deploy/grafana/weft.json, the Grafana dashboard, against what weft really
exports.

Every PromQL expression of the dashboard (panel targets, template variable
queries, annotations) goes through a small PromQL-aware parser that yields the
metric names it selects, the label matchers, the by/without/on/ignoring
labels and the functions around each selector. Then:
  - without root: the dashboard's structure (valid JSON, unique panel ids,
    the ${datasource} variable on every panel and target, grid positions
    inside 24 columns with no overlap, each panel under its row); every name
    has a `# TYPE` line in weftd's C sources; `promtool check rules` parses
    every expression (when promtool is there);
  - against a running weftd configured with every optional part (HTTP, TCP
    and "auto" services, mTLS, Kubernetes discovery from kubeapi.py, tracing,
    a reload) and after some traffic: every name is on its /metrics (a
    histogram X as X_bucket, X_sum, X_count); every label matched or grouped
    on exists on that metric (or is a scrape target label), every literal
    label value matched is one weft emits; rate()/irate()/increase() take
    counters only, histogram_quantile() takes _bucket series grouped by le;
  - a real Prometheus (Debian package prometheus) scraping that weftd
    evaluates every expression without an error, and finds series for each.
Labels and values of families with no sample on that /metrics (e.g.
weft_inbound_peer_connections_total before any peer) come from the string
literals of the C sources.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import weft_harness as wh
from kubeapi import KubeAPI
from weft_harness import (CertAuthority, admin_call, dead_addr, free_port, http_backend,
                          http_requests, parse_prom, service, tls_conf, unique_name, vip_addr,
                          wait_for)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "weft.json")
PROMETHEUS = "/usr/bin/prometheus"
DS = {"type": "prometheus", "uid": "${datasource}"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


def _need(tool_ok, msg):
    if tool_ok:
        return
    if os.environ.get("WEFT_REQUIRE_PRIV") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


# --------------------------------------------------------------------------
# the dashboard and its queries

def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(dash):
    """Every panel, rows included; a collapsed row keeps its panels inside it."""
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def queries(dash):
    """[(where, text, kind)]: kind "expr" (PromQL) or "variable" (a Grafana
    variable query: label_values(...), query_result(...), or PromQL)."""
    out = []
    for p in all_panels(dash):
        for t in p.get("targets", []):
            out.append(("panel %d %r target %s" % (p["id"], p.get("title"), t.get("refId")),
                        t.get("expr", ""), "expr"))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q
        out.append(("variable $%s" % v["name"], q, "variable"))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append(("annotation %r" % a.get("name"), a["expr"], "expr"))
    return out


def variable_promql(text):
    """A Grafana Prometheus variable query -> (PromQL, label it reads or None)."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)\s*", text, re.S)
    if m:
        return m.group(1), m.group(2)
    m = re.fullmatch(r"\s*query_result\((.*)\)\s*", text, re.S)
    if m:
        return m.group(1), None
    return text, None


# --------------------------------------------------------------------------
# a small PromQL parser: enough to name what an expression reads

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile"}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_quantile", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "ln", "log2", "log10", "minute", "month", "predict_linear",
    "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp",
    "vector", "year", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
    "count_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time",
    "last_over_time", "present_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "pi", "rad",
}
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}
# functions whose string arguments name a label they create
LABEL_MAKERS = {"count_values": 0, "label_replace": 1, "label_join": 1}
KEYWORDS = {"and", "or", "unless", "atan2", "bool", "offset", "Inf", "NaN", "inf", "nan"}
GROUPING = {"by", "without"}
MATCHING = {"on", "ignoring", "group_left", "group_right"}
# Grafana's interval variables: they stand where a duration goes.
INTERVAL_VARS = re.compile(r"\$__(?:rate_interval|interval|range)\b|\$\{__(?:rate_interval|interval|range)\}")

TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<dur>(?:\d+(?:ms|[smhdwy]))+(?![\w.]))
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@:])
""", re.X)


class PromQLError(ValueError):
    pass


def tokenize(expr):
    """-> [(kind, text)], whitespace and comments dropped. A Grafana interval
    variable becomes a duration; any other $variable must sit in a string."""
    expr = INTERVAL_VARS.sub("5m", expr)
    toks, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise PromQLError("cannot read %r at %r" % (expr, expr[pos:pos + 20]))
        if m.lastgroup != "ws":
            toks.append((m.lastgroup, m.group()))
        pos = m.end()
    return toks


def unquote(s):
    if s[0] == "`":
        return s[1:-1]
    return re.sub(r"\\(.)", r"\1", s[1:-1])


class Selector:
    def __init__(self, name, index):
        self.name, self.index = name, index
        self.matchers = []      # [(label, op, value)]
        self.range = False

    def __repr__(self):
        return "Selector(%s%r)" % (self.name, self.matchers)


class Call:
    def __init__(self, name, start):
        self.name, self.start, self.end = name, start, None
        self.grouping = []      # labels of by/without
        self.strings = []       # string arguments, in order

    def __repr__(self):
        return "Call(%s %d..%s by %r)" % (self.name, self.start, self.end, self.grouping)


class Parsed:
    """What one expression reads: selectors, calls (functions and
    aggregations, with the token span of their arguments), the labels of
    on/ignoring/group_left/group_right, and the labels the expression makes."""

    def __init__(self, expr):
        self.expr = expr
        self.selectors, self.calls, self.matching = [], [], []
        self.made_labels = set()
        self._parse(tokenize(expr))

    def _labels(self, toks, i):
        """toks[i] is '(': a label list. -> (labels, index after ')')."""
        labels = []
        i += 1
        while i < len(toks) and toks[i][1] != ")":
            kind, text = toks[i]
            if kind == "ident":
                labels.append(text)
            elif text != ",":
                raise PromQLError("%r: not a label list at %r" % (self.expr, text))
            i += 1
        if i >= len(toks):
            raise PromQLError("%r: unclosed label list" % self.expr)
        return labels, i + 1

    def _matchers(self, sel, toks, i):
        """toks[i] is '{'. -> index after '}'."""
        i += 1
        while i < len(toks) and toks[i][1] != "}":
            if toks[i][1] == ",":
                i += 1
                continue
            if (i + 2 >= len(toks) or toks[i][0] != "ident" or toks[i + 1][1] not in ("=", "!=", "=~", "!~")
                    or toks[i + 2][0] != "str"):
                raise PromQLError("%r: bad label matcher at %r" % (self.expr, toks[i:i + 3]))
            sel.matchers.append((toks[i][1], toks[i + 1][1], unquote(toks[i + 2][1])))
            i += 3
        if i >= len(toks):
            raise PromQLError("%r: unclosed {" % self.expr)
        return i + 1

    def _parse(self, toks):
        stack = []              # open parens: a Call, or None for grouping parens
        pending = None          # an aggregation whose by/without came before its '('
        closed = (None, -1)     # the call the last ')' closed, and that ')' index
        i = 0
        while i < len(toks):
            kind, text = toks[i]
            nxt = toks[i + 1][1] if i + 1 < len(toks) else None
            if kind == "ident" and text in GROUPING:
                if nxt != "(":
                    raise PromQLError("%r: %s without a label list" % (self.expr, text))
                labels, j = self._labels(toks, i + 1)
                if pending is not None:                           # sum by (x) (...)
                    pending.grouping.extend(labels)
                elif closed[1] == i - 1 and closed[0].name in AGGREGATIONS:
                    closed[0].grouping.extend(labels)             # sum(...) by (x)
                else:
                    raise PromQLError("%r: %s outside an aggregation" % (self.expr, text))
                i = j
                continue
            if kind == "ident" and text in MATCHING:
                i += 1
                if nxt == "(":
                    labels, i = self._labels(toks, i)
                    self.matching.extend(labels)
                continue
            if kind == "ident" and text in AGGREGATIONS and nxt in GROUPING:
                pending = Call(text, i)
                i += 1
                continue
            if kind == "ident" and nxt == "(" and text not in KEYWORDS:
                if text not in FUNCTIONS and text not in AGGREGATIONS:
                    raise PromQLError("%r: unknown function %s()" % (self.expr, text))
                call = Call(text, i)
                stack.append(call)
                self.calls.append(call)
                i += 2
                continue
            if text == "(":
                if pending is not None:
                    pending.start = i
                    stack.append(pending)
                    self.calls.append(pending)
                    pending = None
                else:
                    stack.append(None)
                i += 1
                continue
            if text == ")":
                if not stack:
                    raise PromQLError("%r: unbalanced )" % self.expr)
                call = stack.pop()
                if call is not None:
                    call.end = i
                closed = (call, i) if call is not None else (None, -1)
                i += 1
                continue
            if pending is not None:
                raise PromQLError("%r: %s by/without (...) without its argument" % (self.expr, pending.name))
            if kind == "str":
                if stack and stack[-1] is not None:
                    stack[-1].strings.append(unquote(text))
                i += 1
                continue
            if text == "[":
                j = i
                while j < len(toks) and toks[j][1] != "]":
                    if toks[j][0] == "ident" and not toks[j][1].startswith(":"):
                        raise PromQLError("%r: %r in a range" % (self.expr, toks[j][1]))
                    j += 1
                if self.selectors and self.selectors[-1].index == i - 1:
                    self.selectors[-1].range = True
                i = j + 1
                continue
            if kind == "ident" and text == "offset":
                i += 2 if nxt != "-" else 3
                continue
            if text == "@":
                i += 2
                continue
            if text == "{":
                raise PromQLError("%r: a selector without a metric name" % self.expr)
            if kind == "ident" and text not in KEYWORDS:
                sel = Selector(text, i)
                self.selectors.append(sel)
                i += 1
                if nxt == "{":
                    i = self._matchers(sel, toks, i)
                    sel.index = i - 1            # where a following [range] starts from
                continue
            i += 1                               # numbers, durations, operators, keywords
        if stack or pending is not None:
            raise PromQLError("%r: unbalanced (" % self.expr)
        for c in self.calls:
            if c.name in LABEL_MAKERS and len(c.strings) > LABEL_MAKERS[c.name]:
                self.made_labels.add(c.strings[LABEL_MAKERS[c.name]])

    def inside(self, call):
        """Selectors within a call's parentheses."""
        return [s for s in self.selectors if call.start < s.index < call.end]

    def enclosing(self, sel):
        """Calls around a selector, innermost first."""
        return sorted((c for c in self.calls if c.start < sel.index < c.end), key=lambda c: -c.start)


def parse_query(text, kind):
    """-> (Parsed, label a label_values() variable reads or None)."""
    if kind == "variable":
        text, label = variable_promql(text)
        return Parsed(text), label
    return Parsed(text), None


# --------------------------------------------------------------------------
# what weft exports

def source_text():
    out = []
    for path in sorted(glob.glob(os.path.join(REPO, "userspace", "**", "*.c"), recursive=True)):
        with open(path, errors="replace") as f:
            out.append(f.read())
    return "\n".join(out)


class Exported:
    """Metric names (a histogram as its _bucket/_sum/_count series), their
    types, label names and label values: from /metrics texts and/or the C
    sources' string literals."""

    def __init__(self):
        self.types = {}          # family -> type
        self.labels = {}         # series name -> {label}
        self.values = {}         # (series name, label) -> {value}
        self.literals = set()    # C string literals' contents (label value fallback)

    def add_metrics_text(self, text):
        samples, types, _ = parse_prom(text)
        self.types.update(types)
        for name, labels, _ in samples:
            self.labels.setdefault(name, set()).update(labels)
            for k, v in labels.items():
                self.values.setdefault((name, k), set()).add(v)

    def add_source(self, src):
        for fam, typ in re.findall(r"# TYPE ([a-zA-Z_:][\w:]*) (counter|gauge|histogram|summary|untyped)\b",
                                   src):
            self.types.setdefault(fam, typ)
        for fam in list(self.types):
            # (a sample may follow its # TYPE line's "\n" in the same literal)
            for m in re.finditer(r"(?:(?<=\\n)|(?<!\w))%s(_bucket|_sum|_count)?\{([^}]{0,300})"
                                 % re.escape(fam), src):
                name = fam + (m.group(1) or "")
                self.labels.setdefault(name, set()).update(re.findall(r'(\w+)=\\"', m.group(2)))
        self.literals |= set(re.findall(r'\\?"([\w.+-]+)\\?"', src))

    def family(self, name):
        """Series name -> (family, type), or (None, None) if weft has no such series."""
        t = self.types.get(name)
        if t and t not in ("histogram", "summary"):
            return name, t
        for suf in HIST_SUFFIXES:
            fam = name[: -len(suf)]
            if name.endswith(suf) and self.types.get(fam) in ("histogram", "summary"):
                return fam, self.types[fam]
        return None, None

    def names(self):
        out = set()
        for fam, t in self.types.items():
            if t in ("histogram", "summary"):
                out |= {fam + s for s in HIST_SUFFIXES}
            else:
                out.add(fam)
        return out

    def labels_of(self, name):
        fam, _ = self.family(name)
        out = set(TARGET_LABELS)
        out |= self.labels.get(name, set())
        if not self.labels.get(name) and fam and fam != name:
            # a histogram series without samples: its family's labels
            for suf in HIST_SUFFIXES:
                out |= self.labels.get(fam + suf, set()) - {"le"}
        if name.endswith("_bucket"):
            out.add("le")
        return out

    def value_known(self, name, label, value):
        return value in self.values.get((name, label), set()) or value in self.literals


def source_exports():
    e = Exported()
    e.add_source(source_text())
    return e


def literal_values(op, value):
    """The label values a matcher names literally ([] if it uses a variable or a real regex)."""
    if "$" in value or value == "":
        return []
    if op in ("=", "!="):
        return [value]
    if re.fullmatch(r"[\w.+-]+(\|[\w.+-]+)*", value):
        return value.split("|")
    return []


def check_against(exp, dash, labels=True):
    """Every problem of the dashboard's queries against exp (an Exported): a
    list of strings. labels=False: names and types only."""
    problems = []
    names = exp.names()
    for where, text, kind in queries(dash):
        try:
            p, var_label = parse_query(text, kind)
        except PromQLError as e:
            problems.append("%s: %s" % (where, e))
            continue
        if not p.selectors:
            problems.append("%s: reads no metric: %r" % (where, text))
        for s in p.selectors:
            if s.name not in names:
                problems.append("%s: %s is not a metric weft exports" % (where, s.name))
                continue
            known = exp.labels_of(s.name)
            for label, op, value in s.matchers if labels else ():
                if label not in known:
                    problems.append("%s: %s has no label %r (it has %s)"
                                    % (where, s.name, label, sorted(known)))
                    continue
                for v in literal_values(op, value):
                    if not exp.value_known(s.name, label, v):
                        problems.append("%s: %s{%s} is never %r" % (where, s.name, label, v))
            _, typ = exp.family(s.name)
            around = p.enclosing(s)
            if around and around[0].name in COUNTER_FUNCTIONS:
                if not (typ == "counter" or (typ in ("histogram", "summary")
                                             and s.name != exp.family(s.name)[0])):
                    problems.append("%s: %s() of %s, a %s" % (where, around[0].name, s.name, typ))
                if not s.range:
                    problems.append("%s: %s() of %s without a range" % (where, around[0].name, s.name))
            if any(c.name == "histogram_quantile" for c in around) and not s.name.endswith("_bucket"):
                problems.append("%s: histogram_quantile() over %s (not a _bucket series)" % (where, s.name))
        for c in p.calls:
            inner = p.inside(c)
            if c.name == "histogram_quantile":
                aggs = [a for a in p.calls if c.start < a.start < c.end and a.name in AGGREGATIONS]
                if aggs and "le" not in aggs[0].grouping:
                    problems.append("%s: histogram_quantile() over a sum without le" % where)
            for label in c.grouping if labels else ():
                if label in p.made_labels:
                    continue
                if inner and not any(label in exp.labels_of(s.name) for s in inner
                                     if s.name in names):
                    problems.append("%s: %s by (%s): no metric inside has that label"
                                    % (where, c.name, label))
        for label in p.matching if labels else ():
            if not any(label in exp.labels_of(s.name) for s in p.selectors if s.name in names):
                problems.append("%s: on/ignoring (%s): no metric has that label" % (where, label))
        if labels and var_label and not any(var_label in exp.labels_of(s.name)
                                            for s in p.selectors if s.name in names):
            problems.append("%s: label_values reads %r, which its metric does not have"
                            % (where, var_label))
    return problems


# --------------------------------------------------------------------------
# without root: the parser, the structure, the names in the sources, promtool

def test_parser_reads_what_promql_means():
    """The parser on expressions whose parts are known."""
    p = Parsed('histogram_quantile(0.99, sum by (le, service) '
               '(rate(weft_x_seconds_bucket{instance=~"$instance", service=~"a|b"}[$__rate_interval])))')
    assert [s.name for s in p.selectors] == ["weft_x_seconds_bucket"]
    assert p.selectors[0].matchers == [("instance", "=~", "$instance"), ("service", "=~", "a|b")]
    assert p.selectors[0].range
    assert [(c.name, c.grouping) for c in p.calls] == [
        ("histogram_quantile", []), ("sum", ["le", "service"]), ("rate", [])]
    assert [c.name for c in p.enclosing(p.selectors[0])] == ["rate", "sum", "histogram_quantile"]
    # grouping after the argument, binary operators, on(), offset, numbers, durations
    p = Parsed('sum(rate(a_total[5m] offset 1h)) by (service) / on (service) group_left '
               'sum by (service) (b) * 100 > bool 1e3')
    assert [s.name for s in p.selectors] == ["a_total", "b"]
    assert [(c.name, c.grouping) for c in p.calls] == [
        ("sum", ["service"]), ("rate", []), ("sum", ["service"])]
    assert p.matching == ["service"]
    assert p.inside(p.calls[2])[0].name == "b"
    # made labels, strings, Grafana's variables in strings only
    p = Parsed('count by (hash) (count_values("hash", weft_config_hash{instance=~"$instance"}))')
    assert p.made_labels == {"hash"} and [s.name for s in p.selectors] == ["weft_config_hash"]
    for bad in ("rates(x[5m])", "sum(x", "x{a=b}", '{__name__="x"}', "x[$node]", "sum by a (x)"):
        with pytest.raises(PromQLError):
            Parsed(bad)
    assert variable_promql('label_values(m{a="1"}, service)') == ('m{a="1"}', "service")


def test_checks_catch_mistakes():
    """The checks flag a wrong name, label, label value, rate of a gauge,
    quantile without le; and pass the right ones."""
    exp = Exported()
    exp.add_metrics_text(
        "# TYPE weft_c_total counter\nweft_c_total{service=\"a\",reason=\"refused\"} 1\n"
        "# TYPE weft_g gauge\nweft_g{service=\"a\"} 1\n"
        "# TYPE weft_h_seconds histogram\nweft_h_seconds_bucket{service=\"a\",le=\"+Inf\"} 1\n"
        "weft_h_seconds_sum{service=\"a\"} 1\nweft_h_seconds_count{service=\"a\"} 1\n")

    def dash(*exprs):
        return {"panels": [{"id": 1, "targets": [{"refId": "A", "expr": e} for e in exprs]}]}

    good = dash('sum by (service, reason) (rate(weft_c_total{reason="refused", instance=~"$instance"}[5m]))',
                'histogram_quantile(0.5, sum by (le) (rate(weft_h_seconds_bucket[5m])))',
                'weft_h_seconds_sum / weft_h_seconds_count', 'weft_g{service=~"$service"}')
    assert check_against(exp, good) == []
    for expr, why in [("weft_nope", "not a metric"), ("weft_h_seconds", "not a metric"),
                      ('weft_g{endpoint="x"}', "no label 'endpoint'"),
                      ('weft_c_total{reason=~"refused|nope"}', "never 'nope'"),
                      ("rate(weft_g[5m])", "a gauge"), ("rate(weft_c_total)", "without a range"),
                      ("sum by (kind) (weft_g)", "no metric inside"),
                      ("histogram_quantile(0.5, sum by (service) (rate(weft_h_seconds_bucket[5m])))",
                       "without le"),
                      ("histogram_quantile(0.5, weft_h_seconds_sum)", "not a _bucket")]:
        got = check_against(exp, dash(expr))
        assert got and why in got[0], (expr, got)


def test_dashboard_structure():
    """Valid JSON Grafana imports: the variables, unique ids, the ${datasource}
    variable everywhere, every panel on the 24-column grid under its row, no overlap."""
    d = load_dashboard()
    assert d.get("title") and d.get("uid") and 36 <= d.get("schemaVersion", 0) <= 41, d.get("schemaVersion")
    tvars = {v["name"]: v for v in d["templating"]["list"]}
    assert tvars["datasource"]["type"] == "datasource" and tvars["datasource"]["query"] == "prometheus"
    for name in ("instance", "service"):
        v = tvars[name]
        assert v["type"] == "query" and v["datasource"] == DS, v
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        assert variable_promql(q)[1] == name, q

    panels = all_panels(d)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids: %r" % sorted(i for i in ids if ids.count(i) > 1)
    boxes = []
    for p in panels:
        g = p.get("gridPos")
        assert g and all(isinstance(g.get(k), int) for k in "xywh"), (p["id"], g)
        assert g["x"] >= 0 and g["y"] >= 0 and g["w"] > 0 and g["h"] > 0, (p["id"], g)
        assert g["x"] + g["w"] <= 24, "panel %d is wider than the grid: %r" % (p["id"], g)
        boxes.append((p["id"], g))
        if p["type"] == "row":
            assert g["w"] == 24 and g["h"] == 1, (p["title"], g)
            continue
        assert p.get("title"), p["id"]
        assert p.get("datasource") == DS, (p["id"], p.get("title"), p.get("datasource"))
        targets = p.get("targets") or []
        assert targets, "panel %d %r has no query" % (p["id"], p["title"])
        refs = [t.get("refId") for t in targets]
        assert len(refs) == len(set(refs)) and all(refs), (p["title"], refs)
        for t in targets:
            assert t.get("datasource", DS) == DS, (p["title"], t)
            assert t.get("expr", "").strip(), (p["title"], t)
    for a in d["annotations"]["list"]:
        if a.get("expr"):
            assert a["datasource"] == DS, a

    # rows are open (every panel is on the grid at once) and nothing overlaps
    top = d["panels"]
    assert not [p["title"] for p in top if p["type"] == "row" and (p.get("collapsed") or p.get("panels"))]
    for i, (ia, a) in enumerate(boxes):
        for ib, b in boxes[i + 1:]:
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
            assert apart, "panels %d %r and %d %r overlap" % (ia, a, ib, b)
    # each panel sits below its row and above the next one
    rows = [p for p in top if p["type"] == "row"]
    assert len(rows) >= 6, [r["title"] for r in rows]
    current = None
    for p in top:
        if p["type"] == "row":
            current = p
            continue
        assert current is not None, "panel %r before the first row" % p["title"]
        nxt = [r for r in rows if r["gridPos"]["y"] > current["gridPos"]["y"]]
        assert p["gridPos"]["y"] > current["gridPos"]["y"], (p["title"], current["title"])
        if nxt:
            assert p["gridPos"]["y"] + p["gridPos"]["h"] <= min(r["gridPos"]["y"] for r in nxt), \
                (p["title"], "runs into the row after", current["title"])
    titles = {r["title"] for r in rows}
    for want in ("Golden signals per service", "Endpoints", "BPF", "mTLS", "Agent health"):
        assert want in titles, (want, titles)


def test_names_have_a_type_in_the_sources():
    """Without a weftd: every name the dashboard reads is declared (`# TYPE`)
    by weftd's C sources, and rate()/histogram_quantile() fit the type."""
    d = load_dashboard()
    exp = source_exports()
    assert len(exp.types) > 50, "found few # TYPE lines in userspace/: %r" % sorted(exp.types)
    used = set()
    for where, text, kind in queries(d):
        p, _ = parse_query(text, kind)
        used |= {s.name for s in p.selectors}
    missing = sorted(n for n in used if exp.family(n)[0] is None)
    # a name written through a macro (SVC_COUNTER in admin/render.c) has no
    # literal `# TYPE name` line: it must at least be a string literal there
    src = source_text()
    missing = [n for n in missing if '"%s"' % n not in src]
    assert not missing, "not declared in userspace/**/*.c: %r" % missing
    # labels need the live check: most are written by helpers (ep_labels, metric_svc)
    problems = [x for x in check_against(exp, d, labels=False) if "is not a metric" not in x]
    assert not problems, "\n".join(problems)


def _substituted(text, kind, interval="5m"):
    """PromQL a Prometheus can run: Grafana's variables replaced (all values)."""
    if kind == "variable":
        promql, label = variable_promql(text)
        text = "group by (%s) (%s)" % (label, promql) if label else promql
    text = INTERVAL_VARS.sub(interval, text)
    return re.sub(r"\$\{?\w+\}?", ".*", text)


def test_promtool_parses_every_expression(tmp_path):
    """Prometheus' own parser accepts every expression (variables replaced)."""
    promtool = shutil.which("promtool")
    _need(promtool, "promtool not found (Debian package prometheus; scripts/deps.sh installs it)")
    qs = queries(load_dashboard())
    rules = {"groups": [{"name": "weft_dashboard", "rules": [
        {"record": "weft_dashboard:q%d" % i, "expr": _substituted(text, kind)}
        for i, (_, text, kind) in enumerate(qs)]}]}
    f = tmp_path / "rules.json"       # YAML is a superset of JSON
    f.write_text(json.dumps(rules, indent=1))
    r = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "promtool check rules:\n%s%s" % (r.stdout, r.stderr)
    assert "SUCCESS: %d rules found" % len(qs) in r.stdout, r.stdout


# --------------------------------------------------------------------------
# against a running weftd with every optional part

@pytest.fixture(scope="module")
def full(weft_module, tmp_path_factory):
    """weftd with HTTP (one endpoint answers 500: retries, 5xx, an ejection),
    TCP (one dead endpoint) and "auto" services, mTLS, Kubernetes discovery
    (kubeapi.py), tracing (to a dead collector) and one reload, after some
    traffic. -> (weftd, its /metrics text)."""
    _need(shutil.which("openssl"), "openssl not found (scripts/weft-ca and kubeapi.py need it): "
          "run `make deps`")
    h = weft_module
    pki = tmp_path_factory.mktemp("pki")
    ca = CertAuthority(str(pki / "ca"), "example.org")
    cert, key = ca.issue("spiffe://example.org/node/dash", str(pki / "node"))
    api = KubeAPI(h)
    api.start()
    api.upsert(api.node("node-dash", ["127.0.0.1"]))
    cg = h.cgroup(tag="dash")
    ok, bad = http_backend(h, "ok", "A"), http_backend(h, "fail", "F")
    echo = h.server("http", "T")
    v_http, v_tcp, v_auto = vip_addr(), vip_addr(), vip_addr()
    extra = (('kubernetes: { api = "%s"; token_file = "%s"; ca_file = "%s"; node_name = "node-dash"; };\n'
              % (api.url.rstrip("/"), api.token_file, api.ca_file))
             + tls_conf({"ca": ca.ca, "cert": cert, "key": key})
             + 'tracing = { collector = "%s"; sample_rate = 1.0; };\n' % dead_addr())
    d = h.weftd([cg], [service("web", [v_http], [ok.addr, bad.addr], protocol="http", attempts=2),
                       service("db", [v_tcp], [echo.addr, dead_addr()], protocol="tcp"),
                       service("auto", [v_auto], [ok.addr], protocol="auto")],
                extra_root=extra)
    res = http_requests(v_http, cg, n=10)
    assert res.get("statuses") == {"200": 10}, res
    for _ in range(3):
        h.client("http", v_tcp, cgroup=cg)
    assert http_requests(v_auto, cg, n=2).get("statuses") == {"200": 2}
    st, _, body = admin_call(d.admin, "POST", "/reload")
    assert st == 200, body

    def metrics():
        st, _, text = admin_call(d.admin, "GET", "/metrics")
        return text if st == 200 and 'weft_kubernetes_synced{kind="nodes"} 1' in text else None
    assert wait_for(metrics, 10), "no synced discovery on /metrics:\n%s" % d.log_tail()
    return d, metrics()


def test_every_query_reads_what_weftd_exports(full):
    """Names, labels, label values and types against a real /metrics."""
    _, text = full
    live = Exported()
    live.add_metrics_text(text)
    d = load_dashboard()
    used = {}
    for where, q, kind in queries(d):
        for sel in parse_query(q, kind)[0].selectors:
            used.setdefault(sel.name, where)
    # this weftd runs every optional part: each name must be on its /metrics
    absent = {n: w for n, w in used.items() if n not in live.names()}
    assert not absent, "read by the dashboard, not on /metrics: %r" % absent
    # labels and their values: from the samples, and from the sources for
    # families with no sample here
    live.add_source(source_text())
    problems = check_against(live, d)
    assert not problems, "\n".join(problems)
    # the labels the dashboard slices by were all checked above
    seen = set()
    for where, q, kind in queries(d):
        p, _ = parse_query(q, kind)
        seen |= {label for c in p.calls for label in c.grouping}
        seen |= {m[0] for sel in p.selectors for m in sel.matchers}
    assert {"service", "endpoint", "verdict", "result", "kind", "le", "instance"} <= seen, seen


def test_panels_follow_the_variables(full):
    """Every panel's selector is narrowed to $instance, and to $service when
    its metric has a service label (on this weftd's /metrics)."""
    _, text = full
    live = Exported()
    live.add_metrics_text(text)
    problems = []
    for where, q, kind in queries(load_dashboard()):
        if not where.startswith("panel"):
            continue
        for sel in Parsed(q).selectors:
            if ("instance", "=~", "$instance") not in sel.matchers:
                problems.append("%s: %s without instance=~\"$instance\"" % (where, sel.name))
            if "service" in live.labels_of(sel.name) and ("service", "=~", "$service") not in sel.matchers:
                problems.append("%s: %s without service=~\"$service\"" % (where, sel.name))
    assert not problems, "\n".join(problems)


def _prom_query(port, q, timeout=5):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b"{}")
    except (OSError, ValueError):
        return None


# series that need an event this test does not make (a peer's mTLS connection)
MAY_BE_EMPTY = ("weft_inbound_peer_connections_total",)


def test_real_prometheus_evaluates_every_query(full, weft, tmp_path):
    """A Prometheus scraping the weftd runs every expression without an error
    (vector matching, types) and finds series for each."""
    _need(os.access(PROMETHEUS, os.X_OK),
          "%s not found (Debian package prometheus; scripts/deps.sh installs it)" % PROMETHEUS)
    d, _ = full
    name = unique_name("promdash")
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: weft\n    static_configs:\n      - targets: ['%s']\n" % d.admin)
    port = free_port()
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as logf:
        p = wh.spawn([PROMETHEUS, "--config.file=%s" % conf, "--storage.tsdb.path=%s" % (tmp_path / "data"),
                      "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    weft._push("prometheus %s" % name, lambda: wh.stop_process(p, 5.0))

    def scraped_enough():
        assert p.poll() is None, "prometheus exited:\n%s" % log.read_text(errors="replace")[-3000:]
        r = _prom_query(port, "count_over_time(weft_ready[1m])")
        return r and r.get("status") == "success" and r["data"]["result"] \
            and float(r["data"]["result"][0]["value"][1]) >= 4
    assert wait_for(scraped_enough, 30, 0.3), "Prometheus did not scrape weftd 4 times in 30 s"

    errors, empty = [], []
    for where, text, kind in queries(load_dashboard()):
        q = _substituted(text, kind, interval="1m")
        r = _prom_query(port, q)
        if not r or r.get("status") != "success":
            errors.append("%s: %s -> %r" % (where, q, r))
        elif not r["data"]["result"] and not any(m in q for m in MAY_BE_EMPTY) \
                and not where.startswith("annotation"):
            empty.append("%s: %s" % (where, q))
    assert not errors, "\n".join(errors)
    assert not empty, "no series for:\n" + "\n".join(empty)
