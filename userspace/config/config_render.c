// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The effective config (defaults filled in) as JSON, for GET /config. */
#include "config/config_render.h"

#include "lib/buf.h"
#include "config/config.h"

static void addr_json(struct buf *out, const struct weft_sockaddr *a)
{
	char s[ADDR_STRLEN];

	buf_printf(out, "\"%s\"", addr_format(a, s, sizeof(s)));
}

static void str_or_null(struct buf *out, const char *s)
{
	if (s)
		buf_json_str(out, s);
	else
		buf_puts(out, "null");
}

static void header_kvs_json(struct buf *out, const struct cfg_header_kv *kv, size_t n)
{
	size_t i;

	buf_puts(out, "[");
	for (i = 0; i < n; i++) {
		buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
		str_or_null(out, kv[i].name);
		buf_puts(out, ",\"value\":");
		str_or_null(out, kv[i].value);
		buf_puts(out, "}");
	}
	buf_puts(out, "]");
}

/* A route with its match (null: any), action and header edits. */
static void route_json(struct buf *out, const struct cfg_route *r)
{
	size_t i;

	buf_puts(out, "{\"name\":");
	str_or_null(out, r->name);
	buf_puts(out, ",\"match\":{\"method\":");
	str_or_null(out, r->method);
	buf_puts(out, ",\"host\":");
	str_or_null(out, r->host);
	buf_puts(out, ",\"path\":");
	str_or_null(out, r->path_kind == CFG_PATH_EXACT ? r->path : NULL);
	buf_puts(out, ",\"path_prefix\":");
	str_or_null(out, r->path_kind == CFG_PATH_PREFIX ? r->path : NULL);
	buf_puts(out, ",\"headers\":");
	header_kvs_json(out, r->match_headers, r->n_match_headers);
	buf_puts(out, "},\"backends\":[");
	for (i = 0; i < r->n_backends; i++) {
		buf_puts(out, i ? ",{\"service\":" : "{\"service\":");
		str_or_null(out, r->backends[i].service);
		buf_printf(out, ",\"weight\":%u}", r->backends[i].weight);
	}
	buf_printf(out, "],\"timeout_ms\":%u,\"retryable\":%s,\"request_headers\":{\"add\":", r->timeout_ms,
		   r->retryable ? "true" : "false");
	header_kvs_json(out, r->add_headers, r->n_add_headers);
	buf_puts(out, ",\"remove\":[");
	for (i = 0; i < r->n_remove_headers; i++) {
		if (i)
			buf_puts(out, ",");
		str_or_null(out, r->remove_headers[i]);
	}
	buf_puts(out, "]}}");
}

void cfg_render_json(const struct weft_config *c, struct buf *out)
{
	size_t i, j;

	buf_puts(out, "{\"path\":");
	buf_json_str(out, c->path ? c->path : "");
	buf_puts(out, ",\"agent\":{\"admin\":");
	addr_json(out, &c->admin);
	buf_printf(out, ",\"outbound_port\":%u,\"inbound\":", c->outbound_port);
	addr_json(out, &c->inbound);
	buf_puts(out, ",\"bpf_pin_path\":");
	buf_json_str(out, c->bpf_pin_path);
	buf_printf(
		out,
		",\"fail_mode\":\"%s\",\"heartbeat_stale_ms\":%u,\"mark\":%u,\"log_level\":\"%s\","
		"\"max_connections\":%u,\"max_connections_per_workload\":%u,\"buffer_memory_mb\":%u,"
		"\"buffer_memory_per_workload_pct\":%u,\"buffer_size\":%u,\"drain_timeout_ms\":%u,\"log_rate_limit\":%u,"
		"\"dns_timeout_ms\":%u,\"zone\":",
		cfg_fail_mode_name(c->fail_mode), c->heartbeat_stale_ms, c->mark, cfg_log_level_name(c->log_level),
		c->max_connections, cfg_workload_cap(c), c->buffer_memory_mb, c->buffer_memory_workload_pct,
		c->buffer_size, c->drain_timeout_ms, c->log_rate_limit, c->dns_timeout_ms);
	str_or_null(out, c->zone);
	buf_puts(out, ",\"dns_servers\":[");
	for (i = 0; i < c->n_dns_servers; i++) {
		if (i)
			buf_puts(out, ",");
		addr_json(out, &c->dns_servers[i]);
	}
	buf_puts(out, "]}");
	buf_puts(out, ",\"intercept\":{\"cgroups\":[");
	for (i = 0; i < c->n_cgroups; i++) {
		if (i)
			buf_puts(out, ",");
		buf_json_str(out, c->cgroups[i]);
	}
	buf_puts(out, "]},\"services\":[");
	for (i = 0; i < c->n_services; i++) {
		const struct cfg_service *s = &c->services[i];

		buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
		buf_json_str(out, s->name);
		buf_puts(out, ",\"addresses\":[");
		for (j = 0; j < s->n_addrs; j++) {
			if (j)
				buf_puts(out, ",");
			addr_json(out, &s->addrs[j]);
		}
		buf_printf(out, "],\"protocol\":\"%s\",\"balancer\":\"%s\",\"endpoints\":[",
			   cfg_protocol_name(s->protocol), cfg_balancer_name(s->balancer));
		for (j = 0; j < s->n_endpoints; j++) {
			const struct cfg_endpoint *e = &s->endpoints[j];

			buf_puts(out, j ? ",{\"address\":" : "{\"address\":");
			addr_json(out, &e->addr);
			buf_printf(out, ",\"weight\":%u", e->weight);
			/* locality only where written (the default is no zone, priority 0) */
			if (e->priority)
				buf_printf(out, ",\"priority\":%u", e->priority);
			if (e->zone) {
				buf_puts(out, ",\"zone\":");
				buf_json_str(out, e->zone);
			}
			if (e->has_node) {
				buf_puts(out, ",\"node\":");
				addr_json(out, &e->node);
			}
			buf_puts(out, "}");
		}
		buf_puts(out, "],\"endpoints_from\":[");
		for (j = 0; j < s->n_sources; j++) {
			const struct cfg_epsource *e = &s->sources[j];

			buf_printf(out, "%s{\"%s\":", j ? "," : "", cfg_ep_source_name(e->kind));
			buf_json_str(out, e->name);
			if (e->kind != CFG_EP_FILE) {
				if (e->kind == CFG_EP_DNS)
					buf_printf(out, ",\"port\":%u,\"weight\":%u,\"priority\":%u", e->port,
						   e->weight, e->priority);
				buf_printf(out, ",\"family\":\"%s\",\"zone\":", cfg_family_name(e->family));
				str_or_null(out, e->zone);
				buf_printf(out, ",\"refresh_min_ms\":%u,\"refresh_max_ms\":%u", e->refresh_min_ms,
					   e->refresh_max_ms);
			}
			buf_puts(out, "}");
		}
		buf_printf(out, "],\"failover\":{\"overprovisioning\":%u.%02u", s->overprov_pct / 100,
			   s->overprov_pct % 100);
		buf_printf(
			out,
			"},\"timeouts\":{\"connect_ms\":%u,\"idle_ms\":%u},\"retry\":{\"attempts\":%u,\"on_status\":[",
			s->connect_timeout_ms, s->idle_timeout_ms, s->retry_attempts);
		for (j = 0; j < s->n_retry_on_status; j++)
			buf_printf(out, "%s%u", j ? "," : "", s->retry_on_status[j]);
		buf_printf(out,
			   "],\"budget_ratio\":%g,\"budget_min_per_s\":%u,\"budget_window_s\":%u,"
			   "\"backoff_base_ms\":%u,\"backoff_max_ms\":%u}",
			   s->retry_budget_ratio, s->retry_budget_min_per_s, s->retry_budget_window_s,
			   s->retry_backoff_base_ms, s->retry_backoff_max_ms);
		buf_printf(out, ",\"limits\":{\"max_connections\":%u,\"max_pending\":%u,\"max_requests\":%u}",
			   s->max_connections, s->max_pending, s->max_requests);
		buf_printf(out,
			   ",\"http\":{\"detect_timeout_ms\":%u,\"max_request_line\":%u,\"max_header_bytes\":%u,"
			   "\"max_headers\":%u,\"request_timeout_ms\":%u,\"max_retry_body\":%u,\"pool_max_idle\":%u,"
			   "\"pool_idle_timeout_ms\":%u,\"head_timeout_ms\":%u,\"keepalive_idle_ms\":%u,"
			   "\"stream_idle_ms\":%u}",
			   s->detect_timeout_ms, s->max_request_line, s->max_header_bytes, s->max_headers,
			   s->request_timeout_ms, s->max_retry_body, s->pool_max_idle, s->pool_idle_timeout_ms,
			   s->head_timeout_ms, s->keepalive_idle_ms, s->stream_idle_ms);
		buf_puts(out, ",\"routes\":[");
		for (j = 0; j < s->n_routes; j++) {
			if (j)
				buf_puts(out, ",");
			route_json(out, &s->routes[j]);
		}
		buf_puts(out, "]}");
	}
	buf_puts(out, "],\"tls\":{\"ca\":");
	str_or_null(out, c->tls_ca);
	buf_puts(out, ",\"cert\":");
	str_or_null(out, c->tls_cert);
	buf_puts(out, ",\"key\":");
	str_or_null(out, c->tls_key);
	buf_printf(out, "},\"tracing\":{\"enabled\":%s,\"collector\":", c->tracing.enabled ? "true" : "false");
	if (c->tracing.enabled)
		addr_json(out, &c->tracing.collector);
	else
		buf_puts(out, "null");
	buf_puts(out, ",\"path\":");
	str_or_null(out, c->tracing.path);
	buf_puts(out, ",\"service_name\":");
	str_or_null(out, c->tracing.service_name);
	buf_printf(out, ",\"sample_rate\":%g,\"queue_size\":%u,\"batch_size\":%u,\"flush_ms\":%u}",
		   c->tracing.sample_rate, c->tracing.queue_size, c->tracing.batch_size, c->tracing.flush_ms);
	buf_printf(out, ",\"kubernetes\":{\"enabled\":%s,\"api\":", c->kubernetes.enabled ? "true" : "false");
	str_or_null(out, c->kubernetes.api);
	buf_puts(out, ",\"token_file\":");
	str_or_null(out, c->kubernetes.token_file);
	buf_puts(out, ",\"ca_file\":");
	str_or_null(out, c->kubernetes.ca_file);
	buf_puts(out, ",\"node_name\":");
	str_or_null(out, c->kubernetes.node_name);
	buf_puts(out, ",\"namespaces\":[");
	for (i = 0; i < c->kubernetes.n_namespaces; i++) {
		if (i)
			buf_puts(out, ",");
		buf_json_str(out, c->kubernetes.namespaces[i]);
	}
	buf_puts(out, "]}}\n");
}
