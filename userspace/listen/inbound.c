// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "listen/inbound.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "config/config.h"
#include "lib/log.h"
#include "tls/mtls.h"
#include "codec/preamble.h"
#include "lib/list.h"
#include "lib/lpause.h"
#include "lib/sock.h"
#include "state/service.h"
#include "tcp/relay.h"
#include "tls/tls.h"

enum in_result { IN_OK = 0, IN_DENIED, IN_UNKNOWN_TARGET, IN_BAD_PREAMBLE, IN_OVERLOADED, IN_UNREACHABLE, IN__MAX };
static const char *const in_result_names[IN__MAX] = {
	"ok", "denied", "unknown_target", "bad_preamble", "overloaded", "unreachable",
};

struct in_conn {
	struct inbound *in;
	struct list_head link; /* in->conns */
	int fd;
	struct tls_conn *tls;
	ev_io io;
	ev_timer timer;
	ev_tstamp started;
	size_t len;
	char peer[ADDR_STRLEN];
	uint8_t buf[4096]; /* preamble (<= 512) plus early bytes: under the smallest agent.buffer_size */
};

struct in_relay_arg {
	struct inbound *in;
	struct list_head link; /* in->relay_list */
	struct relay *r;
	struct weft_sockaddr target;
};

/* Connections by peer identity: bounded label set (the rest counts as "other"). */
#define IN_MAX_PEER_IDS 100

struct in_peer {
	char *id;
	uint64_t n;
};

struct inbound {
	struct ev_loop *loop;
	struct registry *reg;
	struct relay_pool *pool; /* this loop's relay buffers (inbound relays only) */
	struct mtls *mtls;
	ev_io lis;
	struct lpause pause; /* lis, paused while accept lacks descriptors or memory */
	bool listening;
	uint32_t max_handshakes, timeout_ms;
	unsigned handshaking;
	struct list_head conns;               /* handshakes and preambles in progress (struct in_conn) */
	unsigned relays;                      /* admitted connections being relayed */
	struct list_head relay_list;          /* those relays (struct in_relay_arg), so shutdown can end them */
	uint32_t max_relays;                  /* agent.max_connections */
	uint64_t handshakes[TLS_FAIL__COUNT]; /* by tls_fail; [TLS_FAIL_NONE] = success */
	uint64_t results[IN__MAX];
	uint64_t hs_count;
	double hs_sum;
	uint64_t hs_buckets[8];
	struct in_peer peers[IN_MAX_PEER_IDS];
	size_t n_peers;
	uint64_t peers_other;
};

static void in_count_peer(struct inbound *in, const char *id)
{
	size_t i;

	for (i = 0; i < in->n_peers; i++) {
		if (strcmp(in->peers[i].id, id) == 0) {
			in->peers[i].n++;
			return;
		}
	}
	if (in->n_peers == IN_MAX_PEER_IDS || !(in->peers[in->n_peers].id = strdup(id))) {
		in->peers_other++;
		return;
	}
	in->peers[in->n_peers++].n = 1;
}

static const double hs_bounds[8] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1 };

static void in_conn_free(struct in_conn *c, bool close_fd)
{
	struct inbound *in = c->in;

	ev_io_stop(in->loop, &c->io);
	ev_timer_stop(in->loop, &c->timer);
	list_del(&c->link);
	in->handshaking--;
	if (c->tls)
		tls_conn_free(c->tls);
	if (close_fd)
		close(c->fd);
	free(c);
}

/* Refuses with a preamble reply (best effort: the socket may be full or gone). */
static void in_refuse(struct in_conn *c, enum in_result r, int status, const char *why)
{
	uint8_t reply[PREAMBLE_REPLY_LEN];

	c->in->results[r]++;
	log_warn_rl("inbound %s (%s): refused: %s", c->peer, c->tls ? tls_peer_id(c->tls) : "-", why);
	if (status >= 0 && preamble_reply_encode(reply, sizeof(reply), (enum preamble_status)status) > 0)
		(void)tls_write(c->tls, reply, sizeof(reply));
	tls_shutdown(c->tls);
	in_conn_free(c, true);
}

static void in_relay_event(void *arg, struct relay *r, enum relay_event_kind kind, void *tag, int64_t value,
			   const struct relay_stats *st)
{
	struct in_relay_arg *a = arg;

	(void)r;
	(void)tag;
	(void)value;
	(void)st;
	if (kind == RELAY_EV_CONNECT_FAIL)
		a->in->results[IN_UNREACHABLE]++;
	if (kind == RELAY_EV_CLOSED) {
		a->in->relays--;
		list_del(&a->link);
		free(a);
	}
}

/* The relay's pick for one admitted connection: its target, once (no retry elsewhere: the caller's agent retries). */
static int in_pick_arg(void *arg, unsigned attempt, struct weft_sockaddr *out, void **tag)
{
	struct in_relay_arg *a = arg;

	(void)tag;
	if (attempt > 0)
		return -ENOENT;
	*out = a->target;
	return 0;
}

static void in_admit(struct in_conn *c, const struct preamble *p, size_t used)
{
	struct inbound *in = c->in;
	struct in_relay_arg *a;
	struct svc_connopts so;
	struct relay_opts opts;
	struct relay *r;
	char svc[PREAMBLE_SERVICE_MAX + 1] = "", ts[ADDR_STRLEN], why[256];
	const char *peer_id = tls_peer_id(c->tls);
	int st;

	addr_format(&p->target, ts, sizeof(ts));
	st = reg_inbound_admit(in->reg, &p->target, peer_id, svc, sizeof(svc), &so);
	if (st == PREAMBLE_ST_UNKNOWN_TARGET) {
		snprintf(why, sizeof(why), "%s is not an endpoint of this node", ts);
		in_refuse(c, IN_UNKNOWN_TARGET, st, why);
		return;
	}
	if (st == PREAMBLE_ST_DENIED) {
		snprintf(why, sizeof(why), "denied: %s may not connect to service %s (authorization.allow)", peer_id,
			 svc);
		in_refuse(c, IN_DENIED, st, why);
		return;
	}
	if (in->relays >= in->max_relays) {
		snprintf(why, sizeof(why), "agent.max_connections (%u) inbound connections open", in->max_relays);
		in_refuse(c, IN_OVERLOADED, PREAMBLE_ST_OVERLOADED, why);
		return;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		in_refuse(c, IN_OVERLOADED, PREAMBLE_ST_OVERLOADED, "out of memory");
		return;
	}
	a->in = in;
	a->target = p->target;
	memset(&opts, 0, sizeof(opts));
	opts.buffer_size = so.buffer_size;
	opts.connect_timeout_ms = so.connect_timeout_ms;
	opts.idle_timeout_ms = so.idle_timeout_ms;
	opts.mark = so.mark;
	opts.max_attempts = 1;
	opts.flags = RELAY_TLS_REPLY;
	in->results[IN_OK]++;
	in_count_peer(in, peer_id);
	log_debug("inbound %s: %s -> service %s endpoint %s", c->peer, peer_id, svc, ts);
	/* the relay owns the TLS connection and the socket from here, on every path */
	r = relay_start_tls(in->loop, in->pool, c->tls, c->fd, c->buf + used, c->len - used, &opts, in_pick_arg,
			    in_relay_event, a);
	c->tls = NULL;
	if (r) {
		/* no event fires before relay_start_tls returns: safe to list it now */
		a->r = r;
		list_add(&a->link, &in->relay_list);
		in->relays++;
	} else {
		in->results[IN_OVERLOADED]++;
		log_warn_rl("inbound %s: cannot start a relay: %s", c->peer, strerror(errno));
		free(a);
	}
	in_conn_free(c, false);
}

static void in_step(struct in_conn *c)
{
	struct inbound *in = c->in;
	enum preamble_err perr;
	struct preamble p;
	double secs;
	ssize_t n;
	int r, i;

	r = tls_handshake(c->tls);
	if (r == -EAGAIN)
		goto wait;
	if (r < 0) {
		in->handshakes[tls_conn_fail(c->tls)]++;
		log_warn_rl("inbound %s: TLS handshake failed: %s (%s)", c->peer, tls_fail_name(tls_conn_fail(c->tls)),
			    tls_conn_detail(c->tls));
		in_conn_free(c, true);
		return;
	}
	if (c->started > 0) {
		/* handshake done: count it once */
		secs = ev_now(in->loop) - c->started;
		in->handshakes[TLS_FAIL_NONE]++;
		in->hs_count++;
		in->hs_sum += secs;
		for (i = 0; i < 8; i++)
			if (secs <= hs_bounds[i])
				in->hs_buckets[i]++;
		c->started = 0;
	}
	for (;;) {
		if (c->len == sizeof(c->buf)) {
			in_refuse(c, IN_BAD_PREAMBLE, PREAMBLE_ST_BAD_PREAMBLE, "no preamble in the first bytes");
			return;
		}
		n = tls_read(c->tls, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			log_info_rl("inbound %s (%s): closed before its preamble", c->peer, tls_peer_id(c->tls));
			in->results[IN_BAD_PREAMBLE]++;
			in_conn_free(c, true);
			return;
		}
		c->len += (size_t)n;
		r = preamble_decode(c->buf, c->len, &p, &perr);
		if (r > 0) {
			in_admit(c, &p, (size_t)r);
			return;
		}
		if (r != -EAGAIN) {
			char why[128];

			snprintf(why, sizeof(why), "bad preamble: %s", preamble_err_name(perr));
			in_refuse(c, IN_BAD_PREAMBLE, PREAMBLE_ST_BAD_PREAMBLE, why);
			return;
		}
	}
wait:
	ev_io_stop(in->loop, &c->io);
	ev_io_set(&c->io, c->fd, tls_want(c->tls) == TLS_WANT_WRITE ? EV_WRITE : EV_READ);
	ev_io_start(in->loop, &c->io);
}

static void in_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	in_step(w->data);
}

static void in_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct in_conn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->started > 0)
		c->in->handshakes[TLS_FAIL_TIMEOUT]++;
	else
		c->in->results[IN_BAD_PREAMBLE]++;
	log_warn_rl("inbound %s: no %s within tls.handshake_timeout_ms (%u ms); closed", c->peer,
		    c->started > 0 ? "TLS handshake" : "preamble", c->in->timeout_ms);
	in_conn_free(c, true);
}

static void in_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct inbound *in = w->data;
	struct weft_sockaddr peer;
	struct in_conn *c;
	int fd, i;

	(void)revents;
	for (i = 0; i < 64; i++) {
		peer.len = sizeof(peer.in6);
		fd = accept4(w->fd, &peer.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* EMFILE and the like pause the listener (lib/lpause.h) */
			if (lpause_accept_error(&in->pause, errno) == LPAUSE_NEXT)
				continue;
			return;
		}
		lpause_accepted(&in->pause);
		if (in->handshaking >= in->max_handshakes) {
			in->results[IN_OVERLOADED]++;
			log_debug("inbound: tls.max_handshakes (%u) in progress; connection closed",
				  in->max_handshakes);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->in = in;
		c->fd = fd;
		addr_format(&peer, c->peer, sizeof(c->peer));
		c->tls = tls_conn_new(mtls_node_ctx(in->mtls), fd, true);
		list_add(&c->link, &in->conns);
		in->handshaking++;
		if (!c->tls) {
			in_conn_free(c, true);
			continue;
		}
		c->started = ev_now(loop);
		ev_io_init(&c->io, in_on_io, fd, EV_READ);
		c->io.data = c;
		ev_timer_init(&c->timer, in_on_timeout, in->timeout_ms / 1000.0, 0.);
		c->timer.data = c;
		ev_timer_start(loop, &c->timer);
		in_step(c);
	}
}

int inbound_start(struct ev_loop *loop, const struct weft_config *cfg, struct registry *reg, struct mtls *m,
		  struct inbound **out, char *err, size_t errlen)
{
	struct inbound *in;
	char as[ADDR_STRLEN];
	int fd, r;

	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->loop = loop;
	in->reg = reg;
	list_init(&in->conns);
	list_init(&in->relay_list);
	in->pool = relay_pool_new(cfg->buffer_size, 64);
	if (!in->pool) {
		free(in);
		return -ENOMEM;
	}
	inbound_update(in, cfg, m);
	fd = addr_listen(&cfg->inbound, 1024);
	if (fd < 0) {
		errno = -fd;
		goto err;
	}
	ev_io_init(&in->lis, in_on_accept, fd, EV_READ);
	in->lis.data = in;
	lpause_init(&in->pause, loop, &in->lis, 1, "the mTLS inbound listener (agent.inbound)");
	ev_io_start(loop, &in->lis);
	in->listening = true;
	log_info("mTLS inbound listener on %s (identity %s)", addr_format(&cfg->inbound, as, sizeof(as)),
		 tls_ctx_identity(mtls_node_ctx(m)));
	*out = in;
	return 0;
err:
	r = -errno;
	snprintf(err, errlen, "cannot listen on %s (agent.inbound): %s", addr_format(&cfg->inbound, as, sizeof(as)),
		 strerror(errno));
	mtls_unref(in->mtls);
	relay_pool_free(in->pool);
	free(in);
	return r;
}

void inbound_update(struct inbound *in, const struct weft_config *cfg, struct mtls *m)
{
	struct mtls *old = in->mtls;

	in->mtls = mtls_ref(m);
	mtls_unref(old);
	in->max_handshakes = cfg->tls_max_handshakes;
	in->max_relays = cfg->max_connections;
	in->timeout_ms = cfg->tls_handshake_timeout_ms;
}

void inbound_stop_accepting(struct inbound *in)
{
	if (!in || !in->listening)
		return;
	lpause_stop(&in->pause);
	ev_io_stop(in->loop, &in->lis);
	close(in->lis.fd);
	in->listening = false;
}

unsigned inbound_active(const struct inbound *in)
{
	return in ? in->relays + in->handshaking : 0;
}

void inbound_abort_all(struct inbound *in)
{
	if (!in)
		return;
	while (!list_empty(&in->conns))
		in_conn_free(list_first_entry(&in->conns, struct in_conn, link), true);
	/* relay_abort fires RELAY_EV_CLOSED, which unlinks and frees the entry */
	while (!list_empty(&in->relay_list))
		relay_abort(list_first_entry(&in->relay_list, struct in_relay_arg, link)->r);
}

void inbound_free(struct inbound *in)
{
	if (!in)
		return;
	inbound_stop_accepting(in);
	inbound_abort_all(in);
	while (in->n_peers)
		free(in->peers[--in->n_peers].id);
	mtls_unref(in->mtls);
	relay_pool_free(in->pool);
	free(in);
}

void inbound_render_metrics(struct inbound *in, struct buf *out)
{
	int i;

	buf_puts(out, "# HELP weft_tls_handshakes_total Inbound mTLS handshakes by result (ok or failure reason).\n"
		      "# TYPE weft_tls_handshakes_total counter\n");
	for (i = 0; i < TLS_FAIL__COUNT; i++)
		buf_printf(out, "weft_tls_handshakes_total{direction=\"inbound\",result=\"%s\"} %llu\n",
			   i == TLS_FAIL_NONE ? "ok" : tls_fail_name((enum tls_fail)i),
			   (unsigned long long)in->handshakes[i]);
	buf_puts(out, "# HELP weft_tls_handshake_duration_seconds Inbound mTLS handshake time.\n"
		      "# TYPE weft_tls_handshake_duration_seconds histogram\n");
	for (i = 0; i < 8; i++)
		buf_printf(out, "weft_tls_handshake_duration_seconds_bucket{direction=\"inbound\",le=\"%g\"} %llu\n",
			   hs_bounds[i], (unsigned long long)in->hs_buckets[i]);
	buf_printf(out,
		   "weft_tls_handshake_duration_seconds_bucket{direction=\"inbound\",le=\"+Inf\"} %llu\n"
		   "weft_tls_handshake_duration_seconds_sum{direction=\"inbound\"} %.6f\n"
		   "weft_tls_handshake_duration_seconds_count{direction=\"inbound\"} %llu\n",
		   (unsigned long long)in->hs_count, in->hs_sum, (unsigned long long)in->hs_count);
	buf_puts(out, "# HELP weft_inbound_connections_total mTLS connections from other nodes after the "
		      "handshake, by result.\n# TYPE weft_inbound_connections_total counter\n");
	for (i = 0; i < IN__MAX; i++)
		buf_printf(out, "weft_inbound_connections_total{result=\"%s\"} %llu\n", in_result_names[i],
			   (unsigned long long)in->results[i]);
	buf_puts(out, "# HELP weft_inbound_peer_connections_total Admitted mTLS connections by the caller's "
		      "verified identity (at most 100 identities; the rest as \"other\").\n"
		      "# TYPE weft_inbound_peer_connections_total counter\n");
	for (i = 0; i < (int)in->n_peers; i++) {
		buf_puts(out, "weft_inbound_peer_connections_total{peer_identity=\"");
		buf_prom_label(out, in->peers[i].id);
		buf_printf(out, "\"} %llu\n", (unsigned long long)in->peers[i].n);
	}
	if (in->peers_other)
		buf_printf(out, "weft_inbound_peer_connections_total{peer_identity=\"other\"} %llu\n",
			   (unsigned long long)in->peers_other);
	buf_printf(out,
		   "# HELP weft_inbound_handshakes_in_progress Inbound handshakes and preambles in progress.\n"
		   "# TYPE weft_inbound_handshakes_in_progress gauge\nweft_inbound_handshakes_in_progress %u\n"
		   "# HELP weft_inbound_relays_active Admitted inbound connections being relayed.\n"
		   "# TYPE weft_inbound_relays_active gauge\nweft_inbound_relays_active %u\n",
		   in->handshaking, in->relays);
}
