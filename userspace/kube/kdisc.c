// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* kdisc: list/watch reflectors over the Kubernetes API (kdisc.h). */
#include "kube/kdisc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/k8s.h"
#include "config/config.h"
#include "kube/kapi.h"
#include "kube/kident.h"
#include "kube/kmodel.h"
#include "lib/buf.h"
#include "lib/log.h"

#define KDISC_KINDS 4
#define KDISC_PAGE 500 /* items per list page: memory follows a page, not the cluster */

enum refl_state { R_IDLE, R_LISTING, R_WATCHING, R_WAITING };

struct reflector {
	struct kdisc *d;
	enum k8s_kind kind;
	const char *name; /* "services", for logs and metrics */
	char path[512];   /* the collection, with the fixed query (fieldSelector) */
	char rv[K8S_RV_MAX + 1];
	char cont[K8S_CONTINUE_MAX + 1]; /* the next page's token while a paged list is read */
	bool paging;                     /* a list is between its pages (resync begun) */
	enum refl_state state;
	struct kapi_req *req;
	ev_timer retry;
	double backoff;
	bool relist;    /* the watch said 410: list again */
	bool synced;    /* listed at least once */
	bool got_event; /* this watch delivered something: the back-off resets */
	uint64_t lists, watches, events, relists_410, errors, bookmarks;
	char last_error[160];
};

struct kdisc {
	struct ev_loop *loop;
	struct kapi *api;
	struct kmodel *model;
	struct reflector r[KDISC_KINDS];
	void (*changed)(void *arg);
	void *arg;
	ev_timer coalesce;
	bool svcs_dirty, pods_dirty; /* what the coalesce timer has to apply */
	struct kident *ident;        /* this node's pods' identities (borrowed; may be NULL) */
	double held_since;           /* when an apply was first put off for a list being read (0: none) */
	char **namespaces;           /* kubernetes.namespaces: Services and slices of these only (none: all) */
	size_t n_namespaces;
};

/* Is o in a namespace weft follows? (Nodes and pods: always) */
static bool kd_wanted(const struct kdisc *d, const struct k8s_object *o)
{
	size_t i;

	if (!d->n_namespaces || (o->kind != K8S_SERVICE && o->kind != K8S_ENDPOINTSLICE))
		return true;
	for (i = 0; i < d->n_namespaces; i++)
		if (!strcmp(d->namespaces[i], o->meta.ns))
			return true;
	return false;
}

static const char *const kind_names[KDISC_KINDS] = { "services", "endpointslices", "pods", "nodes" };

static void refl_list(struct reflector *r);
static void refl_list_page(struct reflector *r);
static void refl_watch(struct reflector *r);

/* What a change of kind means: services rebuilt, or (Pods) the identity table. */
static void kd_changed(struct kdisc *d, enum k8s_kind kind)
{
	if (kind == K8S_POD)
		d->pods_dirty = true;
	else
		d->svcs_dirty = true;
	if (ev_is_active(&d->coalesce))
		return;
	/* libev leaves an expired one-shot timer with what was left of it (<= 0): without
	 * the set, every change after the first apply was applied at once, not coalesced */
	ev_timer_set(&d->coalesce, KDISC_COALESCE_S, 0.);
	ev_timer_start(d->loop, &d->coalesce);
}

/* Is a list (or a page of one) being read? */
static bool kd_listing(const struct kdisc *d)
{
	int i;

	for (i = 0; i < KDISC_KINDS; i++)
		if (d->r[i].state == R_LISTING)
			return true;
	return false;
}

struct pods_acc {
	struct kident_pod *v;
	size_t n;
};

static void pods_acc_add(void *arg, const char *uid, const char *ns, const char *sa)
{
	struct pods_acc *acc = arg;

	acc->v[acc->n++] = (struct kident_pod){ .uid = uid, .ns = ns, .sa = sa };
}

/* This node's pods into the identity table the workers read. O(pods on the node). */
static void kd_publish_pods(struct kdisc *d)
{
	struct kmodel_stats st;
	struct pods_acc acc = { 0 };

	kmodel_stats(d->model, &st);
	acc.v = calloc(st.pods ? st.pods : 1, sizeof(*acc.v));
	if (!acc.v || (kmodel_pods_each(d->model, pods_acc_add, &acc), kident_replace(d->ident, acc.v, acc.n) < 0)) {
		log_error("kubernetes: out of memory updating pod identities; trying again at the next change");
		d->pods_dirty = true;
	}
	free(acc.v);
}

static void on_coalesce(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct kdisc *d = t->data;
	double now = ev_now(loop);

	(void)revents;
	/*
	 * Each apply rebuilds every service (0.1 s at 10k Services): while a
	 * list is being read, an apply would publish it half-read and be done
	 * again when it ends (a relist of the 4 kinds made 4). Wait for the
	 * lists, for KDISC_HOLD_MAX_S at most (a stuck list must not hold the
	 * other kinds' changes back). Pod identities are cheap and wait for nothing.
	 */
	if (d->pods_dirty && d->ident) {
		d->pods_dirty = false;
		kd_publish_pods(d);
	}
	if (!d->svcs_dirty)
		return;
	if (kd_listing(d)) {
		if (!d->held_since)
			d->held_since = now;
		if (now - d->held_since < KDISC_HOLD_MAX_S) {
			ev_timer_set(t, KDISC_COALESCE_S, 0.);
			ev_timer_start(loop, t);
			return;
		}
	}
	d->held_since = 0;
	d->svcs_dirty = false;
	d->changed(d->arg);
}

/* Retry after the back-off (jittered: 50..100% of it), doubling it for next time. */
static void refl_later(struct reflector *r, const char *why)
{
	double delay = r->backoff * (0.5 + 0.5 * ((double)rand() / RAND_MAX));

	r->errors++;
	snprintf(r->last_error, sizeof(r->last_error), "%s", why);
	log_warn_rl("kubernetes: %s: %s; retrying in %.1f s (the last known state keeps serving)", r->name, why, delay);
	r->state = R_WAITING;
	ev_timer_set(&r->retry, delay, 0.);
	ev_timer_start(r->d->loop, &r->retry);
	r->backoff = r->backoff * 2 > KDISC_BACKOFF_MAX_S ? KDISC_BACKOFF_MAX_S : r->backoff * 2;
}

static void on_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct reflector *r = t->data;

	(void)loop;
	(void)revents;
	if (r->relist || !r->synced)
		refl_list(r);
	else
		refl_watch(r);
}

/* An answer other than 2xx: what the Status says. */
static void refl_status(struct reflector *r, int status, const char *body, size_t len)
{
	char reason[64] = "", msg[256] = "", why[400];
	int code = status;

	k8s_decode_status(body, len, &code, reason, sizeof(reason), msg, sizeof(msg));
	if (status == 410 || code == 410) {
		r->relist = true;
		r->relists_410++;
		return;
	}
	snprintf(why, sizeof(why), "HTTP %d %s%s%s%s", status, reason, msg[0] ? ": " : "", msg,
		 status == 401   ? " (the token in kubernetes.token_file is not accepted)"
		 : status == 403 ? " (RBAC: the ClusterRole must allow get, list and watch on it)"
				 : "");
	refl_later(r, why);
}

/* ---- list ------------------------------------------------------------------ */

static int list_item(void *arg, const struct k8s_object *o)
{
	struct reflector *r = arg;

	if (!kd_wanted(r->d, o))
		return 0;
	return kmodel_apply(r->d->model, K8S_EV_ADDED, o) < 0 ? -ENOMEM : 0;
}

static void list_body(void *arg, int status, const char *body, size_t len)
{
	struct reflector *r = arg;
	struct k8s_list_meta lm;
	char err[256] = "";
	int rc;

	if (status / 100 != 2) {
		r->req = NULL;     /* on_done follows; the retry is set from here */
		r->paging = false; /* a 410 on a continue token too: the list starts again */
		refl_status(r, status, body, len);
		if (r->relist)
			refl_later(r, "the list answered 410 Gone");
		return;
	}
	if (!r->paging) {
		kmodel_resync_begin(r->d->model, r->kind);
		r->paging = true;
	}
	memset(&lm, 0, sizeof(lm));
	rc = k8s_decode_list_page(r->kind, body, len, list_item, r, &lm, err, sizeof(err));
	if (rc < 0) {
		/* keep what was there: a bad list is not "everything was deleted" */
		char why[320];

		snprintf(why, sizeof(why), "the list does not decode: %s", err);
		r->paging = false;
		r->state = R_IDLE;
		refl_later(r, why);
		return;
	}
	snprintf(r->cont, sizeof(r->cont), "%s", lm.cont);
	snprintf(r->rv, sizeof(r->rv), "%s", lm.resource_version);
	r->state = R_LISTING; /* on_done asks for the next page, or starts the watch */
	if (r->cont[0])
		return;
	kmodel_resync_end(r->d->model, r->kind);
	r->paging = false;
	r->lists++;
	r->relist = false;
	r->backoff = KDISC_BACKOFF_MIN_S;
	/* a relist is as rare as the 410 that started it (logged too): say when it is in */
	log_info("kubernetes: %s %s (resourceVersion %s)", r->name, r->synced ? "relisted" : "listed", r->rv);
	r->synced = true;
	kd_changed(r->d, r->kind);
}

static void list_done(void *arg, int err, const char *detail)
{
	struct reflector *r = arg;
	char why[320];

	r->req = NULL;
	if (r->state == R_WAITING)
		return; /* list_body already decided */
	if (err == 0 && r->state == R_LISTING && r->paging && r->cont[0]) {
		refl_list_page(r);
		return;
	}
	if (err == 0 && r->synced && r->state == R_LISTING && !r->paging) {
		refl_watch(r);
		return;
	}
	r->paging = false;
	snprintf(why, sizeof(why), "list failed: %s%s%s", err ? strerror(-err) : "no answer", detail ? ": " : "",
		 detail ? detail : "");
	refl_later(r, why);
}

static const struct kapi_ops list_ops = { .on_body = list_body, .on_line = NULL, .on_done = list_done };

/* Appends the query separator and limit (and continue) to the collection's path. */
static void list_path(struct reflector *r, char *out, size_t len)
{
	size_t n = (size_t)snprintf(out, len, "%s%slimit=%d", r->path, strchr(r->path, '?') ? "&" : "?", KDISC_PAGE);
	const char *c;

	if (!r->cont[0] || n + 10 >= len)
		return;
	n += (size_t)snprintf(out + n, len - n, "&continue=");
	/* the token is base64: '+', '/' and '=' need escaping in a query */
	for (c = r->cont; *c && n + 4 < len; c++) {
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		    *c == '_' || *c == '.')
			out[n++] = *c;
		else
			n += (size_t)snprintf(out + n, len - n, "%%%02X", (unsigned char)*c);
	}
	out[n] = '\0';
}

static void refl_list_page(struct reflector *r)
{
	char path[4 * K8S_CONTINUE_MAX + 1024];

	list_path(r, path, sizeof(path));
	r->state = R_LISTING;
	r->req = kapi_get(r->d->api, path, KAPI_WHOLE, &list_ops, r);
	if (!r->req) {
		r->paging = false;
		refl_later(r, "cannot start the list request (out of memory or descriptors)");
	}
}

static void refl_list(struct reflector *r)
{
	r->relist = false;
	r->paging = false;
	r->cont[0] = '\0';
	refl_list_page(r);
}

/* ---- watch ----------------------------------------------------------------- */

static void watch_line(void *arg, const char *line, size_t len)
{
	struct reflector *r = arg;
	struct k8s_event ev;
	char err[256];
	int rc;

	memset(&ev, 0, sizeof(ev));
	if (k8s_decode_event(r->kind, line, len, &ev, err, sizeof(err)) < 0) {
		log_warn_rl("kubernetes: %s: a watch event does not decode (%s); relisting", r->name, err);
		r->relist = true;
		kapi_cancel(r->req);
		r->req = NULL;
		refl_list(r);
		return;
	}
	r->got_event = true;
	switch (ev.type) {
	case K8S_EV_ADDED:
	case K8S_EV_MODIFIED:
	case K8S_EV_DELETED:
		r->events++;
		rc = kd_wanted(r->d, &ev.obj) ? kmodel_apply(r->d->model, ev.type, &ev.obj) : 0;
		if (rc < 0)
			log_error("kubernetes: %s: out of memory applying an event", r->name);
		else if (rc > 0 || r->kind == K8S_POD)
			kd_changed(r->d, r->kind);
		if (ev.obj.meta.resource_version[0])
			snprintf(r->rv, sizeof(r->rv), "%s", ev.obj.meta.resource_version);
		break;
	case K8S_EV_BOOKMARK:
		r->bookmarks++;
		if (ev.obj.meta.resource_version[0])
			snprintf(r->rv, sizeof(r->rv), "%s", ev.obj.meta.resource_version);
		break;
	case K8S_EV_ERROR:
		if (ev.status_code == 410) {
			r->relists_410++;
			log_info("kubernetes: %s: resourceVersion %s is too old (410 %s); relisting", r->name, r->rv,
				 ev.status_reason);
			k8s_object_free(&ev.obj);
			kapi_cancel(r->req);
			r->req = NULL;
			refl_list(r);
			return;
		} else {
			log_warn_rl("kubernetes: %s: the watch reported an error: %d %s: %s", r->name, ev.status_code,
				    ev.status_reason, ev.message);
		}
		break;
	}
	k8s_object_free(&ev.obj);
}

static void watch_body(void *arg, int status, const char *body, size_t len)
{
	struct reflector *r = arg;

	r->state = R_WAITING; /* watch_done must not restart it: decided here */
	refl_status(r, status, body, len);
	if (r->relist) {
		r->state = R_IDLE;
		r->errors++;
	}
}

static void watch_done(void *arg, int err, const char *detail)
{
	struct reflector *r = arg;
	char why[320];

	r->req = NULL;
	if (r->relist) {
		refl_list(r);
		return;
	}
	if (r->state == R_WAITING)
		return;
	if (err == 0) {
		/* timeoutSeconds ran out, or the server ended it: resume from the last version */
		refl_watch(r);
		return;
	}
	if (r->got_event)
		r->backoff = KDISC_BACKOFF_MIN_S;
	snprintf(why, sizeof(why), "watch ended: %s%s%s", strerror(-err), detail ? ": " : "", detail ? detail : "");
	refl_later(r, why);
}

static const struct kapi_ops watch_ops = { .on_body = watch_body, .on_line = watch_line, .on_done = watch_done };

static void refl_watch(struct reflector *r)
{
	char path[700];

	snprintf(path, sizeof(path), "%s%swatch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s",
		 r->path, strchr(r->path, '?') ? "&" : "?", KDISC_WATCH_TIMEOUT_S, r->rv);
	r->state = R_WATCHING;
	r->got_event = false;
	r->watches++;
	r->req = kapi_get(r->d->api, path, KAPI_LINES, &watch_ops, r);
	if (!r->req)
		refl_later(r, "cannot start the watch request (out of memory or descriptors)");
}

/* ---- API ------------------------------------------------------------------- */

int kdisc_start(struct ev_loop *loop, const struct cfg_kubernetes *kc, uint16_t inbound_port, uint32_t mark,
		struct kident *ident, void (*changed)(void *arg), void *arg, struct kdisc **out, char *err,
		size_t errlen)
{
	struct kapi_opts o;
	struct kdisc *d;
	int i, r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->loop = loop;
	d->changed = changed;
	d->arg = arg;
	d->ident = ident;
	if (kc->n_namespaces) {
		d->namespaces = calloc(kc->n_namespaces, sizeof(*d->namespaces));
		if (!d->namespaces) {
			free(d);
			return -ENOMEM;
		}
		for (i = 0; i < (int)kc->n_namespaces; i++)
			if (!(d->namespaces[d->n_namespaces] = strdup(kc->namespaces[i])))
				break;
			else
				d->n_namespaces++;
	}
	d->model = kmodel_new(kc->node_name, inbound_port);
	if (!d->model) {
		kdisc_free(d);
		return -ENOMEM;
	}
	memset(&o, 0, sizeof(o));
	o.url = kc->api;
	o.ca_file = kc->ca_file;
	o.token_file = kc->token_file;
	o.mark = mark;
	r = kapi_new(loop, &o, &d->api, err, errlen);
	if (r < 0) {
		kdisc_free(d);
		return r;
	}
	ev_timer_init(&d->coalesce, on_coalesce, KDISC_COALESCE_S, 0.);
	d->coalesce.data = d;
	for (i = 0; i < KDISC_KINDS; i++) {
		struct reflector *rf = &d->r[i];

		rf->d = d;
		rf->kind = (enum k8s_kind)i;
		rf->name = kind_names[i];
		rf->backoff = KDISC_BACKOFF_MIN_S;
		ev_timer_init(&rf->retry, on_retry, 0., 0.);
		rf->retry.data = rf;
	}
	snprintf(d->r[K8S_SERVICE].path, sizeof(d->r[0].path), "/api/v1/services");
	snprintf(d->r[K8S_ENDPOINTSLICE].path, sizeof(d->r[0].path), "/apis/discovery.k8s.io/v1/endpointslices");
	snprintf(d->r[K8S_POD].path, sizeof(d->r[0].path), "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s",
		 kc->node_name);
	snprintf(d->r[K8S_NODE].path, sizeof(d->r[0].path), "/api/v1/nodes");
	for (i = 0; i < KDISC_KINDS; i++)
		refl_list(&d->r[i]);
	log_info("kubernetes: discovering from %s as node %s", kc->api, kc->node_name);
	*out = d;
	return 0;
}

void kdisc_free(struct kdisc *d)
{
	int i;

	if (!d)
		return;
	for (i = 0; i < KDISC_KINDS; i++) {
		ev_timer_stop(d->loop, &d->r[i].retry);
		if (d->r[i].req)
			kapi_cancel(d->r[i].req);
	}
	ev_timer_stop(d->loop, &d->coalesce);
	kapi_free(d->api);
	kmodel_free(d->model);
	while (d->n_namespaces)
		free(d->namespaces[--d->n_namespaces]);
	free(d->namespaces);
	free(d);
}

const struct kmodel *kdisc_model(const struct kdisc *d)
{
	return d->model;
}

bool kdisc_synced(const struct kdisc *d)
{
	int i;

	for (i = 0; i < KDISC_KINDS; i++)
		if (!d->r[i].synced)
			return false;
	return true;
}

void kdisc_metrics(struct kdisc *d, struct buf *out)
{
	struct kmodel_stats st;
	int i;

	kmodel_stats(d->model, &st);
	buf_puts(out, "# HELP weft_kubernetes_synced 1 once the kind was listed from the API.\n"
		      "# TYPE weft_kubernetes_synced gauge\n");
	for (i = 0; i < KDISC_KINDS; i++)
		buf_printf(out, "weft_kubernetes_synced{kind=\"%s\"} %d\n", d->r[i].name, d->r[i].synced ? 1 : 0);
	buf_puts(out, "# HELP weft_kubernetes_requests_total List and watch requests started, by kind.\n"
		      "# TYPE weft_kubernetes_requests_total counter\n");
	for (i = 0; i < KDISC_KINDS; i++)
		buf_printf(out,
			   "weft_kubernetes_requests_total{kind=\"%s\",verb=\"list\"} %llu\n"
			   "weft_kubernetes_requests_total{kind=\"%s\",verb=\"watch\"} %llu\n",
			   d->r[i].name, (unsigned long long)d->r[i].lists, d->r[i].name,
			   (unsigned long long)d->r[i].watches);
	buf_puts(out, "# HELP weft_kubernetes_events_total Watch events applied (bookmarks apart), by kind.\n"
		      "# TYPE weft_kubernetes_events_total counter\n");
	for (i = 0; i < KDISC_KINDS; i++)
		buf_printf(out, "weft_kubernetes_events_total{kind=\"%s\"} %llu\n", d->r[i].name,
			   (unsigned long long)d->r[i].events);
	buf_puts(out, "# HELP weft_kubernetes_relists_total Relists because the version watched was too old (410).\n"
		      "# TYPE weft_kubernetes_relists_total counter\n");
	for (i = 0; i < KDISC_KINDS; i++)
		buf_printf(out, "weft_kubernetes_relists_total{kind=\"%s\"} %llu\n", d->r[i].name,
			   (unsigned long long)d->r[i].relists_410);
	buf_puts(out, "# HELP weft_kubernetes_errors_total Failed lists and watches (each retried after a back-off).\n"
		      "# TYPE weft_kubernetes_errors_total counter\n");
	for (i = 0; i < KDISC_KINDS; i++)
		buf_printf(out, "weft_kubernetes_errors_total{kind=\"%s\"} %llu\n", d->r[i].name,
			   (unsigned long long)d->r[i].errors);
	buf_printf(out,
		   "# HELP weft_kubernetes_objects Objects held, by kind.\n# TYPE weft_kubernetes_objects gauge\n"
		   "weft_kubernetes_objects{kind=\"services\"} %zu\nweft_kubernetes_objects{kind=\"endpointslices\"} "
		   "%zu\nweft_kubernetes_objects{kind=\"pods\"} %zu\nweft_kubernetes_objects{kind=\"nodes\"} %zu\n"
		   "# HELP weft_kubernetes_endpoints Endpoints of discovered services, by state.\n"
		   "# TYPE weft_kubernetes_endpoints gauge\nweft_kubernetes_endpoints{state=\"ready\"} %zu\n"
		   "weft_kubernetes_endpoints{state=\"not_ready\"} %zu\nweft_kubernetes_endpoints{state=\"no_node\"} "
		   "%zu\n",
		   st.services, st.slices, st.pods, st.nodes, st.endpoints, st.endpoints_not_ready,
		   st.endpoints_no_node);
	if (d->ident)
		buf_printf(out,
			   "# HELP weft_kubernetes_pod_identities Pods of this node whose identity (namespace, "
			   "service account) the workers can use.\n# TYPE weft_kubernetes_pod_identities gauge\n"
			   "weft_kubernetes_pod_identities %zu\n",
			   kident_count(d->ident));
}
