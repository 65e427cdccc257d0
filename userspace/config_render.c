// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The effective config (defaults filled in) as JSON, for GET /config. */
#include "config_render.h"

#include "buf.h"
#include "config.h"

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
	buf_printf(out,
		   ",\"fail_mode\":\"%s\",\"heartbeat_stale_ms\":%u,\"mark\":%u,\"log_level\":\"%s\","
		   "\"max_connections\":%u,\"buffer_size\":%u,\"drain_timeout_ms\":%u}",
		   cfg_fail_mode_name(c->fail_mode), c->heartbeat_stale_ms, c->mark,
		   cfg_log_level_name(c->log_level), c->max_connections, c->buffer_size,
		   c->drain_timeout_ms);
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
			if (e->has_node) {
				buf_puts(out, ",\"node\":");
				addr_json(out, &e->node);
			}
			buf_puts(out, "}");
		}
		buf_printf(out, "],\"timeouts\":{\"connect_ms\":%u,\"idle_ms\":%u},\"retry\":{\"attempts\":%u}}",
			   s->connect_timeout_ms, s->idle_timeout_ms, s->retry_attempts);
	}
	buf_puts(out, "],\"tls\":{\"ca\":");
	str_or_null(out, c->tls_ca);
	buf_puts(out, ",\"cert\":");
	str_or_null(out, c->tls_cert);
	buf_puts(out, ",\"key\":");
	str_or_null(out, c->tls_key);
	buf_puts(out, "}}\n");
}
