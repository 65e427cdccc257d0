// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/config.c: a full config and the defaults, then one failure case
 * per kind of mistake, each asserting the exact messages (file, line, key
 * path, reason, fix), then the limits, the error cap and loading from files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "config/config.h"
#include "config/config_render.h"

#define MAX_MSGS 12

static char *fmt_addr(const struct weft_sockaddr *a)
{
	static char buf[ADDR_STRLEN];

	return addr_format(a, buf, sizeof(buf));
}

/* Print what came back, so a failing case shows all of it. */
static void dump_errs(const struct cfg_errors *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		print_message("  got: %s\n", e->msgs[i]);
}

static struct weft_config *load_ok(const char *text)
{
	struct cfg_errors e = { 0 };
	struct weft_config *c = NULL;
	int r = cfg_load_string(text, "t.conf", &c, &e);

	if (r) {
		dump_errs(&e);
		fail_msg("config rejected (%d)", r);
	}
	assert_non_null(c);
	assert_int_equal(e.n, 0);
	cfg_errors_free(&e);
	return c;
}

/* Loads text expecting failure with exactly msgs (NULL-terminated), in order. */
static void expect_errors(const char *what, const char *text, const char *const *msgs)
{
	struct weft_config *sentinel = (struct weft_config *)&sentinel, *c = sentinel;
	struct cfg_errors e = { 0 };
	size_t n = 0, i;
	int r;

	while (msgs[n])
		n++;
	r = cfg_load_string(text, "t.conf", &c, &e);
	if (r != -EINVAL || e.n != n) {
		dump_errs(&e);
		fail_msg("%s: ret %d, %zu messages, want -EINVAL and %zu", what, r, e.n, n);
	}
	for (i = 0; i < n; i++) {
		if (strcmp(e.msgs[i], msgs[i])) {
			dump_errs(&e);
			fail_msg("%s: message %zu\n  want: %s\n  got:  %s", what, i, msgs[i], e.msgs[i]);
		}
	}
	assert_ptr_equal(c, sentinel); /* untouched on failure */
	cfg_errors_free(&e);
	assert_null(e.msgs);
	assert_int_equal(e.n, 0);
}

/* --- what parses ------------------------------------------------------------- */

static const char full_config[] =
	"# every key, none at its default\n"
	"agent: {\n"
	"  admin = \"127.0.0.1:9991\";\n"
	"  outbound_port = 15002;\n"
	"  inbound = \"[::]:4144\";\n"
	"  bpf_pin_path = \"/sys/fs/bpf/weft-test\";\n"
	"  fail_mode = \"closed\";\n"
	"  heartbeat_stale_ms = 5000;\n"
	"  mark = 0x1234;\n"
	"  log_level = \"debug\";\n"
	"  max_connections = 1048576;\n"
	"  buffer_size = 4096L;\n" /* int64 literals are integers too */
	"  drain_timeout_ms = 0; log_rate_limit = 0;\n"
	"};\n"
	"intercept: {\n"
	"  cgroups = [ \"/sys/fs/cgroup/system.slice/app.service\", \"system.slice/*.service\" ];\n"
	"};\n"
	"services = (\n"
	"  { name = \"web\";\n"
	"    addresses = [ \"127.10.0.1:80\", \"[fd00::1]:8080\" ];\n"
	"    protocol = \"http\";\n"
	"    balancer = \"round-robin\";\n"
	"    endpoints = ( { address = \"127.0.0.1:8081\"; weight = 1; },\n"
	"                  { address = \"198.18.0.2:8080\"; node = \"198.18.0.2:4143\"; weight = 1000; } );\n"
	"    timeouts = { connect_ms = 60000; idle_ms = 86400000; };\n"
	"    retry = { attempts = 10; };\n"
	"    circuit_breaker = { consecutive_failures = 0; base_ejection_ms = 100; max_ejection_ms = 100; max_ejection_percent = 100; };\n"
	"    limits = { max_connections = 1048576; max_pending = 1; };\n"
	"  },\n"
	"  { name = \"db.main_1-x\"; addresses = ( \"127.10.0.2:5432\" ); protocol = \"http2\"; balancer = \"least-conn\"; },\n"
	"  { name = \"0\"; addresses = [ \"127.10.0.3:1\" ]; protocol = \"auto\"; balancer = \"ewma\"; endpoints = (); }\n"
	");\n";

/* full_config plus a tls group (node endpoints need one); any readable regular file passes the parse */
static const char full_tls[] =
	"tls: { ca = \"/etc/passwd\"; cert = \"/etc/passwd\"; key = \"/etc/passwd\"; trust_domain = \"example.org\";\n"
	"       handshake_timeout_ms = 100; max_handshakes = 1; };\n"
	"identities = ( { cgroup = \"system.slice/*.service\"; identity = \"spiffe://example.org/ns/a/sa/b\";\n"
	"                 cert = \"/etc/passwd\"; key = \"/etc/passwd\"; } );\n";

/* A service's HTTP settings when it writes none (docs/config.md). */
static void check_http_defaults(const struct cfg_service *s)
{
	assert_int_equal(s->max_requests, 10000);
	assert_int_equal(s->detect_timeout_ms, 100);
	assert_int_equal(s->max_request_line, 8192);
	assert_int_equal(s->max_header_bytes, 65536);
	assert_int_equal(s->max_headers, 100);
	assert_int_equal(s->request_timeout_ms, 0); /* no total limit: stream_idle_ms bounds a stalled request */
	assert_int_equal(s->max_retry_body, 65536);
	assert_int_equal(s->pool_max_idle, 128);
	assert_int_equal(s->pool_idle_timeout_ms, 30000);
	assert_int_equal(s->head_timeout_ms, 10000);
	assert_int_equal(s->keepalive_idle_ms, 60000);
	assert_int_equal(s->stream_idle_ms, 300000);
	assert_int_equal(s->n_retry_on_status, 3);
	assert_int_equal(s->retry_on_status[0], 502);
	assert_int_equal(s->retry_on_status[1], 503);
	assert_int_equal(s->retry_on_status[2], 504);
	assert_true(s->retry_budget_ratio == 0.2);
	assert_int_equal(s->retry_budget_min_per_s, 10);
	assert_int_equal(s->retry_budget_window_s, 10);
	assert_int_equal(s->retry_backoff_base_ms, 25);
	assert_int_equal(s->retry_backoff_max_ms, 250);
	assert_int_equal(s->n_routes, 0);
	assert_null(s->routes);
}

/* tracing when the group is absent or empty: off, but path and service_name usable. */
static void check_tracing_defaults(const struct cfg_tracing *t)
{
	assert_false(t->enabled);
	assert_string_equal(t->path, "/api/v2/spans");
	assert_string_equal(t->service_name, "weft");
	assert_true(t->sample_rate == 1.0);
	assert_int_equal(t->queue_size, 4096);
	assert_int_equal(t->batch_size, 100);
	assert_int_equal(t->flush_ms, 1000);
}

static void test_full(void **state)
{
	char text[sizeof(full_config) + sizeof(full_tls)];
	struct weft_config *c;
	const struct cfg_service *s;

	snprintf(text, sizeof(text), "%s%s", full_config, full_tls);
	c = load_ok(text);

	assert_string_equal(c->path, "t.conf");
	assert_string_equal(fmt_addr(&c->admin), "127.0.0.1:9991");
	assert_int_equal(c->outbound_port, 15002);
	assert_string_equal(fmt_addr(&c->inbound), "[::]:4144");
	assert_string_equal(c->bpf_pin_path, "/sys/fs/bpf/weft-test");
	assert_int_equal(c->fail_mode, CFG_FAIL_CLOSED);
	assert_int_equal(c->heartbeat_stale_ms, 5000);
	assert_int_equal(c->mark, 0x1234);
	assert_int_equal(c->log_level, CFG_LOG_DEBUG);
	assert_int_equal(c->max_connections, 1048576);
	assert_int_equal(cfg_workload_cap(c), 1048576 / 4);
	assert_int_equal(c->buffer_size, 4096);
	assert_int_equal(c->drain_timeout_ms, 0);
	assert_int_equal(c->log_rate_limit, 0);

	assert_int_equal(c->n_cgroups, 2);
	assert_string_equal(c->cgroups[0], "/sys/fs/cgroup/system.slice/app.service");
	assert_string_equal(c->cgroups[1], "system.slice/*.service");

	assert_int_equal(c->n_services, 3);
	s = &c->services[0];
	assert_string_equal(s->name, "web");
	assert_int_equal(s->line, 19);
	assert_int_equal(s->n_addrs, 2);
	assert_string_equal(fmt_addr(&s->addrs[0]), "127.10.0.1:80");
	assert_string_equal(fmt_addr(&s->addrs[1]), "[fd00::1]:8080");
	assert_int_equal(s->protocol, CFG_PROTO_HTTP);
	assert_int_equal(s->balancer, CFG_BAL_ROUND_ROBIN);
	assert_int_equal(s->n_endpoints, 2);
	assert_string_equal(fmt_addr(&s->endpoints[0].addr), "127.0.0.1:8081");
	assert_int_equal(s->endpoints[0].weight, 1);
	assert_false(s->endpoints[0].has_node);
	assert_int_equal(s->endpoints[0].line, 23);
	assert_string_equal(fmt_addr(&s->endpoints[1].addr), "198.18.0.2:8080");
	assert_int_equal(s->endpoints[1].weight, 1000);
	assert_true(s->endpoints[1].has_node);
	assert_string_equal(fmt_addr(&s->endpoints[1].node), "198.18.0.2:4143");
	assert_int_equal(s->endpoints[1].line, 24);
	assert_int_equal(s->connect_timeout_ms, 60000);
	assert_int_equal(s->idle_timeout_ms, 86400000);
	assert_int_equal(s->retry_attempts, 10);
	assert_int_equal(s->cb_consecutive_failures, 0);
	assert_int_equal(s->cb_base_ejection_ms, 100);
	assert_int_equal(s->cb_max_ejection_ms, 100);
	assert_int_equal(s->cb_max_ejection_percent, 100);
	assert_int_equal(s->max_connections, 1048576);
	assert_int_equal(s->max_pending, 1);

	s = &c->services[1];
	assert_string_equal(s->name, "db.main_1-x");
	assert_int_equal(s->n_addrs, 1); /* a list ( ) of strings is fine too */
	assert_int_equal(s->protocol, CFG_PROTO_HTTP2);
	assert_int_equal(s->balancer, CFG_BAL_LEAST_CONN);
	assert_int_equal(s->n_endpoints, 0);
	assert_null(s->endpoints);
	/* service defaults */
	assert_int_equal(s->connect_timeout_ms, 1000);
	assert_int_equal(s->idle_timeout_ms, 0);
	assert_int_equal(s->retry_attempts, 3);
	assert_int_equal(s->cb_consecutive_failures, 5);
	assert_int_equal(s->cb_base_ejection_ms, 5000);
	assert_int_equal(s->cb_max_ejection_ms, 300000);
	assert_int_equal(s->cb_max_ejection_percent, 50);
	assert_int_equal(s->max_connections, 10000);
	assert_int_equal(s->max_pending, 1000);
	check_http_defaults(s);

	s = &c->services[2];
	assert_string_equal(s->name, "0");
	assert_int_equal(s->protocol, CFG_PROTO_AUTO);
	assert_int_equal(s->balancer, CFG_BAL_EWMA);
	assert_int_equal(s->n_endpoints, 0);

	assert_string_equal(c->tls_ca, "/etc/passwd");
	assert_string_equal(c->tls_trust_domain, "example.org");
	assert_int_equal(c->tls_handshake_timeout_ms, 100);
	assert_int_equal(c->tls_max_handshakes, 1);
	assert_int_equal(c->n_identities, 1);
	assert_string_equal(c->identities[0].identity, "spiffe://example.org/ns/a/sa/b");
	assert_string_equal(c->identities[0].cgroup, "system.slice/*.service");
	cfg_free(c);
}

static void check_defaults(const struct weft_config *c)
{
	assert_string_equal(fmt_addr(&c->admin), "127.0.0.1:9990");
	assert_int_equal(c->outbound_port, 15001);
	assert_string_equal(fmt_addr(&c->inbound), "0.0.0.0:4143");
	assert_string_equal(c->bpf_pin_path, "/sys/fs/bpf/weft");
	assert_int_equal(c->fail_mode, CFG_FAIL_OPEN);
	assert_int_equal(c->heartbeat_stale_ms, 3000);
	assert_int_equal(c->mark, 0x574546);
	assert_int_equal(c->log_level, CFG_LOG_INFO);
	assert_int_equal(c->max_connections, 65536);
	assert_int_equal(c->max_conns_per_workload, 0);
	assert_int_equal(cfg_workload_cap(c), 16384);
	assert_int_equal(c->buffer_memory_mb, 64);
	assert_int_equal(c->buffer_memory_workload_pct, 25);
	assert_int_equal(c->buffer_size, 65536);
	assert_int_equal(c->drain_timeout_ms, 10000);
	assert_int_equal(c->log_rate_limit, 10);
	assert_int_equal(c->workers, 0);
	assert_false(c->redirect_loopback);
	assert_true(c->splice);
	assert_int_equal(c->n_cgroups, 0);
	assert_null(c->cgroups);
	assert_int_equal(c->n_services, 0);
	assert_null(c->services);
	assert_null(c->tls_ca);
	check_tracing_defaults(&c->tracing);
}

static void test_defaults(void **state)
{
	static const char *const texts[] = {
		"",
		"# nothing but a comment\n",
		"agent: { };\nintercept: { };\nservices = ( );\n",
		"agent = { };\nintercept = { cgroups = [ ]; };\n",
		"intercept: { cgroups = ( ); };\n",
		"tracing: { };\n",
	};
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct weft_config *c = load_ok(texts[i]);

		check_defaults(c);
		cfg_free(c);
	}
}

/* Ranges are inclusive: each bound itself is accepted. */
static void test_bounds_accepted(void **state)
{
	struct weft_config *c;

	c = load_ok("agent: { outbound_port = 1; heartbeat_stale_ms = 1000; mark = 1; max_connections = 1;\n"
		    "  buffer_size = 4096; drain_timeout_ms = 600000; log_rate_limit = 100000; };\n"
		    "services = ( { name = \"a\"; addresses = [ \"1.2.3.4:65535\" ];\n"
		    "  endpoints = ( { address = \"5.6.7.8:1\"; weight = 1; } );\n"
		    "  timeouts = { connect_ms = 1; idle_ms = 0; }; retry = { attempts = 1; }; } );\n");
	assert_int_equal(c->outbound_port, 1);
	assert_int_equal(c->drain_timeout_ms, 600000);
	assert_int_equal(c->log_rate_limit, 100000);
	assert_int_equal(c->services[0].connect_timeout_ms, 1);
	assert_int_equal(c->services[0].retry_attempts, 1);
	cfg_free(c);

	c = load_ok("agent: { outbound_port = 65535; heartbeat_stale_ms = 60000; mark = 0x7fffffff;\n"
		    "  max_connections = 1048576; buffer_size = 4194304; };\n"
		    "services = ( { name = \"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123\";\n"
		    "  addresses = [ \"1.2.3.4:1\" ]; } );\n");
	assert_int_equal(c->outbound_port, 65535);
	assert_int_equal(c->mark, 0x7fffffff);
	assert_int_equal(c->buffer_size, 4194304);
	assert_int_equal(strlen(c->services[0].name), 63);
	cfg_free(c);

	/* a cap equal to the first ejection; unset keys keep their defaults */
	c = load_ok(
		"services = ( { name = \"a\"; addresses = [ \"1.2.3.4:1\" ];\n"
		"  circuit_breaker = { base_ejection_ms = 3600000; max_ejection_ms = 3600000; }; limits = { }; } );\n");
	assert_int_equal(c->services[0].cb_base_ejection_ms, 3600000);
	assert_int_equal(c->services[0].cb_max_ejection_ms, 3600000);
	assert_int_equal(c->services[0].cb_consecutive_failures, 5);
	assert_int_equal(c->services[0].cb_max_ejection_percent, 50);
	assert_int_equal(c->services[0].max_connections, 10000);
	assert_int_equal(c->services[0].max_pending, 1000);
	cfg_free(c);
}

static void test_names(void **state)
{
	assert_string_equal(cfg_protocol_name(CFG_PROTO_TCP), "tcp");
	assert_string_equal(cfg_protocol_name(CFG_PROTO_HTTP), "http");
	assert_string_equal(cfg_protocol_name(CFG_PROTO_HTTP2), "http2");
	assert_string_equal(cfg_protocol_name(CFG_PROTO_AUTO), "auto");
	assert_string_equal(cfg_protocol_name((enum cfg_protocol)42), "?");
	assert_string_equal(cfg_balancer_name(CFG_BAL_EWMA), "ewma");
	assert_string_equal(cfg_balancer_name(CFG_BAL_ROUND_ROBIN), "round-robin");
	assert_string_equal(cfg_balancer_name(CFG_BAL_LEAST_CONN), "least-conn");
	assert_string_equal(cfg_balancer_name((enum cfg_balancer)(-1)), "?");
	assert_string_equal(cfg_fail_mode_name(CFG_FAIL_OPEN), "open");
	assert_string_equal(cfg_fail_mode_name(CFG_FAIL_CLOSED), "closed");
	assert_string_equal(cfg_log_level_name(CFG_LOG_ERROR), "error");
	assert_string_equal(cfg_log_level_name(CFG_LOG_DEBUG), "debug");
}

/* --- HTTP: limits, retries, routes; tracing ------------------------------------- */

static const char http_config[] =
	"services = (\n"                                                                /* 1 */
	"  { name = \"web\"; addresses = [ \"127.10.0.1:80\" ]; protocol = \"http\";\n" /* 2 */
	"    endpoints = ( { address = \"127.0.0.1:8081\"; } );\n"                      /* 3 */
	"    limits = { max_requests = 1048576; };\n"                                   /* 4 */
	"    http = { detect_timeout_ms = 1; max_request_line = 256; max_header_bytes = 1024; max_headers = 8;\n"
	"             keepalive_idle_ms = 0; stream_idle_ms = 0; request_timeout_ms = 0; max_retry_body = 0; pool_max_idle = 0; pool_idle_timeout_ms = 100; head_timeout_ms = 0; };\n"
	"    retry = { attempts = 2; on_status = [ 500, 503 ]; budget_ratio = 1; budget_min_per_s = 0;\n" /* 7 */
	"              budget_window_s = 60; backoff_base_ms = 0; backoff_max_ms = 0; };\n"               /* 8 */
	"    routes = (\n"                                                                                /* 9 */
	"      { name = \"canary\";\n"                                                                    /* 10 */
	"        match = { method = \"GET\"; host = \"API.Example.com\"; path_prefix = \"/api/\";\n"      /* 11 */
	"                  headers = ( { name = \"X-Canary\"; value = \"1\"; }, { name = \"x-present\"; } ); };\n"
	"        backends = ( { service = \"web-v1\"; weight = 90; },\n"   /* 13 */
	"                     { service = \"web-v2\"; weight = 10; } );\n" /* 14 */
	"        timeout_ms = 2000; retryable = true;\n"                   /* 15 */
	"        request_headers = { add = ( { name = \"X-Via\"; value = \"weft\"; }, { name = \"x-e\"; value = \"\"; },\n"
	"                                    { name = \"x-tab\"; value = \"a\\tb\"; } );\n"          /* 17 */
	"                            remove = [ \"X-Internal\", \"x-debug\" ]; }; },\n"              /* 18 */
	"      { match = { path = \"/exact\"; method = \"PURGE\"; };\n"                              /* 19 */
	"        backends = ( { service = \"web\"; weight = 0; }, { service = \"web-v2\"; } ); },\n" /* 20 */
	"      { match = { }; request_headers = { }; },\n"                                           /* 21 */
	"      { }\n"                                                                                /* 22 */
	"    ); },\n"                                                                                /* 23 */
	"  { name = \"web-v1\"; addresses = [ \"127.10.0.2:80\" ]; endpoints = ( { address = \"127.0.0.1:8082\"; } ); },\n"
	"  { name = \"web-v2\"; addresses = [ \"127.10.0.3:80\" ]; http = { request_timeout_ms = 3600000; };\n"
	"    retry = { on_status = [ ]; budget_ratio = 0.5; budget_min_per_s = 100000; backoff_base_ms = 60000; backoff_max_ms = 60000; };\n"
	"    routes = ( { backends = ( { service = \"web-v2\"; } ); } ); }\n" /* 27 */
	");\n"
	"tracing = { collector = \"127.0.0.1:9411\"; path = \"/x\"; service_name = \"My svc 1\"; sample_rate = 0.25;\n"
	"  queue_size = 1; batch_size = 10000; flush_ms = 10; };\n";

static void test_http_routes(void **state)
{
	struct weft_config *c = load_ok(http_config);
	const struct cfg_service *s = &c->services[0];
	const struct cfg_route *r;

	assert_int_equal(s->max_requests, 1048576);
	assert_int_equal(s->detect_timeout_ms, 1);
	assert_int_equal(s->max_request_line, 256);
	assert_int_equal(s->max_header_bytes, 1024);
	assert_int_equal(s->max_headers, 8);
	assert_int_equal(s->request_timeout_ms, 0);
	assert_int_equal(s->max_retry_body, 0);
	assert_int_equal(s->pool_max_idle, 0);
	assert_int_equal(s->pool_idle_timeout_ms, 100);
	assert_int_equal(s->head_timeout_ms, 0);
	assert_int_equal(s->keepalive_idle_ms, 0);
	assert_int_equal(s->stream_idle_ms, 0);
	assert_int_equal(s->retry_attempts, 2);
	assert_int_equal(s->n_retry_on_status, 2);
	assert_int_equal(s->retry_on_status[0], 500);
	assert_int_equal(s->retry_on_status[1], 503);
	assert_true(s->retry_budget_ratio == 1.0); /* an integer is a number too */
	assert_int_equal(s->retry_budget_min_per_s, 0);
	assert_int_equal(s->retry_budget_window_s, 60);
	assert_int_equal(s->retry_backoff_base_ms, 0);
	assert_int_equal(s->retry_backoff_max_ms, 0);
	assert_int_equal(s->n_routes, 4);

	r = &s->routes[0];
	assert_string_equal(r->name, "canary");
	assert_int_equal(r->line, 10);
	assert_string_equal(r->method, "GET");
	assert_string_equal(r->host, "api.example.com"); /* lower-cased */
	assert_int_equal(r->path_kind, CFG_PATH_PREFIX);
	assert_string_equal(r->path, "/api/");
	assert_int_equal(r->n_match_headers, 2);
	assert_string_equal(r->match_headers[0].name, "x-canary");
	assert_string_equal(r->match_headers[0].value, "1");
	assert_string_equal(r->match_headers[1].name, "x-present");
	assert_null(r->match_headers[1].value); /* present, any value */
	assert_int_equal(r->n_backends, 2);
	assert_string_equal(r->backends[0].service, "web-v1");
	assert_int_equal(r->backends[0].index, 1);
	assert_int_equal(r->backends[0].weight, 90);
	assert_int_equal(r->backends[0].line, 13);
	assert_string_equal(r->backends[1].service, "web-v2");
	assert_int_equal(r->backends[1].index, 2);
	assert_int_equal(r->backends[1].weight, 10);
	assert_int_equal(r->timeout_ms, 2000);
	assert_true(r->retryable);
	assert_int_equal(r->n_add_headers, 3);
	assert_string_equal(r->add_headers[0].name, "x-via");
	assert_string_equal(r->add_headers[0].value, "weft");
	assert_string_equal(r->add_headers[1].name, "x-e");
	assert_string_equal(r->add_headers[1].value, "");
	assert_string_equal(r->add_headers[2].value, "a\tb");
	assert_int_equal(r->n_remove_headers, 2);
	assert_string_equal(r->remove_headers[0], "x-internal");
	assert_string_equal(r->remove_headers[1], "x-debug");

	r = &s->routes[1];
	assert_string_equal(r->name, "route1");  /* default: route<index> */
	assert_string_equal(r->method, "PURGE"); /* any token, case kept */
	assert_null(r->host);
	assert_int_equal(r->path_kind, CFG_PATH_EXACT);
	assert_string_equal(r->path, "/exact");
	assert_int_equal(r->n_backends, 2);
	assert_int_equal(r->backends[0].index, 0); /* the route's own service */
	assert_int_equal(r->backends[0].weight, 0);
	assert_int_equal(r->backends[1].index, 2);
	assert_int_equal(r->backends[1].weight, 1); /* default */
	assert_int_equal(r->timeout_ms, 0);         /* http.request_timeout_ms */
	assert_false(r->retryable);
	assert_int_equal(r->n_add_headers, 0);
	assert_int_equal(r->n_remove_headers, 0);

	/* an empty match and no backends: everything, to the service itself */
	r = &s->routes[2];
	assert_string_equal(r->name, "route2");
	assert_null(r->method);
	assert_int_equal(r->path_kind, CFG_PATH_ANY);
	assert_null(r->path);
	assert_int_equal(r->n_match_headers, 0);
	assert_int_equal(r->n_backends, 0);
	assert_null(r->backends);
	r = &s->routes[3];
	assert_string_equal(r->name, "route3");
	assert_int_equal(r->line, 22);

	s = &c->services[1];
	assert_string_equal(s->name, "web-v1");
	check_http_defaults(s);

	s = &c->services[2];
	assert_int_equal(s->request_timeout_ms, 3600000);
	assert_int_equal(s->n_retry_on_status, 0); /* [ ]: never on a status */
	assert_true(s->retry_budget_ratio == 0.5);
	assert_int_equal(s->retry_budget_min_per_s, 100000);
	assert_int_equal(s->retry_backoff_base_ms, 60000);
	assert_int_equal(s->retry_backoff_max_ms, 60000);
	assert_int_equal(s->n_routes, 1);
	assert_int_equal(s->routes[0].timeout_ms, 3600000); /* the service's own request timeout */
	assert_int_equal(s->routes[0].backends[0].index, 2);
	assert_string_equal(s->routes[0].name, "route0");

	assert_true(c->tracing.enabled);
	assert_string_equal(fmt_addr(&c->tracing.collector), "127.0.0.1:9411");
	assert_string_equal(c->tracing.path, "/x");
	assert_string_equal(c->tracing.service_name, "My svc 1");
	assert_true(c->tracing.sample_rate == 0.25);
	assert_int_equal(c->tracing.queue_size, 1);
	assert_int_equal(c->tracing.batch_size, 10000);
	assert_int_equal(c->tracing.flush_ms, 10);
	cfg_free(c);

	/* tracing bounds the other way, integers for the rate */
	c = load_ok(
		"tracing = { collector = \"[::1]:9411\"; sample_rate = 0; queue_size = 1048576; batch_size = 1; flush_ms = 60000;\n"
		"  service_name = \"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123\"; path = \"/a/b?c=d\"; };\n");
	assert_true(c->tracing.enabled);
	assert_true(c->tracing.sample_rate == 0.0);
	assert_int_equal(c->tracing.queue_size, 1048576);
	assert_int_equal(c->tracing.batch_size, 1);
	assert_int_equal(c->tracing.flush_ms, 60000);
	assert_string_equal(c->tracing.path, "/a/b?c=d");
	cfg_free(c);

	/* tracing without a collector: off, the rest kept */
	c = load_ok("tracing = { sample_rate = 1; service_name = \"edge\"; };\n");
	assert_false(c->tracing.enabled);
	assert_true(c->tracing.sample_rate == 1.0);
	assert_string_equal(c->tracing.service_name, "edge");
	assert_string_equal(c->tracing.path, "/api/v2/spans");
	cfg_free(c);

	/* the upper bounds of the http group and of the retry budget */
	c = load_ok(
		"services = ( { name = \"a\"; addresses = [ \"1.2.3.4:1\" ]; protocol = \"auto\";\n"
		"  http = { detect_timeout_ms = 10000; max_request_line = 1048576; max_header_bytes = 1048576; max_headers = 1000;\n"
		"    request_timeout_ms = 3600000; max_retry_body = 16777216; pool_max_idle = 10000; pool_idle_timeout_ms = 3600000;\n"
		"    keepalive_idle_ms = 86400000; stream_idle_ms = 86400000; };\n"
		"  retry = { budget_ratio = 1000.0; budget_window_s = 1; on_status = ( 100, 599 ); }; limits = { max_requests = 1; }; } );\n");
	s = &c->services[0];
	assert_int_equal(s->detect_timeout_ms, 10000);
	assert_int_equal(s->max_request_line, 1048576);
	assert_int_equal(s->max_header_bytes, 1048576);
	assert_int_equal(s->max_headers, 1000);
	assert_int_equal(s->max_retry_body, 16777216);
	assert_int_equal(s->pool_max_idle, 10000);
	assert_int_equal(s->pool_idle_timeout_ms, 3600000);
	assert_int_equal(s->keepalive_idle_ms, 86400000);
	assert_int_equal(s->stream_idle_ms, 86400000);
	assert_true(s->retry_budget_ratio == 1000.0);
	assert_int_equal(s->retry_budget_window_s, 1);
	assert_int_equal(s->n_retry_on_status, 2);
	assert_int_equal(s->retry_on_status[1], 599);
	assert_int_equal(s->max_requests, 1);
	cfg_free(c);
}

/* GET /config shows the routes, the http and retry settings and tracing as parsed. */
static void test_http_render(void **state)
{
	struct weft_config *c = load_ok(http_config);
	struct buf b = { 0 };
	static const char *const want[] = {
		"\"retry\":{\"attempts\":2,\"on_status\":[500,503],\"budget_ratio\":1,\"budget_min_per_s\":0,"
		"\"budget_window_s\":60,\"backoff_base_ms\":0,\"backoff_max_ms\":0},"
		"\"limits\":{\"max_connections\":10000,\"max_pending\":1000,\"max_requests\":1048576},"
		"\"http\":{\"detect_timeout_ms\":1,\"max_request_line\":256,\"max_header_bytes\":1024,\"max_headers\":8,"
		"\"request_timeout_ms\":0,\"max_retry_body\":0,\"pool_max_idle\":0,\"pool_idle_timeout_ms\":100,\"head_timeout_ms\":0,"
		"\"keepalive_idle_ms\":0,\"stream_idle_ms\":0},\"routes\":["
		"{\"name\":\"canary\",\"match\":{\"method\":\"GET\",\"host\":\"api.example.com\",\"path\":null,\"path_prefix\":\"/api/\","
		"\"headers\":[{\"name\":\"x-canary\",\"value\":\"1\"},{\"name\":\"x-present\",\"value\":null}]},"
		"\"backends\":[{\"service\":\"web-v1\",\"weight\":90},{\"service\":\"web-v2\",\"weight\":10}],"
		"\"timeout_ms\":2000,\"retryable\":true,\"request_headers\":{\"add\":[{\"name\":\"x-via\",\"value\":\"weft\"},"
		"{\"name\":\"x-e\",\"value\":\"\"},{\"name\":\"x-tab\",\"value\":\"a\\tb\"}],\"remove\":[\"x-internal\",\"x-debug\"]}},"
		"{\"name\":\"route1\",\"match\":{\"method\":\"PURGE\",\"host\":null,\"path\":\"/exact\",\"path_prefix\":null,\"headers\":[]},",
		"{\"name\":\"route3\",\"match\":{\"method\":null,\"host\":null,\"path\":null,\"path_prefix\":null,\"headers\":[]},"
		"\"backends\":[],\"timeout_ms\":0,\"retryable\":false,\"request_headers\":{\"add\":[],\"remove\":[]}}]}",
		"\"retry\":{\"attempts\":3,\"on_status\":[],\"budget_ratio\":0.5,",
		"\"retry\":{\"attempts\":3,\"on_status\":[502,503,504],\"budget_ratio\":0.2,\"budget_min_per_s\":10,"
		"\"budget_window_s\":10,\"backoff_base_ms\":25,\"backoff_max_ms\":250}",
		"\"tracing\":{\"enabled\":true,\"collector\":\"127.0.0.1:9411\",\"path\":\"/x\",\"service_name\":\"My svc 1\","
		"\"sample_rate\":0.25,\"queue_size\":1,\"batch_size\":10000,\"flush_ms\":10},",
		"\"kubernetes\":{\"enabled\":false,\"api\":null,\"token_file\":"
		"\"/var/run/secrets/kubernetes.io/serviceaccount/token\",\"ca_file\":"
		"\"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt\",\"node_name\":null,\"namespaces\":[]}}\n",
	};
	size_t i;

	cfg_render_json(c, &b);
	buf_add(&b, "", 1);
	assert_false(buf_failed(&b));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(b.p, want[i]))
			fail_msg("rendered config lacks\n  %s\nin\n  %s", want[i], b.p);
	buf_free(&b);
	cfg_free(c);

	c = load_ok("");
	cfg_render_json(c, &b);
	buf_add(&b, "", 1);
	if (!strstr(b.p,
		    "\"tracing\":{\"enabled\":false,\"collector\":null,\"path\":\"/api/v2/spans\",\"service_name\":\"weft\","
		    "\"sample_rate\":1,\"queue_size\":4096,\"batch_size\":100,\"flush_ms\":1000},\"kubernetes\":"))
		fail_msg("default tracing not rendered: %s", b.p);
	buf_free(&b);
	cfg_free(c);
}

/* --- what does not, and what it says ------------------------------------------ */

struct fail_case {
	const char *what;
	const char *text;
	const char *msgs[MAX_MSGS];
};

#define SVC(body) "services = (\n  { name = \"web\"; addresses = [ \"127.10.0.1:80\" ];\n" body "  }\n);\n"
/* routes of service 'web' (services[1]; line 5 is the first route), with 'web-v1' to route to */
#define ROUTES(body)                                                                                         \
	"services = (\n  { name = \"web-v1\"; addresses = [ \"127.10.0.2:80\" ]; },\n"                       \
	"  { name = \"web\"; addresses = [ \"127.10.0.1:80\" ]; protocol = \"http\";\n    routes = (\n" body \
	"    ); }\n);\n"

static const struct fail_case fail_cases[] = {
	/* syntax: libconfig's own errors */
	{ "missing value",
	  "agent: {\n  outbound_port = ;\n  admin = \"127.0.0.1:1\";\n};\n",
	  { "t.conf:2: syntax error: unexpected text; look for a missing ';', '=', quote or bracket, or a ',' before ']' or ')', here or on the line before" } },
	{ "trailing comma",
	  "intercept: { cgroups = [ \"a\", ]; };\n",
	  { "t.conf:1: syntax error: unexpected text; look for a missing ';', '=', quote or bracket, or a ',' before ']' or ')', here or on the line before" } },
	{ "unterminated string",
	  "agent: {\n  admin = \"127.0.0.1:1;\n};\n",
	  { "t.conf:4: syntax error: unexpected text; look for a missing ';', '=', quote or bracket, or a ',' before ']' or ')', here or on the line before" } },
	{ "duplicate key",
	  "agent: {\n  mark = 1;\n  mark = 2;\n};\n",
	  { "t.conf:3: syntax error: duplicate setting name; a key may appear only once in a group" } },
	{ "mixed array",
	  "intercept: { cgroups = [ \"a\", 1 ]; };\n",
	  { "t.conf:1: syntax error: mismatched element type in array; the elements of [ ... ] must all have one type" } },
	{ "@include",
	  "agent: { };\n  @include \"/etc/passwd\"\n@include \"x\"\n",
	  { "t.conf:2: @include is not supported; put the whole configuration in one file",
	    "t.conf:3: @include is not supported; put the whole configuration in one file" } },

	/* unknown keys */
	{ "typo in agent",
	  "agent: {\n  outbnd_port = 15001;\n};\n",
	  { "t.conf:2: agent.outbnd_port: unknown key; did you mean 'outbound_port'?" } },
	{ "unknown top-level key",
	  "\nfrobnicate = 1;\n",
	  { "t.conf:2: frobnicate: unknown key; valid keys are agent, intercept, services, tls, identities, tracing, kubernetes" } },
	{ "typo at top level", "service = ( );\n", { "t.conf:1: service: unknown key; did you mean 'services'?" } },
	{ "wrong case", "Agent: { };\n", { "t.conf:1: Agent: unknown key; did you mean 'agent'?" } },
	{ "unknown in intercept",
	  "intercept: { cgroup = [ \"a\" ]; paths = [ \"b\" ]; };\n",
	  { "t.conf:1: intercept.cgroup: unknown key; did you mean 'cgroups'?",
	    "t.conf:1: intercept.paths: unknown key; valid keys are cgroups" } },
	{ "unknown in service",
	  SVC("    adresses = [ \"127.10.0.2:80\" ];\n    route = ( );\n    frobs = 1;\n"),
	  { "t.conf:3: services[0].adresses: unknown key; did you mean 'addresses'?",
	    "t.conf:4: services[0].route: unknown key; did you mean 'routes'?",
	    "t.conf:5: services[0].frobs: unknown key; valid keys are name, addresses, protocol, balancer, endpoints, timeouts, retry, authorization, circuit_breaker, limits, http, routes, endpoints_from, failover" } },
	{ "unknown in circuit_breaker and limits",
	  SVC("    circuit_breaker = { consecutive_failure = 3; };\n    limits = { max_conns = 5; };\n"),
	  { "t.conf:3: services[0].circuit_breaker.consecutive_failure: unknown key; did you mean 'consecutive_failures'?",
	    "t.conf:4: services[0].limits.max_conns: unknown key; valid keys are max_connections, max_pending, max_requests" } },
	{ "unknown in endpoint",
	  SVC("    endpoints = ( { address = \"127.0.0.1:1\"; wieght = 2; } );\n"),
	  { "t.conf:3: services[0].endpoints[0].wieght: unknown key; did you mean 'weight'?" } },
	{ "endpoints and endpoints_from",
	  SVC("    endpoints = ( { address = \"127.0.0.1:1\"; } );\n    endpoints_from = { file = \"/e/api\"; };\n"),
	  { "t.conf:4: services[0].endpoints_from: the service also lists endpoints; take its endpoints from the file "
	    "(endpoints) or from endpoints_from, not both" } },
	{ "endpoints_from: no kind, two kinds, unknown key",
	  SVC("    endpoints_from = ( { port = 80; },\n      { dns = \"a.b\"; file = \"/x\"; },\n"
	      "      { dns = \"a.b\"; port = 1; ttl = 5; } );\n"),
	  { "t.conf:3: services[0].endpoints_from[0]: say where the endpoints come from: dns = \"api.internal\"; "
	    "port = 8080; or dns_srv = \"_api._tcp.internal\"; or file = \"/etc/weft/endpoints/api.conf\";",
	    "t.conf:4: services[0].endpoints_from[1]: both dns and file; one source per entry: list several as "
	    "endpoints_from = ( { ... }, { ... } );",
	    "t.conf:5: services[0].endpoints_from[2].ttl: unknown key; valid keys are dns, dns_srv, file, port, family, "
	    "zone, weight, priority, refresh_min_ms, refresh_max_ms" } },
	{ "endpoints_from: dns needs a port, names and paths are checked",
	  SVC("    endpoints_from = ( { dns = \"api.internal\"; },\n      { dns = \"api..internal\"; port = 80; },\n"
	      "      { dns_srv = \"_a._tcp.x\"; port = 80; weight = 2; },\n      { file = \"rel/path\"; },\n"
	      "      { file = \"/x/y\"; zone = \"a\"; } );\n"),
	  { "t.conf:3: services[0].endpoints_from[0]: missing required key 'port' for dns; write port = 8080; (A and "
	    "AAAA records carry no port; dns_srv uses SRV records, which do)",
	    "t.conf:4: services[0].endpoints_from[1].dns: 'api..internal' has an empty label (two dots, or a leading "
	    "dot); write a host name such as \"api.internal\" (the port goes in port)",
	    "t.conf:5: services[0].endpoints_from[2].port: not for dns_srv: the SRV records give each endpoint's port, "
	    "weight and priority",
	    "t.conf:5: services[0].endpoints_from[2].weight: not for dns_srv: the SRV records give each endpoint's "
	    "port, weight and priority",
	    "t.conf:6: services[0].endpoints_from[3].file: 'rel/path' is not an absolute path; write the file's "
	    "absolute path, e.g. \"/etc/weft/endpoints/api.conf\"",
	    "t.conf:7: services[0].endpoints_from[4].zone: not for a file source: each line of the file gives its "
	    "endpoint's address, weight, zone and priority, and changes are seen at once" } },
	{ "endpoints_from: ranges, family, zone, duplicates",
	  SVC("    endpoints_from = ( { dns = \"a.x\"; port = 80; refresh_min_ms = 5000; refresh_max_ms = 2000; },\n"
	      "      { dns = \"b.x\"; port = 80; family = \"v6\"; zone = \"eu west\"; },\n"
	      "      { dns = \"a.x\"; port = 80; } );\n"),
	  { "t.conf:3: services[0].endpoints_from[0].refresh_max_ms: 2000 is below refresh_min_ms (5000); TTLs are "
	    "held between the two",
	    "t.conf:4: services[0].endpoints_from[1].family: unknown value 'v6'; valid values are \"any\", \"ipv4\", "
	    "\"ipv6\"",
	    "t.conf:4: services[0].endpoints_from[1].zone: 'eu west' has a character other than A-Z, a-z, 0-9, '.', "
	    "'_', '-'; write a zone name such as \"eu-west-1a\"",
	    "t.conf:5: services[0].endpoints_from[2]: 'a.x' is already services[0].endpoints_from[0] (line 3); list "
	    "each source once" } },
	{ "endpoints_from: not a group",
	  SVC("    endpoints_from = \"api.internal\";\n"),
	  { "t.conf:3: services[0].endpoints_from: expected a group { dns = \"name\"; port = 80; } or a list of "
	    "them, got a string" } },
	{ "endpoint zone and priority, failover, agent zone and DNS servers",
	  "agent: { zone = \"-a\"; dns_servers = [ \"127.0.0.1\" ]; dns_timeout_ms = 50; };\n" SVC(
		  "    endpoints = ( { address = \"127.0.0.1:1\"; zone = \"\"; priority = 70000; } );\n"
		  "    failover = { overprovisioning = 0.5; };\n"),
	  { "t.conf:1: agent.zone: '-a' does not start with a letter or digit; write this node's zone, e.g. "
	    "\"eu-west-1a\"",
	    "t.conf:1: agent.dns_servers[0]: '127.0.0.1' has no port; write it as host:port",
	    "t.conf:1: agent.dns_timeout_ms: 50 is out of range (100-30000)",
	    "t.conf:4: services[0].endpoints[0].priority: 70000 is out of range (0-65535)",
	    "t.conf:4: services[0].endpoints[0].zone: '' is empty; write a zone name such as \"eu-west-1a\"",
	    "t.conf:5: services[0].failover.overprovisioning: 0.5 is out of range (1-10)" } },
	{ "unknown in timeouts",
	  SVC("    timeouts = { connect = 5; };\n"),
	  { "t.conf:3: services[0].timeouts.connect: unknown key; valid keys are connect_ms, idle_ms" } },
	{ "unknown in retry",
	  SVC("    retry = { attempt = 2; budget = 0; };\n"),
	  { "t.conf:3: services[0].retry.attempt: unknown key; did you mean 'attempts'?",
	    "t.conf:3: services[0].retry.budget: unknown key; valid keys are attempts, on_status, budget_ratio, budget_min_per_s, budget_window_s, backoff_base_ms, backoff_max_ms" } },

	/* wrong types */
	{ "string for integer",
	  "agent: {\n  outbound_port = \"15001\";\n};\n",
	  { "t.conf:2: agent.outbound_port: expected an integer, got a string" } },
	{ "float for integer",
	  "agent: { heartbeat_stale_ms = 3000.0; };\n",
	  { "t.conf:1: agent.heartbeat_stale_ms: expected an integer, got a float" } },
	{ "boolean for integer",
	  "agent: { mark = true; };\n",
	  { "t.conf:1: agent.mark: expected an integer, got a boolean" } },
	{ "array for integer",
	  "agent: { max_connections = [ 1 ]; };\n",
	  { "t.conf:1: agent.max_connections: expected an integer, got an array [...]" } },
	{ "integer for group",
	  "agent = 5;\n",
	  { "t.conf:1: agent: expected a group {...}, got an integer; write agent = { ... };" } },
	{ "list for group",
	  "tls = ( );\n",
	  { "t.conf:1: tls: expected a group {...}, got a list (...); write tls = { ... };" } },
	{ "group for services",
	  "services = { };\n",
	  { "t.conf:1: services: expected a list ( { name = \"...\"; addresses = [ ... ]; }, ... ), got a group {...}" } },
	{ "array for services",
	  "services = [ ];\n",
	  { "t.conf:1: services: expected a list ( { name = \"...\"; addresses = [ ... ]; }, ... ), got an array [...]" } },
	{ "string for service",
	  "services = ( { name = \"a\"; addresses = [ \"1.2.3.4:5\" ]; },\n  \"web\" );\n",
	  { "t.conf:2: services[1]: expected a group { name = \"...\"; addresses = [ ... ]; }, got a string" } },
	{ "integer for address",
	  "agent: { admin = 9990; };\n",
	  { "t.conf:1: agent.admin: expected a string \"ip:port\", got an integer" } },
	{ "integer for enum",
	  "agent: { fail_mode = 1; };\n",
	  { "t.conf:1: agent.fail_mode: expected a string, got an integer" } },
	{ "string for path",
	  "agent: { bpf_pin_path = 1; };\n",
	  { "t.conf:1: agent.bpf_pin_path: expected a string, got an integer" } },
	{ "string for cgroups",
	  "intercept: { cgroups = \"a\"; };\n",
	  { "t.conf:1: intercept.cgroups: expected an array [...], got a string; write cgroups = [ \"system.slice/app.service\" ];" } },
	{ "integer in cgroups",
	  "intercept: { cgroups = [ 1, 2 ]; };\n",
	  { "t.conf:1: intercept.cgroups[0]: expected a string (a cgroup path or glob), got an integer",
	    "t.conf:1: intercept.cgroups[1]: expected a string (a cgroup path or glob), got an integer" } },
	{ "string for addresses",
	  "services = ( { name = \"a\"; addresses = \"127.10.0.1:80\"; } );\n",
	  { "t.conf:1: services[0].addresses: expected an array [...], got a string; write addresses = [ \"127.10.0.1:80\" ];" } },
	{ "integer in addresses",
	  "services = ( { name = \"a\"; addresses = [ 80 ]; } );\n",
	  { "t.conf:1: services[0].addresses[0]: expected a string \"ip:port\", got an integer" } },
	{ "integer for name",
	  "services = ( { name = 5; addresses = [ \"1.2.3.4:5\" ]; } );\n",
	  { "t.conf:1: services[0].name: expected a string, got an integer" } },
	{ "group for endpoints",
	  SVC("    endpoints = { address = \"127.0.0.1:1\"; };\n"),
	  { "t.conf:3: services[0].endpoints: expected a list ( { address = \"ip:port\"; }, ... ), got a group {...}" } },
	{ "string for endpoint",
	  SVC("    endpoints = ( \"127.0.0.1:1\" );\n"),
	  { "t.conf:3: services[0].endpoints[0]: expected a group { address = \"ip:port\"; }, got a string" } },
	{ "integer for timeouts",
	  SVC("    timeouts = 5;\n"),
	  { "t.conf:3: services[0].timeouts: expected a group {...}, got an integer; write timeouts = { ... };" } },
	{ "float for weight",
	  SVC("    endpoints = ( { address = \"127.0.0.1:1\"; weight = 0.5; } );\n"),
	  { "t.conf:3: services[0].endpoints[0].weight: expected an integer, got a float" } },

	/* out of range */
	{ "port too big",
	  "agent: { outbound_port = 70000; };\n",
	  { "t.conf:1: agent.outbound_port: 70000 is out of range (1-65535)" } },
	{ "port zero",
	  "agent: { outbound_port = 0; };\n",
	  { "t.conf:1: agent.outbound_port: 0 is out of range (1-65535)" } },
	{ "heartbeat",
	  "agent: { heartbeat_stale_ms = 999; };\n",
	  { "t.conf:1: agent.heartbeat_stale_ms: 999 is out of range (1000-60000)" } },
	{ "mark zero", "agent: { mark = 0; };\n", { "t.conf:1: agent.mark: 0 is out of range (1-2147483647)" } },
	{ "log rate limit",
	  "agent: { log_rate_limit = 100001; };\n",
	  { "t.conf:1: agent.log_rate_limit: 100001 is out of range (0-100000)" } },
	{ "log rate limit negative",
	  "agent: { log_rate_limit = -1; };\n",
	  { "t.conf:1: agent.log_rate_limit: -1 is out of range (0-100000)" } },
	{ "mark hex",
	  "agent: { mark = 0x80000000; };\n",
	  { "t.conf:1: agent.mark: 0x80000000 is out of range (0x1-0x7fffffff)" } },
	/* libconfig 1.5 keeps 32 bits of this: it must not come out as 1 */
	{ "wide integer",
	  "agent: { max_connections = 4294967297; };\n",
	  { "t.conf:1: agent.max_connections: 4294967297 is out of range (1-1048576)" } },
	{ "node endpoint without tls",
	  "services = ( { name = \"w\"; addresses = [ \"127.10.0.1:80\" ];\n"
	  "  endpoints = ( { address = \"198.18.0.2:80\"; node = \"198.18.0.2:4143\"; } ); } );\n",
	  { "t.conf:2: services[0].endpoints[0].node: needs the tls group (ca, cert, key): other nodes are reached over mutual TLS" } },
	{ "authorization entries",
	  "services = ( { name = \"w\"; addresses = [ \"127.10.0.1:80\" ];\n"
	  "  authorization = { allow = ( \"web\", 3 ); deny = 1; }; } );\n",
	  { "t.conf:2: services[0].authorization.deny: unknown key; valid keys are allow",
	    "t.conf:2: services[0].authorization.allow[0]: 'web' is not a SPIFFE ID or glob; write \"spiffe://<trust domain>/...\"",
	    "t.conf:2: services[0].authorization.allow[1]: expected a string (a SPIFFE ID or glob), got an integer" } },
	{ "identities without tls and bad ids",
	  "identities = ( { cgroup = \"a\"; identity = \"spiffe://Example.org/x\"; cert = \"/etc/passwd\"; key = \"/etc/passwd\"; },\n"
	  "  { identity = \"spiffe://example.org/x\"; cert = \"/nonexistent\"; } );\n",
	  { "t.conf:1: identities: needs the tls group (ca, cert, key): identities are proven with certificates",
	    "t.conf:1: identities[0].identity: 'spiffe://Example.org/x' is not a valid SPIFFE ID: trust domain has uppercase 'E'; SPIFFE trust domains are lowercase",
	    "t.conf:2: identities[1]: missing required key 'cgroup'; write the cgroup path or glob of the workload",
	    "t.conf:2: identities[1].cert: cannot read '/nonexistent': No such file or directory",
	    "t.conf:2: identities[1]: missing required key 'key'; write the path of a PEM file" } },
	{ "minted identity without issuer",
	  "tls: { ca = \"/etc/passwd\"; cert = \"/etc/passwd\"; key = \"/etc/passwd\"; issuer_key = \"/etc/passwd\"; };\n"
	  "identities = ( { cgroup = \"a\"; identity = \"spiffe://example.org/x\"; } );\n",
	  { "t.conf:1: tls: issuer_cert and issuer_key go together (the CA that mints identity certificates)",
	    "t.conf:2: identities[0]: give cert and key, or set tls.issuer_cert and tls.issuer_key to mint this identity's certificate" } },
	{ "tls trust domain and ranges",
	  "tls: { ca = \"/etc/passwd\"; cert = \"/etc/passwd\"; key = \"/etc/passwd\"; trust_domain = \"a b\"; max_handshakes = 0; };\n",
	  { "t.conf:1: tls.trust_domain: 'a b' trust domain has byte 0x20; only a-z, 0-9, '.', '-' and '_' are allowed",
	    "t.conf:1: tls.max_handshakes: 0 is out of range (1-65536)" } },
	{ "workers range", "agent: { workers = 65; };\n", { "t.conf:1: agent.workers: 65 is out of range (0-64)" } },
	{ "workload cap range",
	  "agent: { max_connections_per_workload = -1; };\n",
	  { "t.conf:1: agent.max_connections_per_workload: -1 is out of range (0-1048576)" } },
	{ "memory budget range",
	  "agent: { buffer_memory_mb = 0; };\n",
	  { "t.conf:1: agent.buffer_memory_mb: 0 is out of range (1-65536)" } },
	{ "memory share range",
	  "agent: { buffer_memory_per_workload_pct = 101; };\n",
	  { "t.conf:1: agent.buffer_memory_per_workload_pct: 101 is out of range (1-100)" } },
	{ "bool type",
	  "agent: { redirect_loopback = 1; };\n",
	  { "t.conf:1: agent.redirect_loopback: expected true or false, got an integer" } },
	{ "wide negative",
	  "agent: { drain_timeout_ms = -4294967295; };\n",
	  { "t.conf:1: agent.drain_timeout_ms: -4294967295 is out of range (0-600000)" } },
	{ "negative",
	  "agent: { drain_timeout_ms = -1; };\n",
	  { "t.conf:1: agent.drain_timeout_ms: -1 is out of range (0-600000)" } },
	{ "agent bounds",
	  "agent: {\n  max_connections = 1048577;\n  buffer_size = 4095;\n  drain_timeout_ms = 600001;\n  heartbeat_stale_ms = 60001;\n};\n",
	  { "t.conf:2: agent.max_connections: 1048577 is out of range (1-1048576)",
	    "t.conf:3: agent.buffer_size: 4095 is out of range (4096-4194304)",
	    "t.conf:4: agent.drain_timeout_ms: 600001 is out of range (0-600000)",
	    "t.conf:5: agent.heartbeat_stale_ms: 60001 is out of range (1000-60000)" } },
	{ "service bounds",
	  SVC("    endpoints = ( { address = \"127.0.0.1:1\"; weight = 0; }, { address = \"127.0.0.1:2\"; weight = 1001; } );\n"
	      "    timeouts = { connect_ms = 0; idle_ms = 86400001; };\n"
	      "    retry = { attempts = 11; };\n"),
	  { "t.conf:3: services[0].endpoints[0].weight: 0 is out of range (1-1000)",
	    "t.conf:3: services[0].endpoints[1].weight: 1001 is out of range (1-1000)",
	    "t.conf:4: services[0].timeouts.connect_ms: 0 is out of range (1-60000)",
	    "t.conf:4: services[0].timeouts.idle_ms: 86400001 is out of range (0-86400000)",
	    "t.conf:5: services[0].retry.attempts: 11 is out of range (1-10)" } },
	{ "circuit breaker and limits bounds",
	  SVC("    circuit_breaker = { consecutive_failures = 1001; base_ejection_ms = 99; max_ejection_ms = 86400001;\n"
	      "      max_ejection_percent = 101; };\n"
	      "    limits = { max_connections = 0; max_pending = 1048577; };\n"),
	  { "t.conf:3: services[0].circuit_breaker.consecutive_failures: 1001 is out of range (0-1000)",
	    "t.conf:3: services[0].circuit_breaker.base_ejection_ms: 99 is out of range (100-3600000)",
	    "t.conf:3: services[0].circuit_breaker.max_ejection_ms: 86400001 is out of range (100-86400000)",
	    "t.conf:4: services[0].circuit_breaker.max_ejection_percent: 101 is out of range (0-100)",
	    "t.conf:5: services[0].limits.max_connections: 0 is out of range (1-1048576)",
	    "t.conf:5: services[0].limits.max_pending: 1048577 is out of range (1-1048576)" } },
	{ "ejection cap below the first ejection",
	  SVC("    circuit_breaker = { base_ejection_ms = 10000;\n      max_ejection_ms = 5000; };\n"),
	  { "t.conf:4: services[0].circuit_breaker.max_ejection_ms: 5000 is less than base_ejection_ms (10000); the cap must be at least the first ejection" } },
	{ "first ejection above the default cap",
	  SVC("    circuit_breaker = {\n      base_ejection_ms = 600000; };\n"),
	  { "t.conf:4: services[0].circuit_breaker.base_ejection_ms: 600000 is more than max_ejection_ms (300000, the default); raise max_ejection_ms too" } },
	{ "type errors are not compared",
	  SVC("    circuit_breaker = { base_ejection_ms = 600000; max_ejection_ms = \"1h\"; };\n    limits = 1;\n"),
	  { "t.conf:3: services[0].circuit_breaker.max_ejection_ms: expected an integer, got a string",
	    "t.conf:4: services[0].limits: expected a group {...}, got an integer; write limits = { ... };" } },
	{ "connect timeout too long",
	  SVC("    timeouts = { connect_ms = 60001; };\n    retry = { attempts = 0; };\n"),
	  { "t.conf:3: services[0].timeouts.connect_ms: 60001 is out of range (1-60000)",
	    "t.conf:4: services[0].retry.attempts: 0 is out of range (1-10)" } },

	/* enums */
	{ "fail_mode",
	  "agent: { fail_mode = \"opne\"; };\n",
	  { "t.conf:1: agent.fail_mode: unknown value 'opne'; valid values are \"open\", \"closed\"" } },
	{ "log_level",
	  "agent: { log_level = \"trace\"; };\n",
	  { "t.conf:1: agent.log_level: unknown value 'trace'; valid values are \"error\", \"warn\", \"info\", \"debug\"" } },
	{ "protocol and balancer",
	  SVC("    protocol = \"HTTP\";\n    balancer = \"random\";\n"),
	  { "t.conf:3: services[0].protocol: unknown value 'HTTP'; valid values are \"tcp\", \"http\", \"http2\", \"auto\"",
	    "t.conf:4: services[0].balancer: unknown value 'random'; valid values are \"ewma\", \"round-robin\", \"least-conn\"" } },

	/* addresses */
	{ "admin without port",
	  "agent: {\n  admin = \"10.0.0.1\";\n};\n",
	  { "t.conf:2: agent.admin: '10.0.0.1' has no port; write it as host:port" } },
	{ "inbound missing bracket",
	  "agent: { inbound = \"[::1\"; };\n",
	  { "t.conf:1: agent.inbound: '[::1' is missing ']'" } },
	{ "host name",
	  "services = ( { name = \"a\"; addresses = [ \"foo:80\" ]; } );\n",
	  { "t.conf:1: services[0].addresses[0]: 'foo:80' is not a numeric IP address (host names are not resolved; write an IPv4 or [IPv6] address)" } },
	{ "VIP port 0",
	  "services = ( { name = \"a\"; addresses = [ \"127.10.0.1:0\" ]; } );\n",
	  { "t.conf:1: services[0].addresses[0]: port 0 is out of range (1-65535)" } },
	{ "endpoint port",
	  SVC("    endpoints = ( { address = \"127.0.0.1:70000\"; } );\n"),
	  { "t.conf:3: services[0].endpoints[0].address: port 70000 is out of range (1-65535)" } },
	{ "node address",
	  SVC("    endpoints = ( { address = \"198.18.0.2:80\"; node = \"node-b:4143\"; } );\n"),
	  { "t.conf:3: services[0].endpoints[0].node: 'node-b:4143' is not a numeric IP address (host names are not resolved; write an IPv4 or [IPv6] address)" } },
	{ "empty address",
	  SVC("    endpoints = ( { address = \"\"; } );\n"),
	  { "t.conf:3: services[0].endpoints[0].address: the address is empty; write it as ip:port, e.g. 127.0.0.1:80" } },

	/* duplicates */
	{ "VIP in two services",
	  "services = (\n"
	  "  { name = \"web\";\n"
	  "    addresses = [ \"127.10.0.1:80\" ]; },\n"
	  "  { name = \"api\";\n"
	  "    addresses = [ \"127.10.0.1:80\" ]; }\n"
	  ");\n",
	  { "t.conf:5: services[1].addresses[0]: 127.10.0.1:80 is already used by service 'web' (line 3); each address belongs to one service" } },
	{ "VIP twice in one service (v4-mapped spelling)",
	  "services = ( { name = \"web\"; addresses = [ \"127.10.0.1:80\",\n  \"[::ffff:127.10.0.1]:80\" ]; } );\n",
	  { "t.conf:2: services[0].addresses[1]: 127.10.0.1:80 is already used by service 'web' (line 1); each address belongs to one service" } },
	{ "VIP of a service without a name",
	  "services = ( { addresses = [ \"127.10.0.1:80\" ]; },\n  { name = \"b\"; addresses = [ \"127.10.0.1:80\" ]; } );\n",
	  { "t.conf:1: services[0]: missing required key 'name'; write name = \"web\"; (each service needs a unique name)",
	    "t.conf:2: services[1].addresses[0]: 127.10.0.1:80 is already used by services[0] (line 1); each address belongs to one service" } },
	{ "service name twice",
	  "services = (\n  { name = \"web\"; addresses = [ \"127.10.0.1:80\" ]; },\n  { name = \"web\"; addresses = [ \"127.10.0.2:80\" ]; }\n);\n",
	  { "t.conf:3: services[1].name: 'web' is already the name of services[0] (line 2); service names must be unique" } },
	{ "endpoint twice",
	  SVC("    endpoints = ( { address = \"127.0.0.1:8081\"; },\n      { address = \"127.0.0.1:8082\"; },\n"
	      "      { address = \"127.0.0.1:8081\"; weight = 2; } );\n"),
	  { "t.conf:5: services[0].endpoints[2].address: 127.0.0.1:8081 is already endpoints[0] (line 3); list each endpoint once (use weight to favour one)" } },
	{ "same endpoint in two services is fine, a cgroup twice is not",
	  "intercept: { cgroups = [ \"a.slice\", \"b.slice\",\n  \"a.slice\" ]; };\n"
	  "services = ( { name = \"a\"; addresses = [ \"127.10.0.1:80\" ]; endpoints = ( { address = \"127.0.0.1:1\"; } ); },\n"
	  "  { name = \"b\"; addresses = [ \"127.10.0.2:80\" ]; endpoints = ( { address = \"127.0.0.1:1\"; } ); } );\n",
	  { "t.conf:2: intercept.cgroups[2]: 'a.slice' is already listed as intercept.cgroups[0] (line 1); list each cgroup once" } },
	{ "endpoint is a VIP (of a later service)",
	  "services = (\n"
	  "  { name = \"web\"; addresses = [ \"127.10.0.1:80\" ];\n"
	  "    endpoints = ( { address = \"127.10.0.2:80\"; } ); },\n"
	  "  { name = \"api\";\n"
	  "    addresses = [ \"127.10.0.2:80\" ];\n"
	  "    endpoints = ( { address = \"127.10.0.2:80\"; } ); }\n"
	  ");\n",
	  { "t.conf:3: services[0].endpoints[0].address: 127.10.0.2:80 is an address of service 'api' (line 5); an endpoint must be where a server listens, or connections would loop",
	    "t.conf:6: services[1].endpoints[0].address: 127.10.0.2:80 is an address of service 'api' (line 5); an endpoint must be where a server listens, or connections would loop" } },

	{ "endpoint is weftd's outbound listener",
	  SVC("    endpoints = ( { address = \"127.0.0.1:15001\"; } );\n"),
	  { "t.conf:3: services[0].endpoints[0].address: 127.0.0.1:15001 is weftd's own outbound listener (agent.outbound_port); connections would loop" } },

	/* missing required keys */
	{ "service without name and addresses",
	  "services = (\n  { protocol = \"tcp\"; }\n);\n",
	  { "t.conf:2: services[0]: missing required key 'name'; write name = \"web\"; (each service needs a unique name)",
	    "t.conf:2: services[0]: missing required key 'addresses'; list what apps dial, e.g. addresses = [ \"127.10.0.1:80\" ];" } },
	{ "empty addresses",
	  "services = ( { name = \"a\"; addresses = [ ]; } );\n",
	  { "t.conf:1: services[0].addresses: is empty; list at least one address apps dial, e.g. [ \"127.10.0.1:80\" ]" } },
	{ "endpoint without address",
	  SVC("    endpoints = ( { weight = 2; } );\n"),
	  { "t.conf:3: services[0].endpoints[0]: missing required key 'address'; write address = \"ip:port\";" } },
	{ "tls without cert and key",
	  "tls: {\n  ca = \"/nonexistent/ca.pem\";\n};\n",
	  { "t.conf:1: tls: missing required key 'cert'; mutual TLS needs ca, cert and key",
	    "t.conf:1: tls: missing required key 'key'; mutual TLS needs ca, cert and key",
	    "t.conf:2: tls.ca: cannot read '/nonexistent/ca.pem': No such file or directory" } },

	/* files */
	{ "tls files",
	  "tls: {\n  ca = \"/x/ca.pem\";\n  cert = \"/\";\n  key = \"/dev/null\";\n};\n",
	  { "t.conf:2: tls.ca: cannot read '/x/ca.pem': No such file or directory",
	    "t.conf:3: tls.cert: cannot read '/': Is a directory",
	    "t.conf:4: tls.key: cannot read '/dev/null': not a regular file (a character device); write the path of a PEM file" } },
	{ "tls empty and wrong",
	  "tls: { ca = \"\"; cert = 1; key = \"/x\"; wat = 1; };\n",
	  { "t.conf:1: tls.wat: unknown key; valid keys are ca, cert, key, trust_domain, handshake_timeout_ms, max_handshakes, issuer_cert, issuer_key, cert_lifetime_s",
	    "t.conf:1: tls.ca: is empty; write the path of a PEM file",
	    "t.conf:1: tls.cert: expected a string, got an integer",
	    "t.conf:1: tls.key: cannot read '/x': No such file or directory" } },

	/* names, paths, cgroups */
	{ "bad service names",
	  "services = (\n  { name = \"Web\"; addresses = [ \"127.10.0.1:80\" ]; },\n  { name = \"-x\"; addresses = [ \"127.10.0.2:80\" ]; },\n"
	  "  { name = \"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234\"; addresses = [ \"127.10.0.3:80\" ]; },\n"
	  "  { name = \"\"; addresses = [ \"127.10.0.4:80\" ]; }\n);\n",
	  { "t.conf:2: services[0].name: 'Web' is not a valid name; use 1-63 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit",
	    "t.conf:3: services[1].name: '-x' is not a valid name; use 1-63 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit",
	    "t.conf:4: services[2].name: 'abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234' is not a valid name; use 1-63 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit",
	    "t.conf:5: services[3].name: '' is not a valid name; use 1-63 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit" } },
	{ "relative pin path",
	  "agent: { bpf_pin_path = \"sys/fs/bpf/weft\"; };\n",
	  { "t.conf:1: agent.bpf_pin_path: 'sys/fs/bpf/weft' is not an absolute path; write it as /sys/fs/bpf/<name>" } },
	{ "pin path trailing slash",
	  "agent: { bpf_pin_path = \"/sys/fs/bpf/weft/\"; };\n",
	  { "t.conf:1: agent.bpf_pin_path: '/sys/fs/bpf/weft/' ends with '/'; name the directory without it, e.g. /sys/fs/bpf/weft" } },
	{ "pin path root",
	  "agent: { bpf_pin_path = \"/\"; };\n",
	  { "t.conf:1: agent.bpf_pin_path: '/' ends with '/'; name the directory without it, e.g. /sys/fs/bpf/weft" } },
	{ "pin path dot-dot",
	  "agent: { bpf_pin_path = \"/sys/fs/bpf/../weft\"; };\n",
	  { "t.conf:1: agent.bpf_pin_path: '/sys/fs/bpf/../weft' has an empty, '.' or '..' component; write a plain path such as /sys/fs/bpf/weft" } },
	{ "pin path double slash",
	  "agent: { bpf_pin_path = \"/sys/fs/bpf//weft\"; };\n",
	  { "t.conf:1: agent.bpf_pin_path: '/sys/fs/bpf//weft' has an empty, '.' or '..' component; write a plain path such as /sys/fs/bpf/weft" } },
	{ "pin path trailing junk",
	  "agent: { bpf_pin_path = \"/sys/fs/bpf/weft \"; };\n",
	  { "t.conf:1: agent.bpf_pin_path: '/sys/fs/bpf/weft ' contains a space or control character" } },
	{ "pin path too long",
	  "agent: { bpf_pin_path = \"/sys/fs/bpf/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"; };\n",
	  { "t.conf:1: agent.bpf_pin_path: '/sys/fs/bpf/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is too long (the limit is 199 characters)" } },
	{ "empty cgroup, control character",
	  "intercept: { cgroups = [ \"\", \"a\\nb\" ]; };\n",
	  { "t.conf:1: intercept.cgroups[0]: is empty; write a cgroup path such as \"system.slice/app.service\"",
	    "t.conf:1: intercept.cgroups[1]: 'a?b' contains a control character" } },

	/* listeners that cannot all bind */
	{ "inbound on the admin port",
	  "agent: {\n  inbound = \"0.0.0.0:9990\";\n};\n",
	  { "t.conf:2: agent.inbound: 0.0.0.0:9990 clashes with agent.admin 127.0.0.1:9990; give each listener its own port" } },
	{ "admin on the inbound address",
	  "agent: {\n  admin = \"0.0.0.0:4143\";\n};\n",
	  { "t.conf:2: agent.admin: 0.0.0.0:4143 clashes with agent.inbound 0.0.0.0:4143; give each listener its own port" } },
	{ "admin on the outbound port",
	  "agent: {\n  outbound_port = 9990;\n};\n",
	  { "t.conf:2: agent.admin: 127.0.0.1:9990 clashes with agent.outbound_port 9990 (weftd listens on loopback there); give each listener its own port" } },
	{ "inbound on the outbound port",
	  "agent: {\n  inbound = \"[::]:15001\";\n};\n",
	  { "t.conf:2: agent.inbound: [::]:15001 clashes with agent.outbound_port 15001 (weftd listens on loopback there); give each listener its own port" } },

	/* user text is cut and kept on one line */
	{ "long unknown key",
	  "agent: { aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = 1; };\n",
	  { "t.conf:1: agent.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...: unknown key; valid keys are admin, outbound_port, inbound, bpf_pin_path, fail_mode, heartbeat_stale_ms, mark, log_level, max_connections, max_connections_per_workload, buffer_memory_mb, buffer_memory_per_workload_pct, buffer_size, drain_timeout_ms, workers, redirect_loopback, splice, strict_inbound, log_rate_limit, zone, dns_servers, dns_timeout_ms" } },
	{ "newline in a value",
	  "agent: { fail_mode = \"op\nen\"; };\n",
	  { "t.conf:1: agent.fail_mode: unknown value 'op?en'; valid values are \"open\", \"closed\"" } },

	/* HTTP: limits, retries, routes; tracing */
	{ "unknown in http, routes and tracing",
	  SVC("    http = { max_header = 1; };\n"
	      "    routes = ( { nme = \"a\"; match = { paths = \"/\"; }; backends = ( { svc = \"web\"; } );\n"
	      "      request_headers = { delete = [ ]; add = ( { name = \"x-a\"; valu = \"1\"; } ); }; } );\n") "tracing = { collecter = \"127.0.0.1:9411\"; };\n",
	  { "t.conf:3: services[0].http.max_header: unknown key; did you mean 'max_headers'?",
	    "t.conf:4: services[0].routes[0].nme: unknown key; did you mean 'name'?",
	    "t.conf:4: services[0].routes[0].match.paths: unknown key; did you mean 'path'?",
	    "t.conf:4: services[0].routes[0].backends[0].svc: unknown key; valid keys are service, weight",
	    "t.conf:4: services[0].routes[0].backends[0]: missing required key 'service'; write service = \"web-v2\"; (the name of a service in this config)",
	    "t.conf:5: services[0].routes[0].request_headers.delete: unknown key; valid keys are add, remove",
	    "t.conf:5: services[0].routes[0].request_headers.add[0].valu: unknown key; did you mean 'value'?",
	    "t.conf:5: services[0].routes[0].request_headers.add[0]: missing required key 'value'; write value = \"...\"; (it may be \"\")",
	    "t.conf:8: tracing.collecter: unknown key; did you mean 'collector'?" } },
	{ "http and limits bounds",
	  SVC("    http = { detect_timeout_ms = 0; max_request_line = 255; max_header_bytes = 1048577; max_headers = 7;\n"
	      "      request_timeout_ms = 3600001; max_retry_body = 16777217; pool_max_idle = 10001; pool_idle_timeout_ms = 99;\n"
	      "      head_timeout_ms = 3600001; };\n"
	      "    limits = { max_requests = 0; };\n"),
	  { "t.conf:3: services[0].http.detect_timeout_ms: 0 is out of range (1-10000)",
	    "t.conf:3: services[0].http.max_request_line: 255 is out of range (256-1048576)",
	    "t.conf:3: services[0].http.max_header_bytes: 1048577 is out of range (1024-1048576)",
	    "t.conf:3: services[0].http.max_headers: 7 is out of range (8-1000)",
	    "t.conf:4: services[0].http.request_timeout_ms: 3600001 is out of range (0-3600000)",
	    "t.conf:4: services[0].http.max_retry_body: 16777217 is out of range (0-16777216)",
	    "t.conf:4: services[0].http.pool_max_idle: 10001 is out of range (0-10000)",
	    "t.conf:4: services[0].http.pool_idle_timeout_ms: 99 is out of range (100-3600000)",
	    "t.conf:5: services[0].http.head_timeout_ms: 3600001 is out of range (0-3600000)",
	    "t.conf:6: services[0].limits.max_requests: 0 is out of range (1-1048576)" } },
	{ "http idle bounds",
	  SVC("    http = { keepalive_idle_ms = 86400001;\n"
	      "      stream_idle_ms = -1; };\n"),
	  { "t.conf:3: services[0].http.keepalive_idle_ms: 86400001 is out of range (0-86400000)",
	    "t.conf:4: services[0].http.stream_idle_ms: -1 is out of range (0-86400000)" } },
	{ "retry policy entries and bounds",
	  SVC("    retry = { on_status = ( 502, \"503\", 99, 600, 502 );\n"
	      "      budget_ratio = \"0.2\"; budget_min_per_s = 100001;\n"
	      "      budget_window_s = 0; backoff_base_ms = 60001; };\n"),
	  { "t.conf:3: services[0].retry.on_status[1]: expected an integer (an HTTP status code), got a string",
	    "t.conf:3: services[0].retry.on_status[2]: 99 is out of range (100-599)",
	    "t.conf:3: services[0].retry.on_status[3]: 600 is out of range (100-599)",
	    "t.conf:3: services[0].retry.on_status[4]: 502 is already on_status[0]; list each status once",
	    "t.conf:4: services[0].retry.budget_ratio: expected a number, got a string",
	    "t.conf:4: services[0].retry.budget_min_per_s: 100001 is out of range (0-100000)",
	    "t.conf:5: services[0].retry.budget_window_s: 0 is out of range (1-60)",
	    "t.conf:5: services[0].retry.backoff_base_ms: 60001 is out of range (0-60000)" } },
	{ "retry types and ratio bounds",
	  SVC("    retry = { budget_ratio = -0.5; on_status = 503; budget_window_s = 61; backoff_max_ms = 60001; };\n"
	      "  },\n  { name = \"b\"; addresses = [ \"127.10.0.2:80\" ]; retry = { budget_ratio = 1001; }; }, { name = \"c\";\n"
	      "    addresses = [ \"127.10.0.3:80\" ]; retry = { budget_ratio = 1000.5; };\n"),
	  { "t.conf:3: services[0].retry.on_status: expected an array [...], got an integer; write on_status = [ 502, 503, 504 ];",
	    "t.conf:3: services[0].retry.budget_ratio: -0.5 is out of range (0-1000)",
	    "t.conf:3: services[0].retry.budget_window_s: 61 is out of range (1-60)",
	    "t.conf:3: services[0].retry.backoff_max_ms: 60001 is out of range (0-60000)",
	    "t.conf:5: services[1].retry.budget_ratio: 1001 is out of range (0-1000)",
	    "t.conf:6: services[2].retry.budget_ratio: 1000.5 is out of range (0-1000)" } },
	{ "back-off cap below the base",
	  SVC("    retry = { backoff_base_ms = 100;\n      backoff_max_ms = 50; };\n"),
	  { "t.conf:4: services[0].retry.backoff_max_ms: 50 is less than backoff_base_ms (100); the cap must be at least the base" } },
	{ "back-off base above the default cap",
	  SVC("    retry = {\n      backoff_base_ms = 1000; };\n"),
	  { "t.conf:4: services[0].retry.backoff_base_ms: 1000 is more than backoff_max_ms (250, the default); raise backoff_max_ms too" } },
	{ "routes and http of the wrong type",
	  SVC("    routes = { };\n    http = [ 1 ];\n"),
	  { "t.conf:3: services[0].routes: expected a list ( { match = { ... }; backends = ( ... ); }, ... ), got a group {...}",
	    "t.conf:4: services[0].http: expected a group {...}, got an array [...]; write http = { ... };" } },
	{ "route entries and names",
	  ROUTES("      \"x\",\n      { name = \"Canary\"; },\n      { name = \"a\"; },\n      { name = \"a\"; },\n"
		 "      { name = \"route5\"; },\n      { },\n      { name = 5; }\n"),
	  { "t.conf:5: services[1].routes[0]: expected a group { match = { ... }; backends = ( ... ); }, got a string",
	    "t.conf:6: services[1].routes[1].name: 'Canary' is not a valid name; use 1-63 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit",
	    "t.conf:8: services[1].routes[3].name: 'a' is already the name of routes[2] (line 7); route names must be unique within a service",
	    "t.conf:10: services[1].routes[5]: its default name 'route5' is already the name of routes[4] (line 9); give this route a name",
	    "t.conf:11: services[1].routes[6].name: expected a string, got an integer" } },
	{ "route match",
	  ROUTES("      { match = { method = \"\"; host = \"\"; path = \"api\"; }; },\n"
		 "      { match = { method = \"GE T\"; host = \"a b\"; path_prefix = \"/a?b\"; }; },\n"
		 "      { match = { path = \"/a#b\"; }; },\n      { match = { path = \"/a b\"; }; },\n"
		 "      { match = { path = \"/a\";\n                  path_prefix = \"/b\"; }; }\n"),
	  { "t.conf:5: services[1].routes[0].match.method: is empty; write a method such as \"GET\" (leave method out to match any)",
	    "t.conf:5: services[1].routes[0].match.host: is empty; write a host such as \"api.example.com\" (leave host out to match any)",
	    "t.conf:5: services[1].routes[0].match.path: 'api' does not start with '/'; write an absolute path such as \"/api/\"",
	    "t.conf:6: services[1].routes[1].match.method: 'GE T' is not an HTTP method; a method is a token (letters, digits and !#$%&'*+-.^_`|~), e.g. \"GET\"",
	    "t.conf:6: services[1].routes[1].match.host: 'a b' contains a space or control character",
	    "t.conf:6: services[1].routes[1].match.path_prefix: '/a?b' contains '?'; routes match the path before the query, so leave the query out",
	    "t.conf:7: services[1].routes[2].match.path: '/a#b' contains '#'; fragments are never sent to a server",
	    "t.conf:8: services[1].routes[3].match.path: '/a b' contains a space or control character",
	    "t.conf:10: services[1].routes[4].match: path and path_prefix are both given; use path for one exact path or path_prefix for a subtree, not both" } },
	{ "route match headers",
	  ROUTES("      { match = { headers = ( { value = \"1\"; }, { name = \"x a\"; }, { name = \"x-b\"; value = \"a\\nb\"; },\n"
		 "        { name = \"x-c\"; value = \" 1\"; }, \"x-d\", { name = 1; } ); }; },\n"
		 "      { match = { headers = { name = \"x\"; }; }; }\n"),
	  { "t.conf:5: services[1].routes[0].match.headers[0]: missing required key 'name'; write name = \"x-...\";",
	    "t.conf:5: services[1].routes[0].match.headers[1].name: 'x a' is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~",
	    "t.conf:5: services[1].routes[0].match.headers[2].value: 'a?b' contains a control character (only tab is allowed in a header value)",
	    "t.conf:6: services[1].routes[0].match.headers[3].value: ' 1' has leading or trailing whitespace, which HTTP strips from field values; remove it",
	    "t.conf:6: services[1].routes[0].match.headers[4]: expected a group { name = \"x-...\"; value = \"...\"; }, got a string",
	    "t.conf:6: services[1].routes[0].match.headers[5].name: expected a string (a header name), got an integer",
	    "t.conf:7: services[1].routes[1].match.headers: expected a list ( { name = \"x-...\"; value = \"...\"; }, ... ), got a group {...}" } },
	{ "route backends",
	  ROUTES("      { backends = ( { service = \"web-v3\"; }, { service = \"zzz\"; }, { weight = 1; }, \"web\",\n"
		 "        { service = \"web\"; weight = 1001; } ); },\n"
		 "      { backends = ( { service = \"web\"; weight = 0; },\n        { service = \"web-v1\"; weight = 0; } ); },\n"
		 "      { backends = { service = \"web\"; }; }\n"),
	  { "t.conf:5: services[1].routes[0].backends[2]: missing required key 'service'; write service = \"web-v2\"; (the name of a service in this config)",
	    "t.conf:5: services[1].routes[0].backends[3]: expected a group { service = \"...\"; weight = N; }, got a string",
	    /* resolved after every service is parsed, shown in line order */
	    "t.conf:5: services[1].routes[0].backends[0].service: 'web-v3' is not a service in this config; did you mean 'web-v1'?",
	    "t.conf:5: services[1].routes[0].backends[1].service: 'zzz' is not a service in this config; name one of the services defined under services",
	    "t.conf:6: services[1].routes[0].backends[4].weight: 1001 is out of range (0-1000)",
	    "t.conf:7: services[1].routes[1].backends: the weights add up to 0; give at least one backend a weight above 0",
	    "t.conf:9: services[1].routes[2].backends: expected a list ( { service = \"...\"; weight = N; }, ... ), got a group {...}" } },
	{ "route action and request headers",
	  ROUTES("      { timeout_ms = 3600001; retryable = 1;\n"
		 "        request_headers = { add = ( { name = \"Content-Length\"; value = \"1\"; }, { name = \"x-a\"; },\n"
		 "          { name = \"Host\"; value = \"h\"; }, { name = \"x-b\"; value = \"a\\x01\"; } );\n"
		 "          remove = [ \"te\", \"x a\", \"X-OK\" ]; }; },\n"
		 "      { request_headers = { remove = \"x-a\"; add = { }; }; },\n"
		 "      { request_headers = { remove = ( 1 ); }; }\n"),
	  { "t.conf:5: services[1].routes[0].timeout_ms: 3600001 is out of range (0-3600000)",
	    "t.conf:5: services[1].routes[0].retryable: expected true or false, got an integer",
	    "t.conf:6: services[1].routes[0].request_headers.add[0].name: 'Content-Length' is written by weft itself (message framing, hop-by-hop fields and Host); a route cannot set or remove it",
	    "t.conf:6: services[1].routes[0].request_headers.add[1]: missing required key 'value'; write value = \"...\"; (it may be \"\")",
	    "t.conf:7: services[1].routes[0].request_headers.add[2].name: 'Host' is written by weft itself (message framing, hop-by-hop fields and Host); a route cannot set or remove it",
	    "t.conf:7: services[1].routes[0].request_headers.add[3].value: 'a?' contains a control character (only tab is allowed in a header value)",
	    "t.conf:8: services[1].routes[0].request_headers.remove[0]: 'te' is written by weft itself (message framing, hop-by-hop fields and Host); a route cannot set or remove it",
	    "t.conf:8: services[1].routes[0].request_headers.remove[1]: 'x a' is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~",
	    "t.conf:9: services[1].routes[1].request_headers.add: expected a list ( { name = \"x-...\"; value = \"...\"; }, ... ), got a group {...}",
	    "t.conf:9: services[1].routes[1].request_headers.remove: expected an array [...], got a string; write remove = [ \"x-internal\" ];",
	    "t.conf:10: services[1].routes[2].request_headers.remove[0]: expected a string (a header name), got an integer" } },
	{ "tracing bounds",
	  "tracing = {\n  collector = \"127.0.0.1\";\n  path = \"api\";\n  service_name = \"\";\n  sample_rate = 1.5;\n"
	  "  queue_size = 0;\n  batch_size = 10001;\n  flush_ms = 9;\n};\n",
	  { "t.conf:2: tracing.collector: '127.0.0.1' has no port; write it as host:port",
	    "t.conf:3: tracing.path: 'api' does not start with '/'; write a path such as \"/api/v2/spans\"",
	    "t.conf:4: tracing.service_name: is empty; write a name such as \"weft\"",
	    "t.conf:5: tracing.sample_rate: 1.5 is out of range (0-1)",
	    "t.conf:6: tracing.queue_size: 0 is out of range (1-1048576)",
	    "t.conf:7: tracing.batch_size: 10001 is out of range (1-10000)",
	    "t.conf:8: tracing.flush_ms: 9 is out of range (10-60000)" } },
	{ "tracing text",
	  "tracing = { path = \"/a b\"; service_name = \"a\\\"b\"; sample_rate = \"1\"; };\n"
	  "tracing2 = 1;\n",
	  { "t.conf:1: tracing.path: '/a b' contains a space or a character that is not printable ASCII",
	    "t.conf:1: tracing.service_name: 'a\"b' contains a quote, a backslash or a character that is not printable ASCII",
	    "t.conf:1: tracing.sample_rate: expected a number, got a string",
	    "t.conf:2: tracing2: unknown key; did you mean 'tracing'?" } },
	{ "tracing name too long, rate negative",
	  "tracing = { service_name = \"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234\"; sample_rate = -1; };\n",
	  { "t.conf:1: tracing.service_name: 'abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234' is longer than 63 characters",
	    "t.conf:1: tracing.sample_rate: -1 is out of range (0-1)" } },
	{ "tracing not a group",
	  "tracing = ( );\n",
	  { "t.conf:1: tracing: expected a group {...}, got a list (...); write tracing = { ... };" } },
	{ "collector is a service address",
	  "services = ( { name = \"zipkin\"; addresses = [ \"127.10.0.9:9411\" ]; } );\ntracing = { collector = \"127.10.0.9:9411\"; };\n",
	  { "t.conf:2: tracing.collector: 127.10.0.9:9411 is an address of service 'zipkin' (line 1); weftd's own connections are not intercepted, so give the collector's real address" } },
	{ "collector is weftd's outbound listener",
	  "tracing = { collector = \"127.0.0.1:15001\"; };\n",
	  { "t.conf:1: tracing.collector: 127.0.0.1:15001 is weftd's own outbound listener (agent.outbound_port); give the collector's real address" } },
};

/* endpoints_from, zones, priorities, failover, agent.zone and agent.dns_servers as parsed. */
static void test_discovery(void **state)
{
	struct weft_config *c;
	const struct cfg_service *s;

	(void)state;
	c = load_ok(
		"agent: { zone = \"eu-1a\"; dns_servers = [ \"127.0.0.53:5353\", \"[::1]:53\" ]; "
		"dns_timeout_ms = 500; };\n"
		"services = (\n"
		"  { name = \"api\"; addresses = [ \"127.10.0.1:80\" ];\n"
		"    endpoints_from = { dns = \"api.internal\"; port = 8080; zone = \"eu-1a\"; priority = 2; weight = 3;"
		" family = \"ipv4\"; refresh_min_ms = 200; refresh_max_ms = 2000; };\n"
		"    failover = { overprovisioning = 2; }; },\n"
		"  { name = \"db\"; addresses = [ \"127.10.0.2:80\" ];\n"
		"    endpoints_from = ( { dns_srv = \"_db._tcp.internal.\"; }, { file = \"/etc/weft/db\"; } ); },\n"
		"  { name = \"web\"; addresses = [ \"127.10.0.3:80\" ];\n"
		"    endpoints = ( { address = \"127.0.0.1:1\"; zone = \"eu-1a\"; priority = 1; },\n"
		"                  { address = \"127.0.0.1:2\"; zone = \"eu-1b\"; },\n"
		"                  { address = \"127.0.0.1:3\"; zone = \"eu-1a\"; } ); }\n"
		");\n");
	assert_string_equal(c->zone, "eu-1a");
	assert_int_equal(c->n_dns_servers, 2);
	assert_string_equal(fmt_addr(&c->dns_servers[1]), "[::1]:53");
	assert_int_equal(c->dns_timeout_ms, 500);
	s = &c->services[0];
	assert_int_equal(s->n_endpoints, 0);
	assert_int_equal(s->n_sources, 1);
	assert_int_equal(s->sources[0].kind, CFG_EP_DNS);
	assert_string_equal(s->sources[0].name, "api.internal");
	assert_int_equal(s->sources[0].port, 8080);
	assert_string_equal(s->sources[0].zone, "eu-1a");
	assert_int_equal(s->sources[0].priority, 2);
	assert_int_equal(s->sources[0].weight, 3);
	assert_int_equal(s->sources[0].family, CFG_FAMILY_IPV4);
	assert_int_equal(s->sources[0].refresh_min_ms, 200);
	assert_int_equal(s->sources[0].refresh_max_ms, 2000);
	assert_int_equal(s->overprov_pct, 200);
	s = &c->services[1];
	assert_int_equal(s->n_sources, 2);
	assert_int_equal(s->sources[0].kind, CFG_EP_DNS_SRV);
	assert_int_equal(s->sources[0].family, CFG_FAMILY_ANY);
	assert_null(s->sources[0].zone);
	assert_int_equal(s->sources[0].refresh_min_ms, 1000);
	assert_int_equal(s->sources[0].refresh_max_ms, 300000);
	assert_int_equal(s->sources[1].kind, CFG_EP_FILE);
	assert_string_equal(s->sources[1].name, "/etc/weft/db");
	assert_int_equal(s->overprov_pct, 140);
	s = &c->services[2];
	assert_string_equal(s->endpoints[0].zone, "eu-1a");
	assert_int_equal(s->endpoints[0].priority, 1);
	assert_string_equal(s->endpoints[1].zone, "eu-1b");
	assert_ptr_equal(s->endpoints[2].zone, s->endpoints[0].zone); /* interned */
	assert_int_equal(c->n_zones, 2);
	cfg_free(c);
	/* defaults */
	c = load_ok("");
	assert_null(c->zone);
	assert_int_equal(c->n_dns_servers, 0);
	assert_int_equal(c->dns_timeout_ms, 2000);
	cfg_free(c);
}

static void test_failures(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(fail_cases) / sizeof(fail_cases[0]); i++)
		expect_errors(fail_cases[i].what, fail_cases[i].text, fail_cases[i].msgs);
}

/* Every problem in one run, sorted by line, one line each. */
static void test_many_errors_at_once(void **state)
{
	static const char text[] =
		"agent: {\n"                                                                                  /* 1 */
		"  outbound_port = \"x\";\n"                                                                  /* 2 */
		"  fail_mode = \"closd\";\n"                                                                  /* 3 */
		"};\n"                                                                                        /* 4 */
		"services = (\n"                                                                              /* 5 */
		"  { name = \"web\"; addresses = [ \"127.10.0.1\" ];\n"                                       /* 6 */
		"    endpoints = ( { address = \"127.10.0.9:80\"; } ); },\n"                                  /* 7 */
		"  { name = \"api\"; addresses = [ \"127.10.0.9:80\" ];\n"                                    /* 8 */
		"    protocol = \"grpc\"; }\n"                                                                /* 9 */
		");\n"                                                                                        /* 10 */
		"tls: { ca = \"/nonexistent/ca\"; cert = \"/nonexistent/c\"; key = \"/nonexistent/k\"; };\n"; /* 11 */
	static const char *const want[] = {
		"t.conf:2: agent.outbound_port: expected an integer, got a string",
		"t.conf:3: agent.fail_mode: unknown value 'closd'; valid values are \"open\", \"closed\"",
		"t.conf:6: services[0].addresses[0]: '127.10.0.1' has no port; write it as host:port",
		/* found last (it needs every VIP), shown in line order */
		"t.conf:7: services[0].endpoints[0].address: 127.10.0.9:80 is an address of service 'api' (line 8); an endpoint must be where a server listens, or connections would loop",
		"t.conf:9: services[1].protocol: unknown value 'grpc'; valid values are \"tcp\", \"http\", \"http2\", \"auto\"",
		"t.conf:11: tls.ca: cannot read '/nonexistent/ca': No such file or directory",
		"t.conf:11: tls.cert: cannot read '/nonexistent/c': No such file or directory",
		"t.conf:11: tls.key: cannot read '/nonexistent/k': No such file or directory",
		NULL,
	};

	expect_errors("many", text, want);
}

/* Messages are appended to what errs already holds; errs may be NULL. */
static void test_errs_append_and_null(void **state)
{
	struct cfg_errors e = { 0 };
	struct weft_config *c = NULL;

	e.msgs = calloc(1, sizeof(*e.msgs));
	e.msgs[0] = strdup("earlier");
	e.n = 1;
	assert_int_equal(cfg_load_string("agent: { mark = 0; };\n", "a.conf", &c, &e), -EINVAL);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.msgs[0], "earlier");
	assert_string_equal(e.msgs[1], "a.conf:1: agent.mark: 0 is out of range (1-2147483647)");
	cfg_errors_free(&e);
	cfg_errors_free(&e); /* idempotent */

	assert_int_equal(cfg_load_string("agent: { mark = 0; };\n", "a.conf", &c, NULL), -EINVAL);
	assert_null(c);
	assert_int_equal(cfg_load_string("", NULL, &c, NULL), 0);
	assert_string_equal(c->path, "<string>");
	cfg_free(c);
	cfg_free(NULL);
}

/* --- limits -------------------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if (b->p && b->len + (size_t)n < b->cap)
			break;
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	b->len += (size_t)n;
}

static void expect_one_error(const char *text, const char *msg)
{
	const char *msgs[] = { msg, NULL };

	expect_errors(msg, text, msgs);
}

static void test_limit_services(void **state)
{
	struct sbuf b = { 0 };
	struct weft_config *c;
	int i;

	sb_add(&b, "services = (\n");
	for (i = 0; i < CFG_MAX_SERVICES; i++)
		sb_add(&b, "%s{ name = \"s%d\"; addresses = [ \"127.10.%d.%d:80\" ]; }\n", i ? "," : "", i, i / 256,
		       i % 256);
	sb_add(&b, ");\n");
	c = load_ok(b.p);
	assert_int_equal(c->n_services, CFG_MAX_SERVICES);
	assert_string_equal(c->services[CFG_MAX_SERVICES - 1].name, "s4095");
	cfg_free(c);

	b.len -= 3; /* one more */
	sb_add(&b, ",{ name = \"extra\"; addresses = [ \"127.11.0.1:80\" ]; }\n);\n");
	expect_one_error(b.p, "t.conf:1: services: 4097 entries; at most 4096 services are supported");
	free(b.p);
}

static void test_limit_addresses_endpoints(void **state)
{
	struct sbuf b = { 0 };
	struct weft_config *c;
	int i;

	sb_add(&b, "services = ( { name = \"a\";\naddresses = [ \"127.10.0.0:1\"");
	for (i = 1; i < CFG_MAX_SVC_ADDRS; i++)
		sb_add(&b, ", \"127.10.0.%d:%d\"", i % 256, 1 + i / 256);
	sb_add(&b, " ];\nendpoints = ( { address = \"127.0.0.1:1\"; }");
	for (i = 1; i < CFG_MAX_ENDPOINTS; i++)
		sb_add(&b, ", { address = \"127.0.0.1:%d\"; }", i + 1);
	sb_add(&b, " ); } );\n");
	c = load_ok(b.p);
	assert_int_equal(c->services[0].n_addrs, CFG_MAX_SVC_ADDRS);
	assert_int_equal(c->services[0].n_endpoints, CFG_MAX_ENDPOINTS);
	cfg_free(c);
	free(b.p);

	memset(&b, 0, sizeof(b));
	sb_add(&b, "services = ( { name = \"a\";\naddresses = [ \"127.10.0.0:1\"");
	for (i = 1; i <= CFG_MAX_SVC_ADDRS; i++)
		sb_add(&b, ", \"127.10.0.%d:%d\"", i % 256, 1 + i / 256);
	sb_add(&b, " ];\nendpoints = ( { address = \"127.0.0.1:1\"; }");
	for (i = 1; i <= CFG_MAX_ENDPOINTS; i++)
		sb_add(&b, ", { address = \"127.0.0.1:%d\"; }", i + 1);
	sb_add(&b, " ); } );\n");
	{
		static const char *const want[] = {
			"t.conf:2: services[0].addresses: 257 entries; at most 256 addresses per service are supported",
			"t.conf:3: services[0].endpoints: 1025 entries; at most 1024 endpoints per service are supported",
			NULL,
		};

		expect_errors("addresses and endpoints", b.p, want);
	}
	free(b.p);
}

static void test_limit_cgroups(void **state)
{
	struct sbuf b = { 0 };
	struct weft_config *c;
	int i;

	sb_add(&b, "intercept: { cgroups = [ \"c0\"");
	for (i = 1; i < CFG_MAX_CGROUPS; i++)
		sb_add(&b, ", \"c%d\"", i);
	sb_add(&b, " ]; };\n");
	c = load_ok(b.p);
	assert_int_equal(c->n_cgroups, CFG_MAX_CGROUPS);
	cfg_free(c);
	b.len -= 7;
	sb_add(&b, ", \"one-more\" ]; };\n");
	expect_one_error(
		b.p,
		"t.conf:1: intercept.cgroups: 4097 entries; at most 4096 are supported (use globs to cover many cgroups)");
	free(b.p);
}

/* Routes, backends, header lists and retry statuses: each at its limit, then one more. */
static void test_limit_routes(void **state)
{
	struct sbuf b;
	struct weft_config *c;
	int extra, i;

	for (extra = 0; extra <= 1; extra++) {
		memset(&b, 0, sizeof(b));
		sb_add(&b, "services = ( { name = \"a\"; addresses = [ \"127.10.0.1:80\" ];\n");
		sb_add(&b, "retry = { on_status = [ 100");
		for (i = 1; i < CFG_MAX_RETRY_STATUS + extra; i++)
			sb_add(&b, ", %d", 100 + i);
		sb_add(&b, " ]; };\nroutes = (\n{ match = { headers = ( { name = \"h0\"; }");
		for (i = 1; i < CFG_MAX_ROUTE_HEADERS + extra; i++)
			sb_add(&b, ", { name = \"h%d\"; }", i);
		sb_add(&b, " ); };\n  backends = ( { service = \"a\"; }");
		for (i = 1; i < CFG_MAX_BACKENDS + extra; i++)
			sb_add(&b, ", { service = \"a\"; }");
		sb_add(&b, " );\n  request_headers = { add = ( { name = \"x0\"; value = \"\"; }");
		for (i = 1; i < CFG_MAX_ROUTE_HEADERS + extra; i++)
			sb_add(&b, ", { name = \"x%d\"; value = \"\"; }", i);
		sb_add(&b, " );\n  remove = [ \"r0\"");
		for (i = 1; i < CFG_MAX_ROUTE_HEADERS + extra; i++)
			sb_add(&b, ", \"r%d\"", i);
		sb_add(&b, " ]; }; }");
		for (i = 1; i < CFG_MAX_ROUTES + extra; i++)
			sb_add(&b, ",\n{ }");
		sb_add(&b, " ); } );\n");
		if (!extra) {
			const struct cfg_route *r;

			c = load_ok(b.p);
			assert_int_equal(c->services[0].n_retry_on_status, CFG_MAX_RETRY_STATUS);
			assert_int_equal(c->services[0].n_routes, CFG_MAX_ROUTES);
			r = &c->services[0].routes[0];
			assert_int_equal(r->n_match_headers, CFG_MAX_ROUTE_HEADERS);
			assert_int_equal(r->n_backends, CFG_MAX_BACKENDS);
			assert_int_equal(r->n_add_headers, CFG_MAX_ROUTE_HEADERS);
			assert_int_equal(r->n_remove_headers, CFG_MAX_ROUTE_HEADERS);
			assert_string_equal(c->services[0].routes[CFG_MAX_ROUTES - 1].name, "route255");
			cfg_free(c);
		} else {
			static const char *const want[] = {
				"t.conf:2: services[0].retry.on_status: 33 entries; at most 32 are supported",
				"t.conf:3: services[0].routes: 257 entries; at most 256 routes per service are supported",
				"t.conf:4: services[0].routes[0].match.headers: 33 entries; at most 32 are supported",
				"t.conf:5: services[0].routes[0].backends: 33 entries; at most 32 backends per route are supported",
				"t.conf:6: services[0].routes[0].request_headers.add: 33 entries; at most 32 are supported",
				"t.conf:7: services[0].routes[0].request_headers.remove: 33 entries; at most 32 are supported",
				NULL,
			};

			expect_errors("route limits", b.p, want);
		}
		free(b.p);
	}
}

/* All services together may not hold more addresses than the BPF map. */
static void test_limit_total_vips(void **state)
{
	struct sbuf b = { 0 };
	int s, i, n = 0, line = 1, bad_line = 0, bad_s = 0, bad_i = 0;
	char want[256];

	sb_add(&b, "services = (\n");
	for (s = 0; n <= WEFT_MAX_SERVICE_ADDRS; s++) {
		line++;
		sb_add(&b, "%s{ name = \"s%d\"; addresses = [\n", s ? "," : "", s);
		for (i = 0; i < CFG_MAX_SVC_ADDRS && n <= WEFT_MAX_SERVICE_ADDRS; i++, n++) {
			line++;
			/* the comma on the element's line: libconfig dates a string by the token after it */
			sb_add(&b, "%s\"127.%d.%d.%d:80\"", i ? ",\n" : "", 10 + n / 65536, n / 256 % 256, n % 256);
			if (n == WEFT_MAX_SERVICE_ADDRS) {
				bad_line = line;
				bad_s = s;
				bad_i = i;
			}
		}
		sb_add(&b, " ]; }\n");
	}
	sb_add(&b, ");\n");
	snprintf(
		want, sizeof(want),
		"t.conf:%d: services[%d].addresses[%d]: more than 65536 service addresses in all; that is the size of the BPF map weft_services",
		bad_line, bad_s, bad_i);
	expect_one_error(b.p, want);
	free(b.p);
}

/* libconfig's parser stack is bounded; running out is a plain error, not a crash. */
static void test_deep_nesting(void **state)
{
	struct sbuf b = { 0 };
	int i;

	sb_add(&b, "a = ");
	for (i = 0; i < 20000; i++)
		sb_add(&b, "(");
	for (i = 0; i < 20000; i++)
		sb_add(&b, ")");
	sb_add(&b, ";\n");
	expect_one_error(b.p, "t.conf:1: syntax error: memory exhausted; brackets are nested too deep");
	free(b.p);
}

/* At most CFG_MAX_ERRORS messages, then one line saying there were more. */
static void test_error_cap(void **state)
{
	struct cfg_errors e = { 0 };
	struct weft_config *c = NULL;
	struct sbuf b = { 0 };
	int i;

	sb_add(&b, "intercept: { cgroups = [\n\"\"");
	for (i = 1; i < 1500; i++)
		sb_add(&b, ",\n\"\"");
	sb_add(&b, " ]; };\n");
	assert_int_equal(cfg_load_string(b.p, "t.conf", &c, &e), -EINVAL);
	assert_null(c);
	assert_int_equal(e.n, CFG_MAX_ERRORS + 1);
	assert_string_equal(
		e.msgs[0],
		"t.conf:2: intercept.cgroups[0]: is empty; write a cgroup path such as \"system.slice/app.service\"");
	assert_string_equal(
		e.msgs[CFG_MAX_ERRORS - 1],
		"t.conf:1001: intercept.cgroups[999]: is empty; write a cgroup path such as \"system.slice/app.service\"");
	assert_string_equal(e.msgs[CFG_MAX_ERRORS], "... more errors not shown");
	cfg_errors_free(&e);
	free(b.p);
}

/* --- files ----------------------------------------------------------------------- */

static char tmpdir[64];

static int files_setup(void **state)
{
	strcpy(tmpdir, "/tmp/weft-test-config.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int files_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* kubernetes: explicit keys, defaults from the environment, and each refusal. */
static void test_kubernetes(void **state)
{
	struct weft_config *c;

	(void)state;
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("NODE_NAME");
	c = load_ok("agent = { };\n");
	assert_false(c->kubernetes.enabled);
	cfg_free(c);

	c = load_ok("kubernetes = { api = \"https://[fd00::1]:6443\"; node_name = \"node-a.example\";\n"
		    "  token_file = \"/t\"; ca_file = \"/c\"; namespaces = [ \"default\", \"shop-1\" ]; };\n");
	assert_true(c->kubernetes.enabled);
	assert_string_equal(c->kubernetes.api, "https://[fd00::1]:6443");
	assert_string_equal(fmt_addr(&c->kubernetes.api_addr), "[fd00::1]:6443");
	assert_string_equal(c->kubernetes.node_name, "node-a.example");
	assert_string_equal(c->kubernetes.token_file, "/t");
	assert_string_equal(c->kubernetes.ca_file, "/c");
	assert_int_equal(c->kubernetes.n_namespaces, 2);
	assert_string_equal(c->kubernetes.namespaces[1], "shop-1");
	cfg_free(c);

	/* in a pod: the API and the node name come from the environment */
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv("NODE_NAME", "worker-3", 1);
	c = load_ok("kubernetes = { };\n");
	assert_string_equal(c->kubernetes.api, "https://10.96.0.1:443");
	assert_string_equal(c->kubernetes.node_name, "worker-3");
	assert_string_equal(c->kubernetes.token_file, CFG_K8S_DEFAULT_TOKEN);
	assert_string_equal(c->kubernetes.ca_file, CFG_K8S_DEFAULT_CA);
	assert_int_equal(c->kubernetes.n_namespaces, 0);
	cfg_free(c);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::10", 1);
	unsetenv("KUBERNETES_SERVICE_PORT");
	c = load_ok("kubernetes = { };\n");
	assert_string_equal(c->kubernetes.api, "https://[fd00::10]:443");
	cfg_free(c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("NODE_NAME");

	expect_errors("outside a pod", "kubernetes = { };\n",
		      (const char *const[]){
			      "t.conf:1: kubernetes.api: not set and $KUBERNETES_SERVICE_HOST is empty (weftd is not "
			      "in a pod); write api = \"https://IP:PORT\";",
			      "t.conf:1: kubernetes.node_name: not set and $NODE_NAME is empty; set it (a DaemonSet "
			      "passes it with the downward API: fieldRef spec.nodeName)",
			      NULL });
	expect_errors("bad values",
		      "kubernetes = { api = \"http://10.0.0.1:80\"; node_name = \"Node_A\";\n"
		      "  token_file = \"\"; namespaces = ( \"ok\", \"-bad\", 7 ); kubeconfig = \"x\"; };\n",
		      (const char *const[]){
			      "t.conf:1: kubernetes.api: 'http://10.0.0.1:80' must start with https:// (the API is "
			      "only spoken over TLS)",
			      "t.conf:1: kubernetes.node_name: 'Node_A' is not a DNS-1123 name (lower-case letters, "
			      "digits, '-' and '.')",
			      "t.conf:2: kubernetes.kubeconfig: unknown key; valid keys are api, token_file, ca_file, "
			      "node_name, namespaces",
			      "t.conf:2: kubernetes.token_file: is empty",
			      "t.conf:2: kubernetes.namespaces[1]: '-bad' is not a DNS-1123 label (lower-case letters, "
			      "digits and '-')",
			      "t.conf:2: kubernetes.namespaces[2]: expected a string (a namespace), got an integer",
			      NULL });
	expect_errors(
		"a name, not an IP",
		"kubernetes = { api = \"https://kubernetes.default.svc:443\"; node_name = \"n\"; };\n",
		(const char *const[]){ "t.conf:1: kubernetes.api: 'https://kubernetes.default.svc:443' is not "
				       "https://IP:PORT: weftd resolves no names (it never blocks on a resolver); "
				       "write the API's IP, as $KUBERNETES_SERVICE_HOST gives it",
				       NULL });
}

/* A "<namespace>/<service>:<port>" entry: the policy of a discovered service, nothing more. */
static void test_kubernetes_overrides(void **state)
{
	struct weft_config *c;

	(void)state;
	c = load_ok("kubernetes = { api = \"https://10.0.0.1:443\"; node_name = \"n\"; };\n"
		    "services = (\n"
		    "  { name = \"shop/cart:80\"; retry = { attempts = 2; };\n"
		    "    routes = ( { name = \"v2\"; match = { path_prefix = \"/v2\"; };\n"
		    "                 backends = ( { service = \"shop/cart-v2:8080\"; } ); } ); },\n"
		    "  { name = \"shop/cart-v2:8080\"; protocol = \"http\"; },\n"
		    "  { name = \"web\"; addresses = [ \"127.10.0.1:80\" ]; }\n"
		    ");\n");
	assert_int_equal(c->n_services, 3);
	assert_int_equal(c->services[0].source, CFG_SRC_OVERRIDE);
	assert_int_equal(c->services[0].n_addrs, 0);
	assert_int_equal(c->services[0].n_endpoints, 0);
	assert_false(c->services[0].protocol_set);
	assert_int_equal(c->services[0].retry_attempts, 2);
	assert_int_equal(c->services[0].routes[0].backends[0].index, 1);
	assert_int_equal(c->services[1].source, CFG_SRC_OVERRIDE);
	assert_true(c->services[1].protocol_set);
	assert_int_equal(c->services[1].protocol, CFG_PROTO_HTTP);
	assert_int_equal(c->services[2].source, CFG_SRC_FILE);
	assert_string_equal(cfg_source_name(c->services[0].source), "kubernetes+config");
	cfg_free(c);

	expect_errors("addresses and endpoints come from the API",
		      "kubernetes = { api = \"https://10.0.0.1:443\"; node_name = \"n\"; };\n"
		      "services = ( { name = \"shop/cart:80\"; addresses = [ \"127.10.0.1:80\" ];\n"
		      "  endpoints = ( { address = \"127.0.0.1:8080\"; } ); } );\n",
		      (const char *const[]){
			      "t.conf:2: services[0].addresses: 'shop/cart:80' is a service discovered from "
			      "Kubernetes; its addresses come from the API (the Service and its EndpointSlices). "
			      "Remove addresses here: this entry sets only its policy (timeouts, retry, routes, "
			      "limits, ...)",
			      "t.conf:3: services[0].endpoints: 'shop/cart:80' is a service discovered from "
			      "Kubernetes; its endpoints come from the API (the Service and its EndpointSlices). "
			      "Remove endpoints here: this entry sets only its policy (timeouts, retry, routes, "
			      "limits, ...)",
			      NULL });
	expect_errors("not a discovered name",
		      "kubernetes = { api = \"https://10.0.0.1:443\"; node_name = \"n\"; };\n"
		      "services = ( { name = \"Shop/cart:80\"; }, { name = \"shop/cart\"; },\n"
		      "  { name = \"shop/cart:0\"; }, { name = \"shop/cart:65536\"; }, { name = \"shop/9cart:80\"; },\n"
		      "  { name = \"shop/a/b:80\"; } );\n",
		      (const char *const[]){
			      "t.conf:2: services[0].name: 'Shop/cart:80' is not the name of a discovered service; "
			      "to set the policy of one, write \"<namespace>/<service>:<port>\" as weftctl services "
			      "shows it, e.g. \"shop/cart:80\"",
			      "t.conf:2: services[1].name: 'shop/cart' is not the name of a discovered service; to "
			      "set the policy of one, write \"<namespace>/<service>:<port>\" as weftctl services "
			      "shows it, e.g. \"shop/cart:80\"",
			      "t.conf:3: services[2].name: 'shop/cart:0' is not the name of a discovered service; to "
			      "set the policy of one, write \"<namespace>/<service>:<port>\" as weftctl services "
			      "shows it, e.g. \"shop/cart:80\"",
			      "t.conf:3: services[3].name: 'shop/cart:65536' is not the name of a discovered service; "
			      "to set the policy of one, write \"<namespace>/<service>:<port>\" as weftctl services "
			      "shows it, e.g. \"shop/cart:80\"",
			      "t.conf:3: services[4].name: 'shop/9cart:80' is not the name of a discovered service; "
			      "to set the policy of one, write \"<namespace>/<service>:<port>\" as weftctl services "
			      "shows it, e.g. \"shop/cart:80\"",
			      "t.conf:4: services[5].name: 'shop/a/b:80' is not the name of a discovered service; "
			      "to set the policy of one, write \"<namespace>/<service>:<port>\" as weftctl services "
			      "shows it, e.g. \"shop/cart:80\"",
			      NULL });
	expect_errors("without discovery", "services = ( { name = \"shop/cart:80\"; } );\n",
		      (const char *const[]){
			      "t.conf:1: services[0].name: 'shop/cart:80' names a service discovered from "
			      "Kubernetes, but there is no kubernetes group; add kubernetes: { }; "
			      "(docs/kubernetes.md) or give the service a name without '/' and its addresses and "
			      "endpoints",
			      NULL });
}

static void test_file_ok_with_tls(void **state)
{
	char conf[128], ca[128], cert[128], key[128], text[4096];
	struct cfg_errors e = { 0 };
	struct weft_config *c = NULL;
	int r;

	snprintf(conf, sizeof(conf), "%s/weft.conf", tmpdir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", tmpdir);
	snprintf(cert, sizeof(cert), "%s/node.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/node.key", tmpdir);
	write_file(ca, "x", 1);
	write_file(cert, "x", 1);
	write_file(key, "x", 1);
	snprintf(text, sizeof(text), "%s\ntls: { ca = \"%s\"; cert = \"%s\"; key = \"%s\"; };\n", full_config, ca, cert,
		 key);
	write_file(conf, text, strlen(text));

	r = cfg_load(conf, &c, &e);
	if (r)
		dump_errs(&e);
	assert_int_equal(r, 0);
	assert_string_equal(c->path, conf);
	assert_string_equal(c->tls_ca, ca);
	assert_string_equal(c->tls_cert, cert);
	assert_string_equal(c->tls_key, key);
	assert_int_equal(c->n_services, 3);
	/* the hash of the bytes parsed (weft_config_hash): FNV-1a 64 */
	{
		uint64_t h = 1469598103934665603ull;
		const char *q;

		for (q = text; *q; q++)
			h = (h ^ (unsigned char)*q) * 1099511628211ull;
		assert_true(c->text_hash == h);
	}
	cfg_free(c);

	/* a certificate path that is a FIFO: refused without opening it */
	unlink(cert);
	assert_int_equal(mkfifo(cert, 0600), 0);
	c = NULL;
	assert_int_equal(cfg_load(conf, &c, &e), -EINVAL);
	assert_null(c);
	assert_int_equal(e.n, 1);
	snprintf(text, sizeof(text),
		 "%s:34: tls.cert: cannot read '%s': not a regular file (a FIFO); write the path of a PEM file", conf,
		 cert);
	assert_string_equal(e.msgs[0], text);
	cfg_errors_free(&e);
	unlink(cert);

	/* errors name the file as given */
	write_file(conf, "agent: {\n  mark = 0;\n};\n", 24);
	c = NULL;
	assert_int_equal(cfg_load(conf, &c, &e), -EINVAL);
	assert_null(c);
	assert_int_equal(e.n, 1);
	snprintf(text, sizeof(text), "%s:2: agent.mark: 0 is out of range (1-2147483647)", conf);
	assert_string_equal(e.msgs[0], text);
	cfg_errors_free(&e);

	/* an unreadable file (root reads everything, so only as a user) */
	if (geteuid() != 0) {
		chmod(key, 0);
		snprintf(text, sizeof(text), "tls: { ca = \"%s\"; cert = \"%s\"; key = \"%s\"; };\n", ca, cert, key);
		assert_int_equal(cfg_load_string(text, "t.conf", &c, &e), -EINVAL);
		assert_int_equal(e.n, 1);
		snprintf(text, sizeof(text), "t.conf:1: tls.key: cannot read '%s': Permission denied", key);
		assert_string_equal(e.msgs[0], text);
		cfg_errors_free(&e);
	}
}

static void test_file_errors(void **state)
{
	struct weft_config *sentinel = (struct weft_config *)&sentinel, *c = sentinel;
	struct cfg_errors e = { 0 };
	char path[128], want[512];
	int fd;

	assert_int_equal(cfg_load("/nonexistent/weft.conf", &c, &e), -ENOENT);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.msgs[0], "/nonexistent/weft.conf: cannot open: No such file or directory");
	cfg_errors_free(&e);

	assert_int_equal(cfg_load(tmpdir, &c, &e), -EISDIR);
	assert_int_equal(e.n, 1);
	snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmpdir);
	assert_string_equal(e.msgs[0], want);
	cfg_errors_free(&e);

	/* a FIFO is refused at once, without opening it (an open would block until a writer came) */
	snprintf(path, sizeof(path), "%s/fifo.conf", tmpdir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(cfg_load(path, &c, &e), -EINVAL);
	assert_int_equal(e.n, 1);
	snprintf(want, sizeof(want), "%s: not a regular file (a FIFO); point weftd -c at a regular file", path);
	assert_string_equal(e.msgs[0], want);
	cfg_errors_free(&e);
	unlink(path);

	assert_int_equal(cfg_load("/dev/null", &c, &e), -EINVAL);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.msgs[0],
			    "/dev/null: not a regular file (a character device); point weftd -c at a regular file");
	cfg_errors_free(&e);

	snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
	write_file(path, "agent: { };\n\n#\0x\n", 17);
	assert_int_equal(cfg_load(path, &c, &e), -EINVAL);
	assert_int_equal(e.n, 1);
	snprintf(want, sizeof(want), "%s:3: contains a NUL byte; a configuration file is plain text", path);
	assert_string_equal(e.msgs[0], want);
	cfg_errors_free(&e);

	snprintf(path, sizeof(path), "%s/huge.conf", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, CFG_MAX_FILE_SIZE + 1), 0);
	close(fd);
	assert_int_equal(cfg_load(path, &c, &e), -EFBIG);
	assert_int_equal(e.n, 1);
	snprintf(want, sizeof(want), "%s: is larger than 16 MiB; that is not a weft configuration", path);
	assert_string_equal(e.msgs[0], want);
	cfg_errors_free(&e);

	snprintf(path, sizeof(path), "%s/syntax.conf", tmpdir);
	write_file(path, "agent: {\n  mark = ;\n};\n", 23);
	assert_int_equal(cfg_load(path, &c, &e), -EINVAL);
	assert_int_equal(e.n, 1);
	snprintf(
		want, sizeof(want),
		"%s:2: syntax error: unexpected text; look for a missing ';', '=', quote or bracket, or a ',' before ']' or ')', here or on the line before",
		path);
	assert_string_equal(e.msgs[0], want);
	cfg_errors_free(&e);
	assert_ptr_equal(c, sentinel);
}

/* The shipped configs are valid (the tests run from the top of the tree). */
static void test_shipped_configs(void **state)
{
	static const char *const files[] = {
		"config/weft.conf",
		"config/examples/plain-host.conf",
		"config/examples/multi-service.conf",
	};
	struct cfg_errors e = { 0 };
	struct weft_config *c;
	size_t i;

	if (access(files[0], R_OK)) {
		skip();
		return;
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		static char text[65536];
		char *at;
		FILE *f;
		size_t n;

		/* examples point tls at /etc/weft/tls/: use a file that exists instead */
		f = fopen(files[i], "re");
		assert_non_null(f);
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		while ((at = strstr(text, "/etc/weft/tls/ca.pem")) || (at = strstr(text, "/etc/weft/tls/node.pem")) ||
		       (at = strstr(text, "/etc/weft/tls/node.key"))) {
			size_t len = strcspn(at, "\"");

			memmove(at + 11, at + len, strlen(at + len) + 1);
			memcpy(at, "/etc/passwd", 11);
		}
		c = NULL;
		if (cfg_load_string(text, files[i], &c, &e)) {
			dump_errs(&e);
			fail_msg("%s rejected", files[i]);
		}
		cfg_free(c);
	}
	/* the embedded default: what the demo relies on */
	assert_int_equal(cfg_load(files[0], &c, &e), 0);
	assert_string_equal(fmt_addr(&c->admin), "127.0.0.1:9990");
	assert_int_equal(c->outbound_port, 15001);
	assert_int_equal(c->n_cgroups, 1);
	assert_string_equal(c->cgroups[0], "weft-demo.slice/*");
	assert_int_equal(c->n_services, 2);
	assert_string_equal(c->services[0].name, "demo");
	assert_int_equal(c->services[0].n_addrs, 1);
	assert_string_equal(fmt_addr(&c->services[0].addrs[0]), "127.10.0.1:80");
	assert_int_equal(c->services[0].protocol, CFG_PROTO_HTTP);
	assert_int_equal(c->services[0].balancer, CFG_BAL_ROUND_ROBIN);
	assert_int_equal(c->services[0].n_endpoints, 2);
	assert_string_equal(fmt_addr(&c->services[0].endpoints[0].addr), "127.0.0.1:18081");
	assert_string_equal(fmt_addr(&c->services[0].endpoints[1].addr), "127.0.0.1:18082");
	/* the demo's route: /v2/ to the service demo-v2, with a header added */
	assert_int_equal(c->services[0].n_routes, 1);
	assert_string_equal(c->services[0].routes[0].name, "v2");
	assert_int_equal(c->services[0].routes[0].path_kind, CFG_PATH_PREFIX);
	assert_string_equal(c->services[0].routes[0].path, "/v2/");
	assert_int_equal(c->services[0].routes[0].n_backends, 1);
	assert_int_equal(c->services[0].routes[0].backends[0].index, 1);
	assert_string_equal(c->services[1].name, "demo-v2");
	cfg_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bounds_accepted),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_http_routes),
		cmocka_unit_test(test_http_render),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_many_errors_at_once),
		cmocka_unit_test(test_errs_append_and_null),
		cmocka_unit_test(test_limit_services),
		cmocka_unit_test(test_limit_addresses_endpoints),
		cmocka_unit_test(test_limit_cgroups),
		cmocka_unit_test(test_limit_total_vips),
		cmocka_unit_test(test_limit_routes),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test_setup_teardown(test_file_ok_with_tls, files_setup, files_teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, files_setup, files_teardown),
		cmocka_unit_test(test_shipped_configs),
		cmocka_unit_test(test_kubernetes),
		cmocka_unit_test(test_kubernetes_overrides),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
