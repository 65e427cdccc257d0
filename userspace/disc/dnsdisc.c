// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * dnsdisc: DNS discovery on the main loop (dnsdisc.h).
 *
 * One c-ares channel per server in agent.dns_servers (one with the servers
 * of /etc/resolv.conf without it), each flagged NOCHECKRESP so that a
 * SERVFAIL or REFUSED reaches us as what it is (c-ares 1.18 reports a
 * SERVFAIL from every server as "connection refused"); a query that fails
 * on one server (such an answer, a timeout, no server there) is asked of
 * the next, in order, and only the last one's failure counts.
 *
 * c-ares tells us which sockets it wants watched (sock_state_cb) and when
 * its next timeout is due (ares_timeout); every ares_process_fd and every
 * new query re-arms the one timer. A source runs one refresh ("round") at a
 * time: the queries of a round are counted in `pending` before any is sent
 * (c-ares may answer from inside ares_query), and the round ends when the
 * count is back to zero. A query outlives its source when the source is
 * freed mid-round: it is then orphaned (src NULL) and freed by its callback,
 * which c-ares always calls (with ARES_EDESTRUCTION at the latest).
 */
#include "disc/dnsdisc.h"

#include <ares.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "codec/dnsmsg.h"
#include "lib/list.h"
#include "lib/log.h"

#define DNS_CLASS_IN 1
#define DD_ABORT_RETRY_S 0.05 /* a round cut short (servers changed): asked again this soon */

struct dd_chan {
	struct dnsdisc *d;
	ares_channel ch;
	char server[ADDR_STRLEN]; /* "" : resolv.conf's */
};

struct dd_io {
	ev_io w;
	int fd;
	struct dd_chan *c;
};

struct dnsdisc {
	struct ev_loop *loop;
	struct dd_chan *chans; /* one per server; NULL until dnsdisc_set_servers */
	size_t n_chans;
	bool lib_init;
	uint32_t mark;
	ev_timer tmo;
	struct dd_io **ios;
	size_t n_ios;
	struct weft_sockaddr servers[CFG_MAX_DNS_SERVERS];
	size_t n_servers;
	uint32_t timeout_ms;
	struct list_head srcs;
};

/* One query's last good answer: addresses with port 0. */
struct dd_addrs {
	struct weft_sockaddr *a;
	size_t n;
};

/* A name whose addresses a round needs: the source's own name, or an SRV target. */
struct dd_target {
	char name[DNS_NAME_MAX + 1];
	struct dd_addrs v4, v6;
};

struct dd_query {
	struct dns_src *src; /* NULL: orphaned */
	int target;          /* index in src->targets; -1: the SRV query */
	uint16_t type;
	size_t chan;           /* the server asked (index in dnsdisc.chans) */
	struct list_head link; /* src->queries */
};

struct dns_src {
	struct list_head link; /* dnsdisc.srcs */
	struct dnsdisc *d;
	char *svc;
	struct cfg_epsource cfg; /* name and zone owned */
	void (*changed)(void *arg);
	void *arg;
	ev_timer timer; /* the next round */
	/* the round in flight */
	unsigned pending;
	bool in_round, failed, aborted, truncated;
	char err[256];
	uint32_t ttl;
	struct list_head queries;
	/* the last answers: SRV records (their targets point into targets[]) and each target's addresses */
	struct epset_rec *recs;
	size_t n_recs;
	struct dd_target *targets;
	size_t n_targets;
	/* in force */
	struct ep_entry *eps;
	size_t n;
	unsigned fails; /* rounds in a row that were not a success */
	struct disc_status st;
};

static int ares_lib_refs;

/* ---- c-ares on libev ------------------------------------------------------- */

/* The next c-ares timeout of any channel, on the one timer. */
static void dd_rearm(struct dnsdisc *d)
{
	struct timeval tv, *tvp;
	double next = -1, t;
	size_t i;

	ev_timer_stop(d->loop, &d->tmo);
	for (i = 0; i < d->n_chans; i++) {
		tvp = ares_timeout(d->chans[i].ch, NULL, &tv);
		if (!tvp)
			continue;
		t = tv.tv_sec + tv.tv_usec / 1e6;
		if (next < 0 || t < next)
			next = t;
	}
	if (next < 0)
		return;
	ev_timer_set(&d->tmo, next + 0.001, 0.);
	ev_timer_start(d->loop, &d->tmo);
}

static void dd_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dnsdisc *d = w->data;
	size_t i;

	(void)loop;
	(void)revents;
	for (i = 0; i < d->n_chans; i++)
		ares_process_fd(d->chans[i].ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dd_rearm(d);
}

static void dd_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dd_io *io = w->data;
	struct dd_chan *c = io->c;
	int fd = io->fd; /* io may be freed by the processing below */

	(void)loop;
	ares_process_fd(c->ch, revents & EV_READ ? fd : ARES_SOCKET_BAD, revents & EV_WRITE ? fd : ARES_SOCKET_BAD);
	dd_rearm(c->d);
}

/* c-ares opens, changes or closes (neither) interest in a socket. */
static void dd_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dd_chan *c = data;
	struct dnsdisc *d = c->d;
	struct dd_io *io = NULL, **n;
	size_t i;

	for (i = 0; i < d->n_ios; i++)
		if (d->ios[i]->fd == fd) {
			io = d->ios[i];
			break;
		}
	if (!readable && !writable) {
		if (!io)
			return;
		ev_io_stop(d->loop, &io->w);
		free(io);
		d->ios[i] = d->ios[--d->n_ios];
		return;
	}
	if (!io) {
		io = calloc(1, sizeof(*io));
		n = io ? realloc(d->ios, (d->n_ios + 1) * sizeof(*n)) : NULL;
		if (!n) {
			/* c-ares will time the query out: the round fails and is retried */
			free(io);
			log_error("dns: out of memory watching a resolver socket");
			return;
		}
		d->ios = n;
		d->ios[d->n_ios++] = io;
		io->fd = fd;
		ev_io_init(&io->w, dd_on_io, fd, 0);
		io->w.data = io;
	}
	io->c = c;
	ev_io_stop(d->loop, &io->w);
	ev_io_set(&io->w, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	ev_io_start(d->loop, &io->w);
}

/* Every resolver socket carries agent.mark, so the BPF programs never redirect it. */
static int dd_configure_socket(ares_socket_t fd, int type, void *data)
{
	struct dnsdisc *d = ((struct dd_chan *)data)->d;

	(void)type;
	if (d->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &d->mark, sizeof(d->mark)) < 0)
		log_debug("dns: cannot set SO_MARK on a resolver socket: %s", strerror(errno));
	return 0; /* without the mark, weftd's own cgroup is still never intercepted */
}

int dnsdisc_new(struct ev_loop *loop, uint32_t mark, struct dnsdisc **out)
{
	struct dnsdisc *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	if (ares_lib_refs++ == 0 && ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		ares_lib_refs--;
		free(d);
		return -ENOMEM;
	}
	d->lib_init = true;
	d->loop = loop;
	d->mark = mark;
	list_init(&d->srcs);
	ev_timer_init(&d->tmo, dd_on_timeout, 0., 0.);
	d->tmo.data = d;
	*out = d;
	return 0;
}

static void chans_free(struct dd_chan *c, size_t n, bool cancel)
{
	size_t i;

	/* cancel all first: a callback must not send on a channel being destroyed */
	for (i = 0; cancel && i < n; i++)
		ares_cancel(c[i].ch);
	for (i = 0; i < n; i++)
		ares_destroy(c[i].ch); /* orphaned queries are freed by their callbacks */
	free(c);
}

void dnsdisc_free(struct dnsdisc *d)
{
	size_t i;

	if (!d)
		return;
	chans_free(d->chans, d->n_chans, false);
	ev_timer_stop(d->loop, &d->tmo);
	for (i = 0; i < d->n_ios; i++) {
		ev_io_stop(d->loop, &d->ios[i]->w);
		free(d->ios[i]);
	}
	free(d->ios);
	if (d->lib_init && --ares_lib_refs == 0)
		ares_library_cleanup();
	free(d);
}

/* One channel asking server (NULL: resolv.conf's); 0 or -errno with err. */
static int chan_init(struct dnsdisc *d, struct dd_chan *c, const struct weft_sockaddr *server, uint32_t timeout_ms,
		     char *err, size_t errlen)
{
	struct ares_options o;
	int r;

	memset(&o, 0, sizeof(o));
	c->d = d;
	o.sock_state_cb = dd_sock_state;
	o.sock_state_cb_data = c;
	o.timeout = (int)timeout_ms;
	o.tries = DNSDISC_TRIES;
	o.flags = ARES_FLAG_NOALIASES | ARES_FLAG_NOSEARCH | ARES_FLAG_NOCHECKRESP;
	r = ares_init_options(&c->ch, &o,
			      ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS);
	if (r != ARES_SUCCESS) {
		err_set(err, errlen, "cannot start the DNS resolver (c-ares): %s", ares_strerror(r));
		return -ENOMEM;
	}
	ares_set_socket_configure_callback(c->ch, dd_configure_socket, c);
	if (!server)
		return 0;
	addr_format(server, c->server, sizeof(c->server));
	r = ares_set_servers_ports_csv(c->ch, c->server);
	if (r != ARES_SUCCESS) {
		err_set(err, errlen, "agent.dns_servers: c-ares refuses '%s': %s", c->server, ares_strerror(r));
		ares_destroy(c->ch);
		return -EINVAL;
	}
	return 0;
}

int dnsdisc_set_servers(struct dnsdisc *d, const struct weft_sockaddr *servers, size_t n, uint32_t timeout_ms,
			char *err, size_t errlen)
{
	struct dd_chan *nc, *old = d->chans;
	size_t i, m = n ? n : 1, n_old = d->n_chans;

	if (n > CFG_MAX_DNS_SERVERS)
		n = m = CFG_MAX_DNS_SERVERS;
	if (d->chans && n == d->n_servers && timeout_ms == d->timeout_ms) {
		for (i = 0; i < n && addr_equal(&servers[i], &d->servers[i]); i++)
			;
		if (i == n)
			return 0;
	}
	nc = calloc(m, sizeof(*nc));
	if (!nc) {
		err_set(err, errlen, "out of memory starting the DNS resolver");
		return -ENOMEM;
	}
	for (i = 0; i < m; i++) {
		int r = chan_init(d, &nc[i], n ? &servers[i] : NULL, timeout_ms, err, errlen);

		if (r < 0) {
			chans_free(nc, i, false);
			return r;
		}
	}
	d->chans = nc;
	d->n_chans = m;
	memcpy(d->servers, servers, n * sizeof(*servers));
	d->n_servers = n;
	d->timeout_ms = timeout_ms;
	if (old) {
		/* rounds in flight end as aborted and are asked again, on the new channels */
		chans_free(old, n_old, true);
		log_info("dns: now asking %s%s (%u ms per try)", n ? nc[0].server : "the servers of /etc/resolv.conf",
			 n > 1 ? " and the next ones in agent.dns_servers" : "", timeout_ms);
	}
	dd_rearm(d);
	return 0;
}

/* ---- one source --------------------------------------------------------- */

static const char *kind_name(const struct dns_src *s)
{
	return s->cfg.kind == CFG_EP_DNS_SRV ? "dns_srv" : "dns";
}

/* What a failed query says, in the words of DNS. */
static const char *status_text(int status)
{
	switch (status) {
	case ARES_ESERVFAIL:
		return "SERVFAIL";
	case ARES_EREFUSED:
		return "REFUSED";
	case ARES_ETIMEOUT:
		return "no answer (timed out)";
	case ARES_ECONNREFUSED:
		return "connection refused by every server";
	case ARES_EFORMERR:
		return "FORMERR";
	case ARES_ENOTIMP:
		return "NOTIMP";
	default:
		return ares_strerror(status);
	}
}

static const char *type_name(uint16_t t)
{
	return t == DNS_T_A ? "A" : t == DNS_T_AAAA ? "AAAA" : "SRV";
}

static void addrs_free(struct dd_addrs *a)
{
	free(a->a);
	a->a = NULL;
	a->n = 0;
}

static void targets_free(struct dd_target *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		addrs_free(&t[i].v4);
		addrs_free(&t[i].v6);
	}
	free(t);
}

static int addrs_copy(struct dd_addrs *dst, const struct dd_addrs *src)
{
	dst->n = 0;
	dst->a = NULL;
	if (!src->n)
		return 0;
	dst->a = malloc(src->n * sizeof(*dst->a));
	if (!dst->a)
		return -ENOMEM;
	memcpy(dst->a, src->a, src->n * sizeof(*dst->a));
	dst->n = src->n;
	return 0;
}

static void round_fail(struct dns_src *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void round_fail(struct dns_src *s, const char *fmt, ...)
{
	va_list ap;

	s->failed = true;
	if (s->err[0])
		return; /* the first problem of a round tells it */
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

/* Sends one query of the round (pending already counts it). */
static void send_query(struct dns_src *s, int target, uint16_t type, const char *name)
{
	struct dd_query *q = calloc(1, sizeof(*q));

	if (!q) {
		round_fail(s, "out of memory");
		s->pending--;
		return;
	}
	q->src = s;
	q->target = target;
	q->type = type;
	list_add(&q->link, &s->queries);
	ares_query(s->d->chans[0].ch, name, DNS_CLASS_IN, type, on_answer, q);
}

/* The A and AAAA queries the source's family asks for, per target from `first` on. */
static void send_target_queries(struct dns_src *s, size_t first)
{
	bool v4 = s->cfg.family != CFG_FAMILY_IPV6, v6 = s->cfg.family != CFG_FAMILY_IPV4;
	size_t i;

	s->pending += (unsigned)((s->n_targets - first) * ((v4 ? 1 : 0) + (v6 ? 1 : 0)));
	for (i = first; i < s->n_targets; i++) {
		if (v4)
			send_query(s, (int)i, DNS_T_A, s->targets[i].name);
		if (v6)
			send_query(s, (int)i, DNS_T_AAAA, s->targets[i].name);
	}
}

static void schedule(struct dns_src *s, double delay)
{
	ev_timer_stop(s->d->loop, &s->timer);
	ev_timer_set(&s->timer, delay, 0.);
	ev_timer_start(s->d->loop, &s->timer);
	s->st.next_refresh = ev_now(s->d->loop) + delay;
}

/* The plain name's pseudo-record, from the config in force. */
static int plain_recs(struct dns_src *s)
{
	if (!s->recs) {
		s->recs = calloc(1, sizeof(*s->recs));
		if (!s->recs)
			return -ENOMEM;
	}
	s->recs[0] = (struct epset_rec){
		.target = s->cfg.name, .port = s->cfg.port, .priority = s->cfg.priority, .weight = s->cfg.weight
	};
	s->n_recs = 1;
	return 0;
}

static void finish_round(struct dns_src *s);

static void start_round(struct dns_src *s)
{
	struct dnsdisc *d = s->d;

	if (!d->chans) {
		schedule(s, 1.0);
		return;
	}
	s->in_round = true;
	s->failed = s->aborted = s->truncated = false;
	s->err[0] = '\0';
	s->ttl = UINT32_MAX;
	s->st.next_refresh = 0;
	s->pending = 1; /* held by this function until every query is out */
	if (s->cfg.kind == CFG_EP_DNS_SRV) {
		s->pending++;
		send_query(s, -1, DNS_T_SRV, s->cfg.name);
	} else if (!s->targets) {
		s->targets = calloc(1, sizeof(*s->targets));
		if (!s->targets || plain_recs(s) < 0) {
			round_fail(s, "out of memory");
		} else {
			snprintf(s->targets[0].name, sizeof(s->targets[0].name), "%s", s->cfg.name);
			s->n_targets = 1;
			send_target_queries(s, 0);
		}
	} else {
		send_target_queries(s, 0);
	}
	if (--s->pending == 0)
		finish_round(s);
	dd_rearm(d);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns_src *s = w->data;

	(void)loop;
	(void)revents;
	if (!s->in_round)
		start_round(s);
}

/*
 * The SRV answer: its records become the round's targets. A target asked
 * for in the last round keeps that round's addresses until its own queries
 * answer (so a failed one falls back to them); new ones start empty.
 */
static void srv_answered(struct dns_src *s, const struct dns_answer *a)
{
	struct dd_target *t = NULL;
	struct epset_rec *recs = NULL;
	size_t i, j, nt = 0, cap = a->n < DNSDISC_MAX_TARGETS ? a->n : DNSDISC_MAX_TARGETS;

	if (a->n) {
		t = calloc(cap, sizeof(*t));
		recs = calloc(a->n, sizeof(*recs));
		if (!t || !recs)
			goto oom;
	}
	for (i = 0; i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];

		for (j = 0; j < nt && strcasecmp(t[j].name, rr->target); j++)
			;
		if (j == nt) {
			if (nt == DNSDISC_MAX_TARGETS) {
				s->truncated = true;
				continue;
			}
			snprintf(t[nt].name, sizeof(t[nt].name), "%s", rr->target);
			for (size_t k = 0; k < s->n_targets; k++)
				if (!strcasecmp(s->targets[k].name, rr->target) &&
				    (addrs_copy(&t[nt].v4, &s->targets[k].v4) < 0 ||
				     addrs_copy(&t[nt].v6, &s->targets[k].v6) < 0))
					goto oom;
			nt++;
		}
		recs[i] = (struct epset_rec){
			.target = t[j].name, .port = rr->port, .priority = rr->priority, .weight = rr->weight
		};
	}
	targets_free(s->targets, s->n_targets);
	free(s->recs);
	s->targets = t;
	s->n_targets = nt;
	s->recs = recs;
	s->n_recs = a->n;
	/* records beyond the first DNSDISC_MAX_TARGETS targets point nowhere: drop them */
	for (i = 0, j = 0; i < s->n_recs; i++)
		if (s->recs[i].target)
			s->recs[j++] = s->recs[i];
	s->n_recs = j;
	send_target_queries(s, 0);
	return;
oom:
	if (t)
		targets_free(t, cap); /* entries not reached hold NULL arrays */
	free(recs);
	round_fail(s, "out of memory");
}

static void addrs_answered(struct dns_src *s, const struct dd_query *q, const struct dns_answer *a)
{
	struct dd_target *t = &s->targets[q->target];
	struct dd_addrs *dst = q->type == DNS_T_A ? &t->v4 : &t->v6;
	size_t i;

	addrs_free(dst);
	if (!a->n)
		return;
	dst->a = malloc(a->n * sizeof(*dst->a));
	if (!dst->a) {
		round_fail(s, "out of memory");
		return;
	}
	for (i = 0; i < a->n; i++)
		dst->a[i] = a->rr[i].addr;
	dst->n = a->n;
}

/* " (server a:p)" when several servers are configured, for messages */
static const char *server_of(const struct dns_src *s, size_t chan, char *buf, size_t len)
{
	if (s->d->n_chans > 1 && s->d->chans[chan].server[0])
		snprintf(buf, len, " (server %s)", s->d->chans[chan].server);
	else
		buf[0] = '\0';
	return buf;
}

/*
 * A query's answer. A failure (no answer, an rcode other than NOERROR and
 * NXDOMAIN, a malformed message) is asked of the next server if there is
 * one; the last server's failure fails the round.
 */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dd_query *q = arg;
	struct dns_src *s = q->src;
	struct dns_answer a;
	const char *name;
	char err[256], why[300], sv[ADDR_STRLEN + 16];
	bool parsed = false;

	(void)timeouts;
	if (!s) {
		free(q);
		return;
	}
	name = q->target < 0 ? s->cfg.name : s->targets[q->target].name;
	if (status == ARES_ECANCELLED || status == ARES_EDESTRUCTION) {
		s->aborted = true;
		goto done;
	}
	why[0] = '\0';
	if (!abuf || alen <= 0)
		snprintf(why, sizeof(why), "%s", status_text(status));
	else if (parsed = true, dns_parse_answer(abuf, (size_t)alen, name, q->type, &a, err, sizeof(err)) < 0)
		snprintf(why, sizeof(why), "%s", err);
	else if (a.rcode != DNS_RCODE_NOERROR && a.rcode != DNS_RCODE_NXDOMAIN)
		snprintf(why, sizeof(why), "%s",
			 a.rcode == DNS_RCODE_SERVFAIL ? "SERVFAIL"
			 : a.rcode == 5                ? "REFUSED"
			 : a.rcode == 4                ? "NOTIMP"
			 : a.rcode == 1                ? "FORMERR"
						       : "an unexpected rcode");
	if (why[0]) {
		if (parsed)
			dns_answer_free(&a); /* nothing, or an rcode's empty answer */
		if (q->chan + 1 < s->d->n_chans) {
			/* the next server, for this query alone */
			q->chan++;
			ares_query(s->d->chans[q->chan].ch, name, DNS_CLASS_IN, q->type, on_answer, q);
			return;
		}
		round_fail(s, "%s %s: %s%s", type_name(q->type), name, why, server_of(s, q->chan, sv, sizeof(sv)));
		goto done;
	}
	if (a.n && a.ttl < s->ttl)
		s->ttl = a.ttl;
	if (q->target < 0)
		srv_answered(s, &a);
	else
		addrs_answered(s, q, &a);
	dns_answer_free(&a);
done:
	list_del(&q->link);
	free(q);
	if (--s->pending == 0)
		finish_round(s);
}

/* The endpoints the last answers give, with the attributes in force. 0 or -ENOMEM. */
static int merge(struct dns_src *s, struct ep_entry **eps, size_t *n, size_t *dropped)
{
	struct epset_addrs *ans;
	size_t i;
	int r;

	if (s->cfg.kind == CFG_EP_DNS && plain_recs(s) < 0)
		return -ENOMEM;
	ans = calloc(2 * s->n_targets + 1, sizeof(*ans));
	if (!ans)
		return -ENOMEM;
	for (i = 0; i < s->n_targets; i++) {
		ans[2 * i] = (struct epset_addrs){ s->targets[i].name, s->targets[i].v4.a, s->targets[i].v4.n };
		ans[2 * i + 1] = (struct epset_addrs){ s->targets[i].name, s->targets[i].v6.a, s->targets[i].v6.n };
	}
	r = epset_merge(s->recs, s->n_recs, ans, 2 * s->n_targets, s->cfg.zone, eps, n, dropped);
	free(ans);
	return r;
}

/* Makes eps (n) the set in force if it differs; true when it did (eps taken). */
static bool install(struct dns_src *s, struct ep_entry *eps, size_t n)
{
	if (epset_equal(eps, n, s->eps, s->n)) {
		free(eps);
		return false;
	}
	free(s->eps);
	s->eps = eps;
	s->n = n;
	return true;
}

static void finish_round(struct dns_src *s)
{
	double now = ev_now(s->d->loop), delay, cap;
	struct ep_entry *eps = NULL;
	enum disc_result res;
	size_t n = 0, dropped = 0, before = s->n;
	bool changed = false, was_ok = s->st.last_result == DISC_OK, new_err;

	s->in_round = false;
	if (s->aborted) {
		schedule(s, DD_ABORT_RETRY_S);
		return;
	}
	if (merge(s, &eps, &n, &dropped) < 0)
		round_fail(s, "out of memory");
	if (n) {
		changed = install(s, eps, n);
		res = s->failed ? DISC_FAILED : DISC_OK;
	} else {
		free(eps);
		res = s->failed ? DISC_FAILED : DISC_EMPTY;
		if (!s->failed)
			snprintf(s->err, sizeof(s->err), "%s %s: no address (NXDOMAIN, or no record)", kind_name(s),
				 s->cfg.name);
	}
	new_err = strcmp(s->err, s->st.last_error) != 0;
	disc_status_note(&s->st, res, changed, s->err, now);
	s->st.ttl = s->ttl == UINT32_MAX ? 0 : s->ttl;
	if (res == DISC_OK) {
		s->fails = 0;
		delay = (double)s->st.ttl * 1000.0;
		if (delay < s->cfg.refresh_min_ms)
			delay = s->cfg.refresh_min_ms;
		if (delay > s->cfg.refresh_max_ms)
			delay = s->cfg.refresh_max_ms;
		if (!was_ok && s->st.refreshes[DISC_EMPTY] + s->st.refreshes[DISC_FAILED])
			log_info("service %s: %s %s answers again: %zu endpoints", s->svc, kind_name(s), s->cfg.name,
				 s->n);
	} else {
		cap = s->cfg.refresh_max_ms < DNSDISC_FAIL_MAX_MS ? s->cfg.refresh_max_ms : DNSDISC_FAIL_MAX_MS;
		delay = s->cfg.refresh_min_ms;
		for (unsigned k = 0; k < s->fails && delay < cap; k++)
			delay *= 2;
		if (delay > cap)
			delay = cap;
		s->fails++;
		/* once per failing spell and when what is wrong changes; the rest at debug */
		if (s->fails == 1 || new_err)
			log_warn("service %s: %s (%s); keeping the last %zu endpoints, asking again in %.1f s", s->svc,
				 s->err, res == DISC_EMPTY ? "empty" : "failed", s->n, delay / 1000.0);
		else
			log_debug("service %s: %s; still keeping the last %zu endpoints", s->svc, s->err, s->n);
	}
	if (changed)
		log_info("service %s: %s %s: %zu endpoints (were %zu), next refresh in %.1f s", s->svc, kind_name(s),
			 s->cfg.name, s->n, before, delay / 1000.0);
	if (dropped || s->truncated)
		log_warn_rl("service %s: %s %s: more than %d endpoints or %d SRV targets; the rest are left out",
			    s->svc, kind_name(s), s->cfg.name, EPFILE_MAX_ENDPOINTS, DNSDISC_MAX_TARGETS);
	schedule(s, delay / 1000.0);
	if (changed)
		s->changed(s->arg);
}

struct dns_src *dns_src_new(struct dnsdisc *d, const char *svc, const struct cfg_epsource *cfg,
			    void (*changed)(void *arg), void *arg)
{
	struct dns_src *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->d = d;
	s->cfg = *cfg;
	s->svc = strdup(svc);
	s->cfg.name = strdup(cfg->name);
	s->cfg.zone = cfg->zone ? strdup(cfg->zone) : NULL;
	if (!s->svc || !s->cfg.name || (cfg->zone && !s->cfg.zone)) {
		free(s->svc);
		free(s->cfg.name);
		free(s->cfg.zone);
		free(s);
		return NULL;
	}
	s->changed = changed;
	s->arg = arg;
	list_init(&s->queries);
	list_add_tail(&s->link, &d->srcs);
	ev_timer_init(&s->timer, on_timer, 0., 0.);
	s->timer.data = s;
	schedule(s, 0.); /* at the loop's next turn: never from inside a config load */
	return s;
}

void dns_src_update(struct dns_src *s, const struct cfg_epsource *cfg)
{
	struct ep_entry *eps = NULL;
	size_t n = 0, dropped;
	char *zone = cfg->zone ? strdup(cfg->zone) : NULL;
	bool refamily = cfg->family != s->cfg.family;

	if (cfg->zone && !zone)
		return; /* no memory: keep the old attributes */
	free(s->cfg.zone);
	s->cfg.zone = zone;
	s->cfg.family = cfg->family;
	s->cfg.weight = cfg->weight;
	s->cfg.priority = cfg->priority;
	s->cfg.refresh_min_ms = cfg->refresh_min_ms;
	s->cfg.refresh_max_ms = cfg->refresh_max_ms;
	if (refamily && !s->in_round)
		schedule(s, 0.);
	if (s->in_round || !s->n_targets || merge(s, &eps, &n, &dropped) < 0 || !n) {
		free(eps);
		return;
	}
	if (install(s, eps, n)) {
		s->st.changes++;
		s->st.last_change = ev_now(s->d->loop);
		s->changed(s->arg);
	}
}

void dns_src_free(struct dns_src *s)
{
	struct dd_query *q, *tmp;

	if (!s)
		return;
	list_for_each_entry_safe(q, tmp, &s->queries, link) {
		q->src = NULL; /* its callback frees it */
		list_del(&q->link);
	}
	ev_timer_stop(s->d->loop, &s->timer);
	list_del(&s->link);
	targets_free(s->targets, s->n_targets);
	free(s->recs);
	free(s->eps);
	free(s->svc);
	free(s->cfg.name);
	free(s->cfg.zone);
	free(s);
}

const struct ep_entry *dns_src_endpoints(const struct dns_src *s, size_t *n)
{
	*n = s->n;
	return s->eps;
}

const struct disc_status *dns_src_status(const struct dns_src *s)
{
	return &s->st;
}
