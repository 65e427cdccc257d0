// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "http/h1svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double h1_req_bounds[H1_REQ_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
const char *const h1_reject_names[H1_REJECT__MAX] = { "400", "408", "414", "431", "501", "505" };
const char *const h1_idle_names[H1_IDLE__MAX] = { "new", "keepalive" };

static void h1_svc_free(struct h1_svc *l);

static struct h1_routestat *routestat_get(struct h1_stat *st, const char *name)
{
	struct h1_routestat *r;

	for (r = st->routes; r; r = r->next)
		if (strcmp(r->name, name) == 0)
			return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->next = st->routes;
	st->routes = r;
	return r;
}

static void h1_stat_free(struct h1_stat *st)
{
	if (!st)
		return;
	while (st->routes) {
		struct h1_routestat *n = st->routes->next;

		free(st->routes);
		st->routes = n;
	}
	free(st);
}

static struct h1_svc *h1_svc_new(const struct weft_config *cfg, const struct cfg_service *cs, struct svc *s)
{
	struct h1_stat *st = s->stat->http;
	struct h1_svc *l;
	size_t i;

	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return NULL;
		s->stat->http = st;
	}

	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	if (cs->n_routes) {
		l->routes = calloc(cs->n_routes, sizeof(*l->routes));
		if (!l->routes)
			goto err;
	}
	for (i = 0; i < cs->n_routes; i++) {
		l->n_routes++;
		if (h1r_route_init(&l->routes[i], &cs->routes[i]) < 0)
			goto err;
		l->routes[i].stat = routestat_get(st, l->routes[i].name);
		if (!l->routes[i].stat)
			goto err;
	}
	l->def.name = strdup("default");
	if (!l->def.name)
		goto err;
	l->def.timeout_ms = cs->request_timeout_ms;
	l->def.stat = routestat_get(st, "default");
	if (!l->def.stat)
		goto err;
	l->lim.max_start_line = cs->max_request_line;
	l->lim.max_header_bytes = cs->max_header_bytes;
	l->lim.max_headers = cs->max_headers;
	l->max_headers = cs->max_headers ? cs->max_headers : H1_DEFAULT_MAX_HEADERS;
	l->detect_timeout_ms = cs->detect_timeout_ms;
	l->max_requests = cs->max_requests;
	l->max_retry_body = cs->max_retry_body;
	l->pool_max_idle = cs->pool_max_idle;
	l->pool_idle_timeout_ms = cs->pool_idle_timeout_ms;
	l->head_timeout_ms = cs->head_timeout_ms;
	l->keepalive_idle_ms = cs->keepalive_idle_ms;
	l->stream_idle_ms = cs->stream_idle_ms;
	l->in_cap = (size_t)(cs->max_request_line ? cs->max_request_line : H1_DEFAULT_MAX_START_LINE) +
		    (cs->max_header_bytes ? cs->max_header_bytes : H1_DEFAULT_MAX_HEADER_BYTES) + 16 +
		    (cs->max_retry_body > H1_READ_CHUNK ? cs->max_retry_body : H1_READ_CHUNK);
	l->attempts = cs->retry_attempts ? cs->retry_attempts : 1;
	l->backoff_base_ms = cs->retry_backoff_base_ms;
	l->backoff_max_ms = cs->retry_backoff_max_ms;
	l->n_on_status = cs->n_retry_on_status;
	for (i = 0; i < cs->n_retry_on_status && i < CFG_MAX_RETRY_STATUS; i++)
		l->on_status[i] = (uint16_t)cs->retry_on_status[i];
	l->connect_timeout_ms = cs->connect_timeout_ms;
	l->idle_timeout_ms = cs->idle_timeout_ms;
	l->mark = cfg->mark;
	l->buffer_size = cfg->buffer_size;
	l->sample_rate = cfg->tracing.sample_rate;
	l->tracing = cfg->tracing.enabled;
	/* the budget carries over reloads; a new window size starts a new window */
	if (st->budget.window_s != cs->retry_budget_window_s)
		retry_budget_init(&st->budget, cs->retry_budget_ratio, cs->retry_budget_min_per_s,
				  cs->retry_budget_window_s);
	st->budget.ratio = cs->retry_budget_ratio;
	st->budget.min_per_s = cs->retry_budget_min_per_s;
	return l;
err:
	h1_svc_free(l);
	return NULL;
}

static void h1_svc_free(struct h1_svc *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n_routes; i++)
		h1r_route_free(&l->routes[i]);
	free(l->routes);
	h1r_route_free(&l->def);
	free(l);
}

static void h1_ep_free(struct h1_ep *h)
{
	free(h);
}

struct h1_ep *h1_ep_get_locked(struct svc_ep *ep)
{
	size_t i;

	if (ep->http)
		return ep->http;
	ep->http = calloc(1, sizeof(*ep->http));
	if (ep->http)
		for (i = 0; i < CFG_MAX_WORKERS; i++)
			list_init(&ep->http->idle[i]);
	return ep->http;
}

const struct svc_hooks h1_svc_hooks = {
	.svc_new = h1_svc_new,
	.svc_free = h1_svc_free,
	.stat_free = h1_stat_free,
	.ep_free = h1_ep_free,
};
