// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * render: admin pages from a snapshot (render.h). The output format is the
 * admin API contract (docs/operations.md): changing a byte here changes what
 * scripts and Prometheus read.
 */
#include "admin/render.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "admin/snapshot.h"
#include "codec/kubepath.h"
#include "http/zipkin.h"
#include "listen/pods.h"
#include "lib/buf.h"
#include "lib/table.h"

static uint64_t ep_errors(const struct snap_ep *ep)
{
	uint64_t errs = 0;
	int k;

	for (k = 0; k < SVC_ERR__MAX; k++)
		errs += ep->connect_errors[k];
	return errs;
}

static const char *ep_state(const struct snap_ep *ep)
{
	return ep->bal.state == BAL_READY ? "ready" : ep->bal.state == BAL_PROBING ? "probing" : "ejected";
}

/* ,"http":{...} for a service proxied per request (in flight, retries, budget, shed, routes). */
static void render_service_http(const struct snap_svc *s, struct buf *out)
{
	size_t i;

	if (!s->http)
		return;
	buf_printf(out,
		   ",\"http\":{\"requests_in_flight\":%u,\"max_requests\":%u,\"retries\":%llu,"
		   "\"retry_budget_exhausted\":%llu,\"retry_budget_available\":%llu,\"shed\":%llu,\"routes\":[",
		   s->inflight, s->max_requests, (unsigned long long)s->retries,
		   (unsigned long long)s->budget_exhausted, (unsigned long long)s->budget_available,
		   (unsigned long long)s->shed);
	for (i = 0; i < s->n_routes; i++) {
		buf_puts(out, i ? "," : "");
		buf_json_str(out, s->routes[i]);
	}
	buf_puts(out, "]}");
}

/*
 * ,"locality":{...}: the node's zone, each tier (priority, local or not,
 * endpoints, ready, health and load in percent) and, in words, where the
 * service's traffic goes and why (loc_explain).
 */
static void render_locality(const struct snap_svc *s, struct buf *out)
{
	char why[1024];
	size_t i;
	bool first = true, spill = false;
	int best = -1;

	if (!s->n_tiers)
		return;
	buf_puts(out, ",\"locality\":{\"zone\":");
	if (s->local_zone)
		buf_json_str(out, s->local_zone);
	else
		buf_puts(out, "null");
	buf_printf(out, ",\"overprovisioning\":%u.%02u,\"panic\":%s,\"tiers\":[", s->overprov_pct / 100,
		   s->overprov_pct % 100, s->plan.panic ? "true" : "false");
	for (i = 0; i < s->n_tiers; i++) {
		if (!s->plan.total[i])
			continue;
		if (best < 0)
			best = (int)i;
		else if (s->plan.load[i])
			spill = true;
		buf_printf(out,
			   "%s{\"priority\":%u,\"local\":%s,\"endpoints\":%u,\"ready\":%u,\"health_pct\":%u,"
			   "\"load_pct\":%u}",
			   first ? "" : ",", s->tiers[i].priority, s->tiers[i].local ? "true" : "false",
			   s->plan.total[i], s->plan.ready[i], s->plan.health[i], s->plan.load[i]);
		first = false;
	}
	/* in_use: the most preferred tier with load; spilling: traffic beyond the most preferred tier with endpoints */
	buf_puts(out, "],\"in_use\":");
	for (i = 0; i < s->n_tiers && !s->plan.load[i]; i++)
		;
	if (i < s->n_tiers)
		buf_printf(out, "{\"priority\":%u,\"local\":%s}", s->tiers[i].priority,
			   s->tiers[i].local ? "true" : "false");
	else
		buf_puts(out, "null");
	buf_printf(out, ",\"spilling\":%s,\"reason\":",
		   spill || (best >= 0 && !s->plan.load[best] && !s->plan.panic) ? "true" : "false");
	buf_json_str(out, loc_explain(&s->plan, s->tiers, s->local_zone, s->overprov_pct, why, sizeof(why)));
	buf_puts(out, "}");
}

void render_services(const struct snapshot *snap, struct buf *out, render_svc_fn disc, void *disc_arg)
{
	char a[ADDR_STRLEN];
	size_t i, j;

	buf_puts(out, "{\"services\":[");
	for (i = 0; i < snap->n_svcs; i++) {
		const struct snap_svc *s = &snap->svcs[i];

		buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
		buf_json_str(out, s->name);
		buf_printf(out, ",\"source\":\"%s\"", cfg_source_name(s->source));
		buf_printf(out, ",\"protocol\":\"%s\",\"addresses\":[", cfg_protocol_name(s->protocol));
		for (j = 0; j < s->n_vips; j++)
			buf_printf(out, "%s\"%s\"", j ? "," : "", addr_format(&s->vips[j], a, sizeof(a)));
		buf_printf(
			out,
			"],\"balancer\":\"%s\",\"active\":%u,\"pending\":%u,\"ejected\":%zu,"
			"\"panic_picks\":%llu,\"connect_failed\":%llu,\"over_limit\":%llu,"
			"\"over_service_limit\":%llu,\"over_pending\":%llu,\"over_workload_limit\":%llu,\"endpoints\":[",
			cfg_balancer_name(s->balancer), s->active, s->pending, s->ejected,
			(unsigned long long)s->panics, (unsigned long long)s->no_endpoint,
			(unsigned long long)s->over_limit, (unsigned long long)s->over_service_limit,
			(unsigned long long)s->over_pending, (unsigned long long)s->over_workload);
		for (j = 0; j < s->n_eps; j++) {
			const struct snap_ep *ep = &s->eps[j];

			buf_printf(out,
				   "%s{\"address\":\"%s\",\"state\":\"%s\",\"weight\":%u,\"ewma_ms\":%.3f,"
				   "\"active\":%u,\"connections\":%llu,\"connect_errors\":%llu,"
				   "\"consecutive_failures\":%u,\"ejections\":%llu",
				   j ? "," : "", ep->addr, ep_state(ep), ep->bal.weight, ep->bal.ewma_us / 1000.0,
				   ep->bal.active, (unsigned long long)ep->opened, (unsigned long long)ep_errors(ep),
				   ep->bal.consecutive, (unsigned long long)ep->bal.ejections);
			if (ep->node[0])
				buf_printf(out, ",\"node\":\"%s\"", ep->node);
			buf_printf(out, ",\"source\":\"%s\"", cfg_ep_source_name((enum cfg_ep_source)ep->source));
			if (ep->zone) {
				buf_puts(out, ",\"zone\":");
				buf_json_str(out, ep->zone);
			}
			if (ep->has_info)
				buf_printf(out, ",\"priority\":%u", ep->priority);
			if (ep->bal.state != BAL_READY) {
				buf_printf(out, ",\"ejected_for_s\":%.3f,\"reason\":",
					   ep->bal.state == BAL_EJECTED && ep->bal.ejected_until > snap->now
						   ? ep->bal.ejected_until - snap->now
						   : 0.0);
				buf_json_str(out, ep->eject_reason ? ep->eject_reason : "");
			}
			if (ep->requests)
				buf_printf(out, ",\"http_requests\":%llu,\"http_5xx\":%llu",
					   (unsigned long long)ep->requests, (unsigned long long)ep->responses_5xx);
			buf_puts(out, "}");
		}
		buf_puts(out, "]");
		render_service_http(s, out);
		render_locality(s, out);
		if (disc)
			disc(disc_arg, s->name, out);
		buf_puts(out, "}");
	}
	buf_puts(out, "]}\n");
}

void render_services_text(const struct snapshot *snap, struct buf *out, bool wide)
{
	/* narrow: ADDRESSES, WEIGHT, PROTOCOL, ACTIVE, REQUESTS go first; long service names are cut */
	static const int drop[] = { 2, 5, 1, 7, 10, -1 };
	static const char *const hdr[] = { "SERVICE", "PROTOCOL", "ADDRESSES", "ENDPOINT", "STATE",   "WEIGHT",
					   "EWMA_MS", "ACTIVE",   "CONNS",     "ERRORS",   "REQUESTS" };
	char addrs[256], a[ADDR_STRLEN], w[16], ewma[32], act[16], conns[24], errs[24], reqs[24];
	struct table t;
	size_t i, j, n;

	table_init(&t, 11, hdr);
	for (i = 0; i < snap->n_svcs; i++) {
		const struct snap_svc *s = &snap->svcs[i];

		addrs[0] = '\0';
		for (j = 0, n = 0; j < s->n_vips && n < sizeof(addrs) - 1; j++)
			n += (size_t)snprintf(addrs + n, sizeof(addrs) - n, "%s%s", j ? "," : "",
					      addr_format(&s->vips[j], a, sizeof(a)));
		if (!s->n_eps) {
			const char *row[] = { s->name, cfg_protocol_name(s->protocol),
					      addrs,   "(none)",
					      NULL,    NULL,
					      NULL,    NULL,
					      NULL,    NULL,
					      NULL };
			table_row(&t, row);
		}
		for (j = 0; j < s->n_eps; j++) {
			const struct snap_ep *ep = &s->eps[j];

			snprintf(w, sizeof(w), "%u", ep->bal.weight);
			snprintf(ewma, sizeof(ewma), "%.3f", ep->bal.ewma_us / 1000.0);
			snprintf(act, sizeof(act), "%u", ep->bal.active);
			snprintf(conns, sizeof(conns), "%llu", (unsigned long long)ep->opened);
			snprintf(errs, sizeof(errs), "%llu", (unsigned long long)ep_errors(ep));
			/* HTTP attempts sent (per request); "-" for opaque services */
			if (s->http)
				snprintf(reqs, sizeof(reqs), "%llu", (unsigned long long)ep->requests);
			else
				snprintf(reqs, sizeof(reqs), "-");
			{
				const char *row[] = { j ? "" : s->name,
						      j ? "" : cfg_protocol_name(s->protocol),
						      j ? "" : addrs,
						      ep->addr,
						      ep_state(ep),
						      w,
						      ewma,
						      act,
						      conns,
						      errs,
						      reqs };
				table_row(&t, row);
			}
		}
	}
	if (!wide)
		table_fit(&t, TABLE_WIDTH, drop, 0);
	table_render(&t, out);
}

void render_conns(const struct snapshot *snap, struct buf *out, render_cgroup_fn cgroup_name, void *arg)
{
	struct kube_pod kp;
	struct weft_sockaddr dst;
	char a[ADDR_STRLEN], c[ADDR_STRLEN];
	size_t i;

	buf_puts(out, "{\"conns\":[");
	for (i = 0; i < snap->n_conns; i++) {
		const struct snap_conn *cn = &snap->conns[i];
		const char *cg = cgroup_name ? cgroup_name(arg, cn->orig.cgroup_id) : NULL;

		buf_puts(out, i ? ",{\"cgroup\":" : "{\"cgroup\":");
		if (cg)
			buf_json_str(out, cg);
		else
			buf_puts(out, "null");
		if (cg && kube_pod_from_cgroup(cg, &kp) == 0)
			buf_printf(out, ",\"pod_uid\":\"%s\"", kp.uid);
		addr_from_key(&cn->orig.dst, &dst);
		if (!cn->http) {
			buf_printf(out, ",\"cgroup_id\":%llu,\"pid\":%u,\"client\":\"%s\"",
				   (unsigned long long)cn->orig.cgroup_id, cn->orig.pid,
				   addr_format(&cn->client, a, sizeof(a)));
			buf_printf(out, ",\"orig_dst\":\"%s\",\"service\":", addr_format(&dst, a, sizeof(a)));
			buf_json_str(out, cn->svc);
			if (cn->endpoint[0])
				buf_printf(out, ",\"endpoint\":\"%s\",\"state\":\"established\"", cn->endpoint);
			else
				buf_puts(out, ",\"endpoint\":null,\"state\":\"connecting\"");
			buf_printf(out, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"age_s\":%.3f}",
				   (unsigned long long)cn->bytes_in, (unsigned long long)cn->bytes_out,
				   snap->wall - cn->started);
			continue;
		}
		buf_printf(out, ",\"cgroup_id\":%llu,\"pid\":%u,\"client\":\"%s\",\"orig_dst\":\"%s\",\"service\":",
			   (unsigned long long)cn->orig.cgroup_id, cn->orig.pid, addr_format(&cn->client, c, sizeof(c)),
			   addr_format(&dst, a, sizeof(a)));
		buf_json_str(out, cn->svc);
		buf_puts(out, ",\"endpoint\":");
		if (cn->endpoint[0])
			buf_json_str(out, cn->endpoint);
		else
			buf_puts(out, "null");
		buf_printf(out, ",\"state\":\"%s\",\"protocol\":\"%s\"", cn->state, cn->http2 ? "http2" : "http");
		if (cn->http2)
			buf_printf(out, ",\"streams\":%u", cn->streams);
		buf_printf(out, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"age_s\":%.3f}",
			   (unsigned long long)cn->bytes_in, (unsigned long long)cn->bytes_out,
			   snap->wall - cn->started);
	}
	buf_puts(out, "]}\n");
}

void render_conns_text(const struct snapshot *snap, struct buf *out, render_cgroup_fn cgroup_name, void *arg, bool wide)
{
	static const char *const hdr[] = { "CGROUP",  "POD",      "PID",      "CLIENT",    "ORIG_DST",
					   "SERVICE", "ENDPOINT", "BYTES_IN", "BYTES_OUT", "AGE_S" };
	/* narrow: PID, CLIENT, ORIG_DST, CGROUP, POD go first; long service names are cut */
	static const int drop[] = { 2, 3, 4, 0, 1, -1 };
	struct kube_pod kp;
	char pid[16], cl[ADDR_STRLEN], od[ADDR_STRLEN], bi[24], bo[24], age[24], cgid[32];
	struct weft_sockaddr dst;
	struct table t;
	size_t i;

	table_init(&t, 10, hdr);
	for (i = 0; i < snap->n_conns; i++) {
		const struct snap_conn *cn = &snap->conns[i];
		const char *cg = cgroup_name ? cgroup_name(arg, cn->orig.cgroup_id) : NULL;
		const char *ep;

		if (!cg) {
			snprintf(cgid, sizeof(cgid), "id:%llu", (unsigned long long)cn->orig.cgroup_id);
			cg = cgid;
		}
		snprintf(pid, sizeof(pid), "%u", cn->orig.pid);
		addr_format(&cn->client, cl, sizeof(cl));
		addr_from_key(&cn->orig.dst, &dst);
		addr_format(&dst, od, sizeof(od));
		snprintf(bi, sizeof(bi), "%llu", (unsigned long long)cn->bytes_in);
		snprintf(bo, sizeof(bo), "%llu", (unsigned long long)cn->bytes_out);
		snprintf(age, sizeof(age), "%.1f", snap->wall - cn->started);
		if (!cn->http)
			ep = cn->endpoint[0] ? cn->endpoint : "(connecting)";
		else
			ep = strcmp(cn->state, "idle") == 0 || strcmp(cn->state, "http2-idle") == 0 ? "(idle)"
			     : cn->endpoint[0]                                                      ? cn->endpoint
												    : "(routing)";
		{
			const char *pod = kube_pod_from_cgroup(cg, &kp) == 0 ? kp.uid : "-";
			const char *row[] = { cg, pod, pid, cl, od, cn->svc, ep, bi, bo, age };

			table_row(&t, row);
		}
	}
	if (!wide)
		table_fit(&t, TABLE_WIDTH, drop, 5);
	table_render(&t, out);
}

/* Labels for one endpoint series: service="..",endpoint="..",direction="outbound" */
static void ep_labels(struct buf *out, const struct snap_ep *ep)
{
	buf_puts(out, "service=\"");
	buf_prom_label(out, ep->svc);
	buf_printf(out, "\",endpoint=\"%s\",direction=\"outbound\"", ep->addr);
}

/* Starts a sample: metric{service="<name, escaped>  (the caller closes the quote and adds labels) */
static void metric_svc(struct buf *out, const char *metric, const char *svc)
{
	buf_puts(out, metric);
	buf_puts(out, "{service=\"");
	buf_prom_label(out, svc);
}

/* Starts a sample: metric{service="<svc>",route="<route>  (escaped; the caller goes on) */
static void metric_route(struct buf *out, const char *metric, const char *svc, const char *route)
{
	metric_svc(out, metric, svc);
	buf_puts(out, "\",route=\"");
	buf_prom_label(out, route);
}

static const uint64_t *rejected_of(const struct snap_stat *st)
{
	return st->rejected;
}

static const uint64_t *idle_closed_of(const struct snap_stat *st)
{
	return st->idle_closed;
}

/* One sample per HTTP service and name: metric{service="..",label="names[i]"} vals(st)[i]. */
static void svc_counters(struct buf *out, const struct snapshot *snap, const char *metric, const char *label,
			 const char *const *names, size_t n, const uint64_t *(*vals)(const struct snap_stat *))
{
	size_t k, i;

	for (k = 0; k < snap->n_stats; k++) {
		const struct snap_stat *st = &snap->stats[k];

		if (!st->http)
			continue;
		for (i = 0; i < n; i++) {
			metric_svc(out, metric, st->name);
			buf_printf(out, "\",%s=\"%s\"} %llu\n", label, names[i], (unsigned long long)vals(st)[i]);
		}
	}
}

static void render_http_metrics(const struct snapshot *snap, struct zipkin *zipkin, struct buf *out)
{
	static const char *const cls[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };
	const struct snap_stat *st;
	const struct snap_route *r;
	const struct snap_ep *ep;
	size_t i, k, n;

	buf_puts(out, "# HELP weft_http_requests_total HTTP requests answered, by service, route and status class.\n"
		      "# TYPE weft_http_requests_total counter\n");
	for (k = 0; k < snap->n_stats; k++)
		for (st = &snap->stats[k], n = 0; n < st->n_routes; n++)
			for (r = &st->routes[n], i = 1; i < 6; i++) {
				if (!r->by_class[i] && i != 2 && i != 5)
					continue;
				metric_route(out, "weft_http_requests_total", st->name, r->name);
				buf_printf(out, "\",class=\"%s\"} %llu\n", cls[i], (unsigned long long)r->by_class[i]);
			}
	buf_puts(out, "# HELP weft_http_request_duration_seconds HTTP request duration, from the request head to the "
		      "end of the response.\n# TYPE weft_http_request_duration_seconds histogram\n");
	for (k = 0; k < snap->n_stats; k++)
		for (st = &snap->stats[k], n = 0; n < st->n_routes; n++) {
			r = &st->routes[n];
			for (i = 0; i <= H1_REQ_BUCKETS; i++) {
				metric_route(out, "weft_http_request_duration_seconds_bucket", st->name, r->name);
				if (i < H1_REQ_BUCKETS)
					buf_printf(out, "\",le=\"%g\"} %llu\n", h1_req_bounds[i],
						   (unsigned long long)r->buckets[i]);
				else
					buf_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)r->count);
			}
			metric_route(out, "weft_http_request_duration_seconds_sum", st->name, r->name);
			buf_printf(out, "\"} %.6f\n", r->sum);
			metric_route(out, "weft_http_request_duration_seconds_count", st->name, r->name);
			buf_printf(out, "\"} %llu\n", (unsigned long long)r->count);
		}
	buf_puts(out,
		 "# HELP weft_http_timeouts_total HTTP requests answered 504 by weft (route timeout or deadline).\n"
		 "# TYPE weft_http_timeouts_total counter\n");
	for (k = 0; k < snap->n_stats; k++)
		for (st = &snap->stats[k], n = 0; n < st->n_routes; n++) {
			metric_route(out, "weft_http_timeouts_total", st->name, st->routes[n].name);
			buf_printf(out, "\"} %llu\n", (unsigned long long)st->routes[n].timeouts);
		}
	buf_puts(out, "# HELP weft_grpc_requests_total gRPC calls through HTTP/2 services by status code (grpc-status "
		      "from the endpoint, or the one weft answered).\n# TYPE weft_grpc_requests_total counter\n");
	for (k = 0; k < snap->n_stats; k++) {
		int c;

		st = &snap->stats[k];
		for (c = 0; c <= GRPC_CODES; c++) {
			if (!st->grpc[c])
				continue;
			metric_svc(out, "weft_grpc_requests_total", st->name);
			buf_printf(out, "\",code=\"%s\"} %llu\n", c < GRPC_CODES ? grpc_code_name(c) : "OTHER",
				   (unsigned long long)st->grpc[c]);
		}
	}
#define SVC_COUNTER(metric, help, field)                                                  \
	do {                                                                              \
		buf_puts(out, "# HELP " metric " " help "\n# TYPE " metric " counter\n"); \
		for (k = 0; k < snap->n_stats; k++) {                                     \
			st = &snap->stats[k];                                             \
			if (!st->http)                                                    \
				continue;                                                 \
			metric_svc(out, metric, st->name);                                \
			buf_printf(out, "\"} %llu\n", (unsigned long long)st->field);     \
		}                                                                         \
	} while (0)
	SVC_COUNTER("weft_http_retries_total", "HTTP attempts made after the first, per service.", retries);
	SVC_COUNTER("weft_http_retry_budget_exhausted_total",
		    "HTTP retries not made because the service's retry budget was spent.", budget_exhausted);
	SVC_COUNTER("weft_http_shed_total", "HTTP requests answered 503 at once: limits.max_requests in flight.", shed);
#undef SVC_COUNTER
	buf_puts(out, "# HELP weft_http_requests_in_flight HTTP requests in flight, per service.\n"
		      "# TYPE weft_http_requests_in_flight gauge\n");
	for (k = 0; k < snap->n_stats; k++) {
		st = &snap->stats[k];
		if (!st->http)
			continue;
		metric_svc(out, "weft_http_requests_in_flight", st->name);
		buf_printf(out, "\"} %u\n", st->inflight);
	}
	buf_puts(out, "# HELP weft_http_rejected_total Malformed or unsupported HTTP requests refused by weft, by "
		      "status.\n# TYPE weft_http_rejected_total counter\n");
	svc_counters(out, snap, "weft_http_rejected_total", "status", h1_reject_names, H1_REJECT__MAX, rejected_of);
	buf_puts(out, "# HELP weft_http_idle_closed_total HTTP client connections weft closed for sending nothing: "
		      "state new (no request within http.head_timeout_ms of accept), keepalive (none within "
		      "http.keepalive_idle_ms after a response).\n# TYPE weft_http_idle_closed_total counter\n");
	svc_counters(out, snap, "weft_http_idle_closed_total", "state", h1_idle_names, H1_IDLE__MAX, idle_closed_of);
	buf_puts(out, "# HELP weft_protocol_detected_total Connections to protocol \"auto\" services, by what their "
		      "first bytes were.\n# TYPE weft_protocol_detected_total counter\n");
	for (k = 0; k < snap->n_stats; k++) {
		uint64_t sum = 0;

		st = &snap->stats[k];
		for (i = 0; i < SVC_DETECT__MAX; i++)
			sum += st->detected[i];
		if (!sum)
			continue;
		for (i = 0; i < SVC_DETECT__MAX; i++) {
			metric_svc(out, "weft_protocol_detected_total", st->name);
			buf_printf(out, "\",protocol=\"%s\"} %llu\n", svc_detect_names[i],
				   (unsigned long long)st->detected[i]);
		}
	}
	buf_puts(out, "# HELP weft_http_endpoint_requests_total HTTP attempts sent to an endpoint, retries included.\n"
		      "# TYPE weft_http_endpoint_requests_total counter\n");
	for (k = 0; k < snap->n_eps; k++) {
		ep = &snap->eps[k];
		if (!ep->requests)
			continue;
		metric_svc(out, "weft_http_endpoint_requests_total", ep->svc);
		buf_printf(out, "\",endpoint=\"%s\"} %llu\n", ep->addr, (unsigned long long)ep->requests);
	}
	buf_puts(out, "# HELP weft_http_endpoint_responses_5xx_total HTTP attempts an endpoint answered with a 5xx "
		      "status (they count toward ejection).\n# TYPE weft_http_endpoint_responses_5xx_total counter\n");
	for (k = 0; k < snap->n_eps; k++) {
		ep = &snap->eps[k];
		if (!ep->requests)
			continue;
		metric_svc(out, "weft_http_endpoint_responses_5xx_total", ep->svc);
		buf_printf(out, "\",endpoint=\"%s\"} %llu\n", ep->addr, (unsigned long long)ep->responses_5xx);
	}
	if (zipkin) {
		struct zipkin_stats zs;

		zipkin_get_stats(zipkin, &zs);
		buf_printf(
			out,
			"# HELP weft_tracing_spans_exported_total Spans the Zipkin collector accepted.\n"
			"# TYPE weft_tracing_spans_exported_total counter\n"
			"weft_tracing_spans_exported_total %llu\n"
			"# HELP weft_tracing_spans_dropped_total Spans dropped: export queue full, or their POST failed.\n"
			"# TYPE weft_tracing_spans_dropped_total counter\n"
			"weft_tracing_spans_dropped_total{reason=\"queue_full\"} %llu\n"
			"weft_tracing_spans_dropped_total{reason=\"export_failed\"} %llu\n"
			"# HELP weft_tracing_spans_queued Spans waiting for export.\n"
			"# TYPE weft_tracing_spans_queued gauge\n"
			"weft_tracing_spans_queued %u\n",
			(unsigned long long)zs.exported, (unsigned long long)zs.dropped_full,
			(unsigned long long)zs.dropped_failed, zs.queued);
	}
}

void render_metrics(const struct snapshot *snap, struct zipkin *zipkin, struct buf *out)
{
	const struct snap_stat *st;
	const struct snap_ep *ep;
	size_t i, k;
	int e;

	buf_puts(out, "# HELP weft_connections_total Proxied connections established to an endpoint.\n"
		      "# TYPE weft_connections_total counter\n");
	for (k = 0; k < snap->n_eps; k++) {
		buf_puts(out, "weft_connections_total{");
		ep_labels(out, &snap->eps[k]);
		buf_printf(out, "} %llu\n", (unsigned long long)snap->eps[k].opened);
	}
	buf_puts(out, "# HELP weft_connections_active Proxied connections open now.\n"
		      "# TYPE weft_connections_active gauge\n");
	for (k = 0; k < snap->n_eps; k++) {
		buf_puts(out, "weft_connections_active{");
		ep_labels(out, &snap->eps[k]);
		buf_printf(out, "} %u\n", snap->eps[k].bal.active);
	}
	buf_puts(out, "# HELP weft_bytes_total Bytes proxied; flow to_endpoint is client to endpoint.\n"
		      "# TYPE weft_bytes_total counter\n");
	for (k = 0; k < snap->n_eps; k++) {
		ep = &snap->eps[k];
		buf_puts(out, "weft_bytes_total{");
		ep_labels(out, ep);
		buf_printf(out, ",flow=\"to_endpoint\"} %llu\n", (unsigned long long)ep->bytes_in);
		buf_puts(out, "weft_bytes_total{");
		ep_labels(out, ep);
		buf_printf(out, ",flow=\"to_client\"} %llu\n", (unsigned long long)ep->bytes_out);
	}
	buf_puts(out, "# HELP weft_connect_errors_total Failed connect attempts to an endpoint, by reason.\n"
		      "# TYPE weft_connect_errors_total counter\n");
	for (k = 0; k < snap->n_eps; k++) {
		for (e = 0; e < SVC_ERR__MAX; e++) {
			buf_puts(out, "weft_connect_errors_total{");
			ep_labels(out, &snap->eps[k]);
			buf_printf(out, ",reason=\"%s\"} %llu\n", svc_err_names[e],
				   (unsigned long long)snap->eps[k].connect_errors[e]);
		}
	}
	buf_puts(out, "# HELP weft_connect_duration_seconds Time to establish the upstream connection.\n"
		      "# TYPE weft_connect_duration_seconds histogram\n");
	for (k = 0; k < snap->n_eps; k++) {
		ep = &snap->eps[k];
		for (i = 0; i < SVC_LAT_BUCKETS; i++) {
			/* buckets are kept cumulative (see svc_ep_observe_connect) */
			buf_puts(out, "weft_connect_duration_seconds_bucket{");
			ep_labels(out, ep);
			buf_printf(out, ",le=\"%g\"} %llu\n", svc_lat_bounds[i],
				   (unsigned long long)ep->lat_buckets[i]);
		}
		buf_puts(out, "weft_connect_duration_seconds_bucket{");
		ep_labels(out, ep);
		buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)ep->lat_count);
		buf_puts(out, "weft_connect_duration_seconds_sum{");
		ep_labels(out, ep);
		buf_printf(out, "} %.9f\n", ep->lat_sum);
		buf_puts(out, "weft_connect_duration_seconds_count{");
		ep_labels(out, ep);
		buf_printf(out, "} %llu\n", (unsigned long long)ep->lat_count);
	}
	buf_puts(out, "# HELP weft_connections_failed_total Client connections reset before reaching an "
		      "endpoint, by reason.\n# TYPE weft_connections_failed_total counter\n");
	for (k = 0; k < snap->n_stats; k++) {
		static const char *const reasons[] = { "no_endpoint", "agent_max_connections", "max_connections",
						       "max_pending", "workload_max_connections" };
		uint64_t v[sizeof(reasons) / sizeof(reasons[0])];

		st = &snap->stats[k];
		v[0] = st->no_endpoint;
		v[1] = st->over_limit;
		v[2] = st->over_service_limit;
		v[3] = st->over_pending;
		v[4] = st->over_workload;
		for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
			buf_puts(out, "weft_connections_failed_total{service=\"");
			buf_prom_label(out, st->name);
			buf_printf(out, "\",direction=\"outbound\",reason=\"%s\"} %llu\n", reasons[i],
				   (unsigned long long)v[i]);
		}
	}
	buf_puts(out, "# HELP weft_endpoint_ejections_total Times an endpoint was ejected by failure accrual.\n"
		      "# TYPE weft_endpoint_ejections_total counter\n");
	for (k = 0; k < snap->n_eps; k++) {
		buf_puts(out, "weft_endpoint_ejections_total{");
		ep_labels(out, &snap->eps[k]);
		buf_printf(out, "} %llu\n", (unsigned long long)snap->eps[k].bal.ejections);
	}
	buf_puts(out, "# HELP weft_endpoint_ejected 1 while an endpoint is ejected (or being probed).\n"
		      "# TYPE weft_endpoint_ejected gauge\n");
	for (k = 0; k < snap->n_eps; k++) {
		buf_puts(out, "weft_endpoint_ejected{");
		ep_labels(out, &snap->eps[k]);
		buf_printf(out, "} %d\n", snap->eps[k].bal.state != BAL_READY);
	}
	buf_puts(out, "# HELP weft_service_endpoints_ejected Endpoints of a service ejected now.\n"
		      "# TYPE weft_service_endpoints_ejected gauge\n");
	for (i = 0; i < snap->n_svcs; i++) {
		buf_puts(out, "weft_service_endpoints_ejected{service=\"");
		buf_prom_label(out, snap->svcs[i].name);
		buf_printf(out, "\"} %zu\n", snap->svcs[i].ejected);
	}
	buf_puts(out, "# HELP weft_service_locality_load_ratio Share of new picks each locality tier of a service "
		      "takes now (its priority, and whether it is the node's zone, agent.zone), from how many of its "
		      "endpoints are ready (failover.overprovisioning).\n"
		      "# TYPE weft_service_locality_load_ratio gauge\n");
	for (i = 0; i < snap->n_svcs; i++) {
		const struct snap_svc *sv = &snap->svcs[i];
		size_t t;

		for (t = 0; t < sv->n_tiers; t++) {
			if (!sv->plan.total[t])
				continue;
			buf_puts(out, "weft_service_locality_load_ratio{service=\"");
			buf_prom_label(out, sv->name);
			buf_printf(out, "\",priority=\"%u\",locality=\"%s\"} %.2f\n", sv->tiers[t].priority,
				   sv->tiers[t].local ? "local" : "remote", sv->plan.load[t] / 100.0);
		}
	}
	buf_puts(out, "# HELP weft_service_panic_picks_total Endpoint picks made with every endpoint "
		      "ejected (panic mode).\n# TYPE weft_service_panic_picks_total counter\n");
	for (i = 0; i < snap->n_svcs; i++) {
		buf_puts(out, "weft_service_panic_picks_total{service=\"");
		buf_prom_label(out, snap->svcs[i].name);
		buf_printf(out, "\"} %llu\n", (unsigned long long)snap->svcs[i].panics);
	}
	buf_printf(out,
		   "# HELP weft_accepted_total Connections accepted on the outbound listeners.\n"
		   "# TYPE weft_accepted_total counter\nweft_accepted_total %llu\n"
		   "# HELP weft_unattributed_total Accepted connections with no original destination "
		   "(not redirected by weft), reset.\n"
		   "# TYPE weft_unattributed_total counter\nweft_unattributed_total %llu\n",
		   (unsigned long long)snap->accepted, (unsigned long long)snap->no_orig);
	buf_puts(out, "# HELP weft_worker_accepted_total Connections accepted per worker event loop.\n"
		      "# TYPE weft_worker_accepted_total counter\n");
	for (i = 0; i < snap->n_workers; i++)
		buf_printf(out, "weft_worker_accepted_total{worker=\"%zu\"} %llu\n", i,
			   (unsigned long long)snap->worker_accepted[i]);
	render_http_metrics(snap, zipkin, out);
}

void render_pods(const struct pod_info *v, size_t n, struct buf *out)
{
	size_t i;
	int j;

	buf_puts(out, "{\"pods\":[");
	for (i = 0; i < n; i++) {
		const struct pod_info *p = &v[i];

		buf_puts(out, i ? ",{\"uid\":" : "{\"uid\":");
		if (p->uid[0])
			buf_json_str(out, p->uid);
		else
			buf_puts(out, "null");
		buf_puts(out, ",\"cgroup\":");
		buf_json_str(out, p->cgroup);
		buf_printf(out, ",\"netns\":%llu,\"netns_cookie\":%llu,\"ips\":[", (unsigned long long)p->netns_ino,
			   (unsigned long long)p->netns_cookie);
		for (j = 0; j < p->nips; j++)
			buf_printf(out, "%s\"%s\"", j ? "," : "", p->ips[j]);
		buf_printf(out, "],\"listeners\":%d,\"state\":\"%s\"", p->listeners,
			   p->failed_err ? "failed" : "serving");
		if (p->failed_err) {
			buf_puts(out, ",\"error\":");
			buf_json_str(out, strerror(p->failed_err));
		}
		buf_printf(out, ",\"age_s\":%.3f}", p->age_s);
	}
	buf_puts(out, "]}\n");
}

void render_pods_text(const struct pod_info *v, size_t n, struct buf *out, bool wide)
{
	static const char *const hdr[] = { "POD", "NETNS", "IPS", "LISTENERS", "STATE", "AGE_S", "CGROUP" };
	/* narrow: CGROUP, NETNS, LISTENERS go first; then the addresses are cut */
	static const int drop[] = { 6, 1, 3, -1 };
	char ns[24], ips[POD_MAX_IPS * 48], lis[16], age[24];
	struct table t;
	size_t i;
	int j;

	table_init(&t, 7, hdr);
	for (i = 0; i < n; i++) {
		const struct pod_info *p = &v[i];
		size_t off = 0;

		snprintf(ns, sizeof(ns), "%llu", (unsigned long long)p->netns_ino);
		ips[0] = '\0';
		for (j = 0; j < p->nips && off < sizeof(ips); j++)
			off += (size_t)snprintf(ips + off, sizeof(ips) - off, "%s%s", j ? "," : "", p->ips[j]);
		snprintf(lis, sizeof(lis), "%d", p->listeners);
		snprintf(age, sizeof(age), "%.1f", p->age_s);
		{
			const char *row[] = { p->uid[0] ? p->uid : "-",
					      ns,
					      p->nips ? ips : "-",
					      lis,
					      p->failed_err ? strerror(p->failed_err) : "serving",
					      age,
					      p->cgroup };

			table_row(&t, row);
		}
	}
	if (!wide)
		table_fit(&t, TABLE_WIDTH, drop, 2);
	table_render(&t, out);
}
