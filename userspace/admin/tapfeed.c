// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tapfeed: GET /tap's readers (tapfeed.h). */
#include "admin/tapfeed.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "codec/grpc.h"
#include "codec/kubepath.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "state/tap.h"

struct reader {
	struct reader *next;
	struct tapfeed *f;
	struct admin_stream *st;
	char service[256], path[256];
	int status; /* exact status, 0: any */
	int class;  /* 1..5: that class, 0: any */
	bool headers, text, wide;
	uint64_t sent, dropped, dropped_told;
};

struct tapfeed {
	struct ev_loop *loop;
	struct tap *tap;
	render_cgroup_fn cgroup_name;
	void *arg;
	ev_timer drain;
	struct reader *readers;
	unsigned n;
	uint64_t sent, dropped_reader;
	struct tap_event *batch; /* TAP_RING, while there are readers */
};

static void reader_free(struct reader *r)
{
	struct tapfeed *f = r->f;
	struct reader **pp;

	for (pp = &f->readers; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	f->n--;
	tap_reader_remove(f->tap, r->headers);
	free(r);
	if (!f->n) {
		ev_timer_stop(f->loop, &f->drain);
		free(f->batch);
		f->batch = NULL;
	}
}

/* The client went away: the stream is gone. */
static void reader_closed(void *arg)
{
	reader_free(arg);
}

static bool matches(const struct reader *r, const struct tap_event *e)
{
	if (r->service[0] && strcmp(r->service, e->service))
		return false;
	if (r->path[0] && strncmp(e->path, r->path, strlen(r->path)))
		return false;
	if (r->status && e->status != r->status)
		return false;
	if (r->class && e->status / 100 != r->class)
		return false;
	return true;
}

static void json_line(struct tapfeed *f, const struct reader *r, const struct tap_event *e, struct buf *b)
{
	const char *cg = f->cgroup_name ? f->cgroup_name(f->arg, e->cgroup_id) : NULL;
	struct kube_pod kp;

	buf_printf(b, "{\"time\":%.6f,\"service\":", e->wall);
	buf_json_str(b, e->service);
	buf_puts(b, ",\"method\":");
	buf_json_str(b, e->method);
	buf_puts(b, ",\"authority\":");
	buf_json_str(b, e->authority);
	buf_puts(b, ",\"path\":");
	buf_json_str(b, e->path);
	if (e->status)
		buf_printf(b, ",\"status\":%u", e->status);
	else
		buf_puts(b, ",\"status\":null");
	if (e->grpc >= 0)
		buf_printf(b, ",\"grpc_status\":\"%s\"", grpc_code_name(e->grpc));
	buf_printf(b, ",\"latency_ms\":%.3f,\"endpoint\":", e->latency_us / 1000.0);
	if (e->endpoint[0])
		buf_json_str(b, e->endpoint);
	else
		buf_puts(b, "null");
	buf_printf(b, ",\"retries\":%u,\"pid\":%u,\"cgroup\":", e->attempts ? e->attempts - 1 : 0, e->pid);
	if (cg)
		buf_json_str(b, cg);
	else
		buf_puts(b, "null");
	if (cg && kube_pod_from_cgroup(cg, &kp) == 0)
		buf_printf(b, ",\"pod_uid\":\"%s\"", kp.uid);
	if (r->headers) {
		buf_puts(b, ",\"headers\":[");
		for (size_t i = 0, first = 1; i < e->headers_len;) {
			const char *nl = memchr(e->headers + i, '\n', e->headers_len - i);
			size_t end = nl ? (size_t)(nl - e->headers) : e->headers_len;
			char line[TAP_HEADERS_MAX + 1];

			memcpy(line, e->headers + i, end - i);
			line[end - i] = '\0';
			if (!first)
				buf_puts(b, ",");
			buf_json_str(b, line);
			first = 0;
			i = end + 1;
		}
		buf_puts(b, "]");
	}
	buf_puts(b, "}\n");
}

/* "12:00:01.234 web  GET  example.com/path  200  12.3ms" (80 columns); wide adds endpoint, pod, retries. */
static void text_line(struct tapfeed *f, const struct reader *r, const struct tap_event *e, struct buf *b)
{
	char ts[32], target[sizeof(((struct tap_event *)0)->authority) + sizeof(((struct tap_event *)0)->path)], st[8];
	time_t sec = (time_t)e->wall;
	struct tm tm;
	size_t tl;

	localtime_r(&sec, &tm);
	snprintf(ts, sizeof(ts), "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)((e->wall - (double)sec) * 1000) % 1000);
	snprintf(target, sizeof(target), "%s%s", e->authority, e->path);
	tl = strlen(target);
	if (e->grpc >= 0)
		snprintf(st, sizeof(st), "g%d", e->grpc); /* gRPC status code: g0 OK, g14 UNAVAILABLE, ... */
	else if (e->status)
		snprintf(st, sizeof(st), "%u", e->status);
	else
		snprintf(st, sizeof(st), "---");
	buf_printf(b, "%s %-14.14s %-6.6s %-28s %3s %9.2fms", ts, e->service, e->method,
		   r->wide || tl <= 28 ? target : target + tl - 28, st, e->latency_us / 1000.0);
	if (r->wide) {
		const char *cg = f->cgroup_name ? f->cgroup_name(f->arg, e->cgroup_id) : NULL;
		struct kube_pod kp;

		buf_printf(b, " ep=%s retries=%u", e->endpoint[0] ? e->endpoint : "-",
			   e->attempts ? e->attempts - 1 : 0);
		if (cg && kube_pod_from_cgroup(cg, &kp) == 0)
			buf_printf(b, " pod=%s", kp.uid);
		else
			buf_printf(b, " cgroup=%s pid=%u", cg ? cg : "?", e->pid);
	}
	buf_puts(b, "\n");
	if (r->headers)
		for (size_t i = 0; i < e->headers_len;) {
			const char *nl = memchr(e->headers + i, '\n', e->headers_len - i);
			size_t end = nl ? (size_t)(nl - e->headers) : e->headers_len;

			buf_printf(b, "    %.*s\n", (int)(end - i), e->headers + i);
			i = end + 1;
		}
}

static void deliver(struct tapfeed *f, struct reader *r, const struct tap_event *e)
{
	struct buf b = { 0 };

	if (r->dropped > r->dropped_told) {
		/* tell a reader that is back what it missed */
		if (r->text)
			buf_printf(&b, "# %llu requests not shown: this reader was too slow\n",
				   (unsigned long long)(r->dropped - r->dropped_told));
		else
			buf_printf(&b, "{\"dropped\":%llu}\n", (unsigned long long)(r->dropped - r->dropped_told));
	}
	if (r->text)
		text_line(f, r, e, &b);
	else
		json_line(f, r, e, &b);
	if (!buf_failed(&b) && admin_stream_write(r->st, b.p, b.len) == 0) {
		r->dropped_told = r->dropped;
		r->sent++;
		f->sent++;
	} else {
		r->dropped++;
		f->dropped_reader++;
	}
	buf_free(&b);
}

static void on_drain(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct tapfeed *f = t->data;
	size_t n, i;

	(void)loop;
	(void)revents;
	if (!f->batch)
		return;
	n = tap_drain(f->tap, f->batch, TAP_RING);
	for (i = 0; i < n; i++)
		for (struct reader *r = f->readers; r; r = r->next)
			if (matches(r, &f->batch[i]))
				deliver(f, r, &f->batch[i]);
}

struct tapfeed *tapfeed_new(struct ev_loop *loop, struct tap *tap, render_cgroup_fn cgroup_name, void *arg)
{
	struct tapfeed *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->loop = loop;
	f->tap = tap;
	f->cgroup_name = cgroup_name;
	f->arg = arg;
	ev_timer_init(&f->drain, on_drain, TAPFEED_PERIOD_S, TAPFEED_PERIOD_S);
	f->drain.data = f;
	return f;
}

void tapfeed_free(struct tapfeed *f)
{
	if (!f)
		return;
	while (f->readers) {
		struct reader *r = f->readers;

		admin_stream_end(r->st); /* no on_close after this */
		reader_free(r);
	}
	ev_timer_stop(f->loop, &f->drain);
	free(f->batch);
	free(f);
}

void tapfeed_attach(struct tapfeed *f, const char *query, struct admin_response *resp)
{
	char status[16] = "", v[16] = "";
	struct reader *r;

	if (f->n >= TAPFEED_MAX_READERS) {
		admin_resp_text(resp, 503, "%d taps are open already; close one (weftctl tap) and try again",
				TAPFEED_MAX_READERS);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		admin_resp_text(resp, 503, "out of memory");
		return;
	}
	admin_query_get(query, "service", r->service, sizeof(r->service));
	admin_query_get(query, "path", r->path, sizeof(r->path));
	if (admin_query_get(query, "status", status, sizeof(status)) && status[0]) {
		if (strlen(status) == 3 && status[0] >= '1' && status[0] <= '5' && !strcmp(status + 1, "xx"))
			r->class = status[0] - '0';
		else if (strlen(status) == 3 && status[0] >= '1' && status[0] <= '5' && status[1] >= '0' &&
			 status[1] <= '9' && status[2] >= '0' && status[2] <= '9')
			r->status = atoi(status);
		else {
			admin_resp_text(resp, 400, "status=%s: give a status (503) or a class (5xx)", status);
			free(r);
			return;
		}
	}
	r->headers = admin_query_get(query, "headers", v, sizeof(v)) && strcmp(v, "0");
	r->wide = admin_query_get(query, "wide", v, sizeof(v)) && strcmp(v, "0");
	r->text = admin_query_get(query, "format", v, sizeof(v)) && !strcmp(v, "text");
	if (!f->batch && !(f->batch = malloc(TAP_RING * sizeof(*f->batch)))) {
		admin_resp_text(resp, 503, "out of memory");
		free(r);
		return;
	}
	if (tap_reader_add(f->tap, r->headers) < 0) {
		admin_resp_text(resp, 503, "out of memory");
		free(r);
		return;
	}
	r->f = f;
	r->next = f->readers;
	f->readers = r;
	f->n++;
	if (!ev_is_active(&f->drain))
		ev_timer_start(f->loop, &f->drain);
	resp->ctype = r->text ? "text/plain; charset=utf-8" : "application/x-ndjson";
	r->st = admin_resp_stream(resp, reader_closed, r);
	if (r->text)
		buf_puts(resp->body, "# tapping: one line per request as it ends (Ctrl-C to stop)\n");
	log_info("tap: a reader (service %s, path %s, status %s)", r->service[0] ? r->service : "any",
		 r->path[0] ? r->path : "any", status[0] ? status : "any");
}

void tapfeed_metrics(struct tapfeed *f, struct buf *out)
{
	buf_printf(out,
		   "# HELP weft_tap_readers Readers of the live request feed (weftctl tap).\n"
		   "# TYPE weft_tap_readers gauge\nweft_tap_readers %u\n"
		   "# HELP weft_tap_events_total Requests offered to the live feed: sent to a reader, or dropped "
		   "(ring full, or the reader too slow).\n# TYPE weft_tap_events_total counter\n"
		   "weft_tap_events_total{result=\"sent\"} %llu\n"
		   "weft_tap_events_total{result=\"dropped_ring\"} %llu\n"
		   "weft_tap_events_total{result=\"dropped_reader\"} %llu\n",
		   f->n, (unsigned long long)f->sent, (unsigned long long)atomic_load(&f->tap->dropped),
		   (unsigned long long)f->dropped_reader);
}
