// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* disc: endpoint sources of services, for the agent (disc.h). */
#include "disc/disc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc/dnsdisc.h"
#include "disc/epset.h"
#include "disc/filedisc.h"
#include "lib/buf.h"
#include "lib/list.h"
#include "lib/log.h"

struct disc_src {
	struct list_head link;
	char *svc;
	enum cfg_ep_source kind;
	char *name; /* DNS name or path */
	uint16_t port;
	struct dns_src *dns; /* one of these two */
	struct file_src *file;
	bool keep; /* scratch for disc_configure */
};

struct disc {
	struct ev_loop *loop;
	uint32_t mark;
	struct dnsdisc *dns;    /* created with the first DNS source */
	struct filedisc *files; /* ... the first file */
	struct list_head srcs;
	void (*changed)(void *arg);
	void *arg;
	ev_timer coalesce;
};

static void on_coalesce(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct disc *d = w->data;

	(void)loop;
	(void)revents;
	d->changed(d->arg);
}

static void src_changed(void *arg)
{
	struct disc *d = arg;

	if (!ev_is_active(&d->coalesce)) {
		ev_timer_set(&d->coalesce, DISC_COALESCE_S, 0.);
		ev_timer_start(d->loop, &d->coalesce);
	}
}

int disc_new(struct ev_loop *loop, uint32_t mark, void (*changed)(void *arg), void *arg, struct disc **out)
{
	struct disc *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->loop = loop;
	d->mark = mark;
	d->changed = changed;
	d->arg = arg;
	list_init(&d->srcs);
	ev_timer_init(&d->coalesce, on_coalesce, DISC_COALESCE_S, 0.);
	d->coalesce.data = d;
	*out = d;
	return 0;
}

static void src_free(struct disc_src *s)
{
	list_del(&s->link);
	dns_src_free(s->dns);
	file_src_free(s->file);
	free(s->svc);
	free(s->name);
	free(s);
}

void disc_free(struct disc *d)
{
	struct disc_src *s, *t;

	if (!d)
		return;
	list_for_each_entry_safe(s, t, &d->srcs, link)
		src_free(s);
	ev_timer_stop(d->loop, &d->coalesce);
	dnsdisc_free(d->dns);
	filedisc_free(d->files);
	free(d);
}

static struct disc_src *src_find(struct disc *d, const char *svc, const struct cfg_epsource *c)
{
	struct disc_src *s;

	list_for_each_entry(s, &d->srcs, link)
		if (s->kind == c->kind && s->port == c->port && !strcmp(s->svc, svc) && !strcmp(s->name, c->name))
			return s;
	return NULL;
}

static const struct disc_status *src_status(const struct disc_src *s)
{
	return s->dns ? dns_src_status(s->dns) : file_src_status(s->file);
}

static const struct ep_entry *src_endpoints(const struct disc_src *s, size_t *n)
{
	return s->dns ? dns_src_endpoints(s->dns, n) : file_src_endpoints(s->file, n);
}

int disc_configure(struct disc *d, const struct weft_config *cfg, char *err, size_t errlen)
{
	struct disc_src *s, *t;
	bool any_dns = false;
	size_t i, j;
	int r;

	for (i = 0; i < cfg->n_services; i++)
		for (j = 0; j < cfg->services[i].n_sources; j++)
			any_dns |= cfg->services[i].sources[j].kind != CFG_EP_FILE;
	if (any_dns || d->dns) {
		if (!d->dns && dnsdisc_new(d->loop, d->mark, &d->dns) < 0) {
			err_set(err, errlen, "out of memory starting the DNS resolver");
			return -ENOMEM;
		}
		r = dnsdisc_set_servers(d->dns, cfg->dns_servers, cfg->n_dns_servers, cfg->dns_timeout_ms, err, errlen);
		if (r < 0)
			return r;
	}
	list_for_each_entry(s, &d->srcs, link)
		s->keep = false;
	for (i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *svc = &cfg->services[i];

		for (j = 0; j < svc->n_sources; j++) {
			const struct cfg_epsource *c = &svc->sources[j];

			s = src_find(d, svc->name, c);
			if (s) {
				s->keep = true;
				if (s->dns)
					dns_src_update(s->dns, c);
				continue;
			}
			s = calloc(1, sizeof(*s));
			if (!s)
				goto oom;
			list_add_tail(&s->link, &d->srcs);
			s->kind = c->kind;
			s->port = c->port;
			s->keep = true;
			s->svc = strdup(svc->name);
			s->name = strdup(c->name);
			if (c->kind == CFG_EP_FILE && !d->files && filedisc_new(d->loop, &d->files) < 0)
				d->files = NULL;
			if (c->kind == CFG_EP_FILE && d->files && s->svc && s->name)
				s->file = file_src_new(d->files, svc->name, c->name, src_changed, d);
			else if (c->kind != CFG_EP_FILE && s->svc && s->name)
				s->dns = dns_src_new(d->dns, svc->name, c, src_changed, d);
			if (!s->file && !s->dns) {
				src_free(s);
				goto oom;
			}
			log_info("service %s: endpoints from %s %s%s", svc->name, cfg_ep_source_name(c->kind), c->name,
				 c->kind == CFG_EP_FILE ? "" : " (queried now)");
		}
	}
	list_for_each_entry_safe(s, t, &d->srcs, link)
		if (!s->keep)
			src_free(s);
	return 0;
oom:
	err_set(err, errlen, "out of memory starting endpoint sources");
	return -ENOMEM;
}

struct pick {
	const struct ep_entry *e;
	size_t order;
	uint8_t kind;
};

static int pick_by_addr(const void *pa, const void *pb)
{
	const struct pick *a = pa, *b = pb;
	struct weft_addr ka, kb;
	int c;

	addr_to_key(&a->e->addr, &ka);
	addr_to_key(&b->e->addr, &kb);
	c = memcmp(&ka, &kb, sizeof(ka));
	if (c)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

static int pick_by_order(const void *pa, const void *pb)
{
	const struct pick *a = pa, *b = pb;

	return a->order < b->order ? -1 : a->order > b->order;
}

int disc_endpoints(struct disc *d, const struct cfg_service *svc, struct cfg_endpoint **out, size_t *n)
{
	struct pick *p = NULL;
	struct cfg_endpoint *e;
	size_t total = 0, m = 0, i, j, k, cnt;

	*out = NULL;
	*n = 0;
	for (j = 0; j < svc->n_sources; j++) {
		struct disc_src *s = src_find(d, svc->name, &svc->sources[j]);

		if (s) {
			src_endpoints(s, &cnt);
			total += cnt;
		}
	}
	if (!total)
		return 0;
	p = malloc(total * sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (j = 0; j < svc->n_sources; j++) {
		struct disc_src *s = src_find(d, svc->name, &svc->sources[j]);
		const struct ep_entry *eps;

		if (!s)
			continue;
		eps = src_endpoints(s, &cnt);
		for (k = 0; k < cnt; k++, m++)
			p[m] = (struct pick){ &eps[k], m, (uint8_t)s->kind };
	}
	/* an address two sources give: the first source's (sets are sorted and unique within a source) */
	if (svc->n_sources > 1) {
		qsort(p, m, sizeof(*p), pick_by_addr);
		for (i = 0, k = 0; i < m; i++)
			if (!k || !addr_equal(&p[k - 1].e->addr, &p[i].e->addr))
				p[k++] = p[i];
		m = k;
		qsort(p, m, sizeof(*p), pick_by_order);
	}
	if (m > CFG_MAX_ENDPOINTS) {
		log_warn_rl("service %s: its sources give %zu endpoints; the first %d are used", svc->name, m,
			    CFG_MAX_ENDPOINTS);
		m = CFG_MAX_ENDPOINTS;
	}
	e = calloc(m, sizeof(*e));
	if (!e) {
		free(p);
		return -ENOMEM;
	}
	for (i = 0; i < m; i++) {
		e[i].addr = p[i].e->addr;
		e[i].weight = p[i].e->weight;
		e[i].priority = p[i].e->priority;
		e[i].zone = p[i].e->zone[0] ? p[i].e->zone : NULL;
		e[i].source = p[i].kind;
	}
	free(p);
	*out = e;
	*n = m;
	return 0;
}

/* ---- admin ---------------------------------------------------------------- */

static void labels(struct buf *out, const struct disc_src *s)
{
	buf_puts(out, "{service=\"");
	buf_prom_label(out, s->svc);
	buf_printf(out, "\",source=\"%s\",target=\"", cfg_ep_source_name(s->kind));
	buf_prom_label(out, s->name);
	buf_puts(out, "\"");
}

void disc_metrics(struct disc *d, struct buf *out)
{
	struct disc_src *s;
	size_t n;
	int r;

	if (!d || list_empty(&d->srcs))
		return;
	buf_puts(out, "# HELP weft_discovery_refreshes_total Refreshes of a service's endpoint source (DNS answers, "
		      "file reads) by result: success; empty (no endpoint: the last set kept); failure (an error: the "
		      "last set kept).\n# TYPE weft_discovery_refreshes_total counter\n");
	list_for_each_entry(s, &d->srcs, link)
		for (r = 0; r < DISC__RESULTS; r++) {
			buf_puts(out, "weft_discovery_refreshes_total");
			labels(out, s);
			buf_printf(out, ",result=\"%s\"} %llu\n", disc_result_names[r],
				   (unsigned long long)src_status(s)->refreshes[r]);
		}
	buf_puts(out, "# HELP weft_discovery_endpoints Endpoints a source gives now (the last good set).\n"
		      "# TYPE weft_discovery_endpoints gauge\n");
	list_for_each_entry(s, &d->srcs, link) {
		src_endpoints(s, &n);
		buf_puts(out, "weft_discovery_endpoints");
		labels(out, s);
		buf_printf(out, "} %zu\n", n);
	}
	buf_puts(out, "# HELP weft_discovery_changes_total Times a source's endpoint set changed.\n"
		      "# TYPE weft_discovery_changes_total counter\n");
	list_for_each_entry(s, &d->srcs, link) {
		buf_puts(out, "weft_discovery_changes_total");
		labels(out, s);
		buf_printf(out, "} %llu\n", (unsigned long long)src_status(s)->changes);
	}
	buf_puts(out, "# HELP weft_discovery_stale 1 when a source's last refresh failed or was empty, so the "
		      "endpoints in force are an older set.\n# TYPE weft_discovery_stale gauge\n");
	list_for_each_entry(s, &d->srcs, link) {
		buf_puts(out, "weft_discovery_stale");
		labels(out, s);
		buf_printf(out, "} %d\n", src_status(s)->kept ? 1 : 0);
	}
	buf_puts(out, "# HELP weft_discovery_last_success_timestamp_seconds When a source last gave endpoints.\n"
		      "# TYPE weft_discovery_last_success_timestamp_seconds gauge\n");
	list_for_each_entry(s, &d->srcs, link) {
		buf_puts(out, "weft_discovery_last_success_timestamp_seconds");
		labels(out, s);
		buf_printf(out, "} %.3f\n", src_status(s)->last_ok);
	}
}

void disc_render_service(void *arg, const char *svc, struct buf *out)
{
	struct disc *d = arg;
	struct disc_src *s;
	bool first = true;
	double now;
	size_t n;
	int r;

	if (!d)
		return;
	now = ev_now(d->loop);
	list_for_each_entry(s, &d->srcs, link) {
		const struct disc_status *st = src_status(s);

		if (strcmp(s->svc, svc))
			continue;
		src_endpoints(s, &n);
		buf_puts(out, first ? ",\"endpoints_from\":[{\"source\":" : ",{\"source\":");
		first = false;
		buf_printf(out, "\"%s\",\"name\":", cfg_ep_source_name(s->kind));
		buf_json_str(out, s->name);
		if (s->kind == CFG_EP_DNS)
			buf_printf(out, ",\"port\":%u", s->port);
		buf_printf(out, ",\"endpoints\":%zu,\"last_result\":", n);
		if (st->last_refresh > 0)
			buf_printf(out, "\"%s\",\"last_refresh_s_ago\":%.3f", disc_result_names[st->last_result],
				   now - st->last_refresh);
		else
			buf_puts(out, "null,\"last_refresh_s_ago\":null");
		buf_puts(out, ",\"last_success_s_ago\":");
		if (st->last_ok > 0)
			buf_printf(out, "%.3f", now - st->last_ok);
		else
			buf_puts(out, "null");
		if (s->dns) {
			buf_puts(out, ",\"next_refresh_in_s\":");
			if (st->next_refresh > 0)
				buf_printf(out, "%.3f", st->next_refresh > now ? st->next_refresh - now : 0.0);
			else
				buf_puts(out, "null"); /* a query in flight */
			buf_printf(out, ",\"ttl_s\":%u", st->ttl);
		}
		buf_printf(out, ",\"stale\":%s,\"last_error\":", st->kept ? "true" : "false");
		if (st->last_error[0])
			buf_json_str(out, st->last_error);
		else
			buf_puts(out, "null");
		buf_puts(out, ",\"refreshes\":{");
		for (r = 0; r < DISC__RESULTS; r++)
			buf_printf(out, "%s\"%s\":%llu", r ? "," : "", disc_result_names[r],
				   (unsigned long long)st->refreshes[r]);
		buf_printf(out, "},\"changes\":%llu}", (unsigned long long)st->changes);
	}
	if (!first)
		buf_puts(out, "]");
}
