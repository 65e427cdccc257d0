// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/admin/statwin.c: quantiles from histogram differences (a table,
 * then the empty and +Inf cases); windows over synthetic snapshots: known
 * HTTP traffic gives its rate, success rate and a p50 inside its bucket; a
 * burst after idleness is counted from its first period; TCP windows count
 * connections and connect failures; an endpoint that goes away takes nothing
 * away; an idle service gives its ring back; renderings (JSON parses as the
 * numbers say, the text table fits 80 columns).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/snapshot.h"
#include "admin/statwin.h"
#include "http/h1svc.h"
#include "lib/buf.h"
#include "state/service.h"

static void test_quantile(void **state)
{
	static const double bounds[] = { 0.1, 0.2, 0.4 };
	static const struct {
		uint64_t cum[3], total;
		double q, want;
	} cases[] = {
		{ { 10, 10, 10 }, 10, 0.5, 0.05 },   /* all in the first bucket: interpolated from 0 */
		{ { 0, 10, 10 }, 10, 0.5, 0.15 },    /* the middle of (0.1, 0.2] */
		{ { 0, 0, 10 }, 10, 0.99, 0.398 },   /* (0.2, 0.4] */
		{ { 50, 90, 100 }, 100, 0.9, 0.2 },  /* exactly at a bucket's top */
		{ { 50, 90, 100 }, 100, 0.95, 0.3 }, /* half of the last bucket */
		{ { 0, 0, 0 }, 4, 0.5, 0.4 },        /* all above the last bound: that bound */
	};
	uint64_t none[3] = { 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double got = statwin_quantile(bounds, cases[i].cum, 3, cases[i].total, cases[i].q);

		if (fabs(got - cases[i].want) > 1e-9)
			fail_msg("case %zu: got %g, want %g", i, got, cases[i].want);
	}
	assert_true(statwin_quantile(bounds, none, 3, 0, 0.5) < 0);
}

/* One HTTP service "web" with two endpoints, and a TCP service "db" with one. */
struct fake {
	struct snapshot s;
	struct snap_svc svcs[2];
	struct snap_ep web_eps[2], db_eps[1];
	struct snap_stat stats[1];
	struct snap_route route;
};

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->svcs[0].name = "web";
	f->svcs[0].protocol = CFG_PROTO_HTTP;
	f->svcs[0].http = true;
	f->svcs[0].eps = f->web_eps;
	f->svcs[0].n_eps = 2;
	snprintf(f->web_eps[0].addr, sizeof(f->web_eps[0].addr), "127.0.0.1:8081");
	snprintf(f->web_eps[1].addr, sizeof(f->web_eps[1].addr), "127.0.0.1:8082");
	f->svcs[1].name = "db";
	f->svcs[1].protocol = CFG_PROTO_TCP;
	f->svcs[1].eps = f->db_eps;
	f->svcs[1].n_eps = 1;
	snprintf(f->db_eps[0].addr, sizeof(f->db_eps[0].addr), "127.0.0.1:5432");
	f->stats[0].name = "web";
	f->stats[0].routes = &f->route;
	f->stats[0].n_routes = 1;
	f->s.svcs = f->svcs;
	f->s.n_svcs = 2;
	f->s.stats = f->stats;
	f->s.n_stats = 1;
}

/* n HTTP requests of duration d (seconds), bad of them 5xx, spread over web's endpoints. */
static void http_traffic(struct fake *f, uint64_t n, uint64_t bad, double d)
{
	size_t i;

	f->route.count += n;
	f->route.by_class[2] += n - bad;
	f->route.by_class[5] += bad;
	for (i = 0; i < H1_REQ_BUCKETS; i++)
		if (d <= h1_req_bounds[i])
			f->route.buckets[i] += n;
	f->web_eps[0].requests += n - n / 2;
	f->web_eps[1].requests += n / 2;
	f->web_eps[0].responses_5xx += bad;
	f->web_eps[0].opened += 1;
}

static void tcp_traffic(struct fake *f, uint64_t conns, uint64_t failed, double connect_s)
{
	size_t i;

	f->db_eps[0].opened += conns;
	f->db_eps[0].connect_errors[SVC_ERR_REFUSED] += failed;
	f->db_eps[0].lat_count += conns;
	for (i = 0; i < SVC_LAT_BUCKETS; i++)
		if (connect_s <= svc_lat_bounds[i])
			f->db_eps[0].lat_buckets[i] += conns;
}

static void sample_at(struct statwin *w, struct fake *f, double t)
{
	f->s.now = t;
	assert_int_equal(statwin_sample(w, &f->s), 0);
}

/* The "10s" or "1m" window of service name from GET /stat's JSON, as text to search. */
static char *window_json(struct statwin *w, struct fake *f, const char *name, bool wide)
{
	struct statwin_opts o = { .service = name, .wide = wide };
	struct buf out = { 0 };

	assert_true(statwin_render(w, &f->s, &o, false, &out));
	return out.p;
}

static double num_after(const char *json, const char *win, const char *key)
{
	const char *p = strstr(json, win), *k;
	char pat[64];

	assert_non_null(p);
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	k = strstr(p, pat);
	assert_non_null(k);
	k += strlen(pat);
	return strncmp(k, "null", 4) ? atof(k) : -1;
}

static void test_http_window(void **state)
{
	struct statwin *w = statwin_new();
	struct fake f;
	char *j;

	(void)state;
	fake_init(&f);
	sample_at(w, &f, 100);
	/* a burst right after start: 60 requests, 15 of them 503, each 30 ms */
	http_traffic(&f, 60, 15, 0.030);
	sample_at(w, &f, 102);
	j = window_json(w, &f, "web", false);
	assert_true(fabs(num_after(j, "\"10s\"", "seconds") - 2.0) < 1e-3);
	assert_true(fabs(num_after(j, "\"10s\"", "requests_per_s") - 30.0) < 1e-3);
	assert_true(fabs(num_after(j, "\"10s\"", "success_rate") - 0.75) < 1e-3);
	/* p50 inside the (25 ms, 50 ms] bucket */
	assert_true(num_after(j, "\"10s\"", "p50_ms") > 25 && num_after(j, "\"10s\"", "p50_ms") <= 50);
	free(j);
	/* 20 s of 10 good requests/s at 2 ms: the 10 s window sees only them, the 1 m window all */
	for (int k = 1; k <= 10; k++) {
		http_traffic(&f, 20, 0, 0.002);
		sample_at(w, &f, 102 + 2 * k);
	}
	j = window_json(w, &f, "web", false);
	assert_true(fabs(num_after(j, "\"10s\"", "seconds") - 10.0) < 1e-3);
	assert_true(fabs(num_after(j, "\"10s\"", "requests_per_s") - 10.0) < 1e-3);
	assert_true(fabs(num_after(j, "\"10s\"", "success_rate") - 1.0) < 1e-3);
	assert_true(num_after(j, "\"10s\"", "p99_ms") <= 2.5);
	assert_true(fabs(num_after(j, "\"1m\"", "seconds") - 22.0) < 1e-3);
	assert_true(fabs(num_after(j, "\"1m\"", "requests_per_s") - 260.0 / 22.0) < 1e-3);
	assert_true(fabs(num_after(j, "\"1m\"", "success_rate") - (1.0 - 15.0 / 260.0)) < 1e-3);
	free(j);
	statwin_free(w);
}

static void test_tcp_window_and_endpoint_churn(void **state)
{
	struct statwin *w = statwin_new();
	struct fake f;
	char *j;

	(void)state;
	fake_init(&f);
	sample_at(w, &f, 0);
	tcp_traffic(&f, 40, 10, 0.0008);
	sample_at(w, &f, 2);
	tcp_traffic(&f, 40, 0, 0.0008);
	sample_at(w, &f, 4);
	j = window_json(w, &f, "db", true);
	assert_true(fabs(num_after(j, "\"10s\"", "connections_per_s") - 20.0) < 1e-3);
	assert_true(fabs(num_after(j, "\"10s\"", "connect_success_rate") - 80.0 / 90.0) < 1e-3);
	assert_true(num_after(j, "\"10s\"", "requests_per_s") == 0);
	assert_true(num_after(j, "\"10s\"", "success_rate") < 0); /* no request: null */
	assert_non_null(strstr(j, "\"latency\":\"connect\""));
	assert_true(num_after(j, "\"10s\"", "p50_ms") > 0.5 && num_after(j, "\"10s\"", "p50_ms") <= 1);
	/* the endpoint's own window starts when the service became active (second sample) */
	assert_true(fabs(num_after(j, "\"endpoint_stats\"", "connections_per_s") - 20.0) < 1e-3);
	free(j);
	/* the endpoint goes (its counters with it), another comes with counters of its own */
	memset(&f.db_eps[0], 0, sizeof(f.db_eps[0]));
	snprintf(f.db_eps[0].addr, sizeof(f.db_eps[0].addr), "127.0.0.1:5433");
	tcp_traffic(&f, 5, 0, 0.0008);
	sample_at(w, &f, 6);
	tcp_traffic(&f, 10, 0, 0.0008);
	sample_at(w, &f, 8);
	j = window_json(w, &f, "db", false);
	/* nothing taken away, the new endpoint counted from its first sample on: 80 + 10 in 8 s */
	assert_true(fabs(num_after(j, "\"10s\"", "connections_per_s") - 90.0 / 8.0) < 1e-3);
	free(j);
	statwin_free(w);
}

static void test_idle_and_text(void **state)
{
	struct statwin *w = statwin_new();
	struct statwin_opts o = { .window_s = 10, .wide = true };
	struct buf out = { 0 };
	struct fake f;
	char *line, *save = NULL;
	int k;

	(void)state;
	fake_init(&f);
	f.svcs[0].name = "a-service-name-much-longer-than-the-column/that:80";
	f.stats[0].name = f.svcs[0].name;
	sample_at(w, &f, 0);
	http_traffic(&f, 10, 1, 0.004);
	sample_at(w, &f, 2);
	assert_true(statwin_render(w, &f.s, &o, true, &out));
	for (line = strtok_r(out.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strlen(line) > 80)
			fail_msg("line of %zu columns: '%s'", strlen(line), line);
	buf_free(&out);
	/* a whole ring without traffic: windows empty again ("-", null) */
	for (k = 2; k < 2 + STATWIN_SLOTS + 1; k++)
		sample_at(w, &f, 2 + 2 * k);
	line = window_json(w, &f, f.svcs[0].name, false);
	assert_true(num_after(line, "\"10s\"", "success_rate") < 0);
	free(line);
	/* traffic again: counted from its first period */
	http_traffic(&f, 8, 0, 0.004);
	sample_at(w, &f, 2 + 2 * (2 + STATWIN_SLOTS + 1)); /* the next period */
	line = window_json(w, &f, f.svcs[0].name, false);
	assert_true(fabs(num_after(line, "\"10s\"", "requests_per_s") - 4.0) < 1e-3);
	free(line);
	/* an unknown service: false, nothing written */
	o.service = "nope";
	assert_false(statwin_render(w, &f.s, &o, true, &out));
	assert_int_equal(out.len, 0);
	statwin_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantile),
		cmocka_unit_test(test_http_window),
		cmocka_unit_test(test_tcp_window_and_endpoint_churn),
		cmocka_unit_test(test_idle_and_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
