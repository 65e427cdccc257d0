// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/link/nodelink.c: the client leg against a scripted peer agent,
 * both ends in this thread over a non-blocking TCP loopback pair (resets and
 * FINs as the real link sees them), stepped as a libev loop would: the
 * client with nodelink_step, the peer with our tls API, poll(2) when both
 * wait. Certificates come from scripts/weft-ca, made once per run in a
 * temporary directory removed at the end.
 *
 * One table of outcomes (what the peer does -> errno, reply_status,
 * tls_fail, the one debug log line, bytes left behind the reply), then
 * nodelink_init's failures, then nodelink_expire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/preamble.h"
#include "lib/log.h"
#include "link/nodelink.h"
#include "tls/tls.h"

#define TD "example.org"
#define ID_NODE "spiffe://example.org/node/b"
#define ID_WORKLOAD "spiffe://example.org/ns/default/sa/web"
#define POLL_MS 5000
#define NAME "link under test"

static char g_dir[256];
static struct tls_ctx *g_cli;   /* agent A: the client leg */
static struct tls_ctx *g_srv;   /* agent B */
static struct tls_ctx *g_evil;  /* a node of a CA we do not trust */
static struct tls_ctx *g_picky; /* our CA's node certificate, but trusts only the evil CA */
static uint8_t g_pre[PREAMBLE_MAX];
static int g_pre_len;

/* --- fixtures -------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static struct tls_ctx *load(const char *ca, const char *leaf)
{
	char c[600], cert[600], key[600], err[512];
	struct tls_ctx_opts o = { 0 };
	struct tls_ctx *t;

	snprintf(c, sizeof(c), "%s/%s/ca.pem", g_dir, ca);
	snprintf(cert, sizeof(cert), "%s/%s.pem", g_dir, leaf);
	snprintf(key, sizeof(key), "%s/%s.key", g_dir, leaf);
	o.ca_file = c;
	o.cert_file = cert;
	o.key_file = key;
	t = tls_ctx_load(&o, err, sizeof(err));
	if (!t)
		fprintf(stderr, "test_nodelink: tls_ctx_load(%s, %s): %s\n", ca, leaf, err);
	return t;
}

static int teardown(void **state)
{
	tls_ctx_unref(g_cli);
	tls_ctx_unref(g_srv);
	tls_ctx_unref(g_evil);
	tls_ctx_unref(g_picky);
	g_cli = g_srv = g_evil = g_picky = NULL;
	tls_global_cleanup(); /* the last TLS user of the process */
	if (g_dir[0])
		nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	g_dir[0] = '\0';
	return 0;
}

/* CA "ca" with leaves cli and srv; CA "evil" (also example.org) with evil-srv. */
static int setup(void **state)
{
	const char *src = getenv("WEFT_SRCDIR");
	char ca[600], cmd[8192];
	struct preamble p;

	snprintf(ca, sizeof(ca), "%s/scripts/weft-ca", src ? src : ".");
	if (access(ca, X_OK) != 0) {
		fprintf(stderr, "test_nodelink: %s not found: run from the repository root or set WEFT_SRCDIR\n", ca);
		return -1;
	}
	snprintf(g_dir, sizeof(g_dir), "%s/weft-test-nodelink.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(g_dir)) {
		g_dir[0] = '\0';
		return -1;
	}
	snprintf(cmd, sizeof(cmd),
		 "set -e; %1$s init %2$s/ca --trust-domain " TD " >/dev/null; "
		 "%1$s init %2$s/evil --trust-domain " TD " >/dev/null; "
		 "%1$s issue %2$s/ca " ID_WORKLOAD " %2$s/cli >/dev/null; "
		 "%1$s issue %2$s/ca " ID_NODE " %2$s/srv >/dev/null; "
		 "%1$s issue %2$s/evil " ID_NODE " %2$s/evil-srv >/dev/null",
		 ca, g_dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_nodelink: making test certificates failed (openssl?): %s\n", cmd);
		teardown(state);
		return -1;
	}
	g_cli = load("ca", "cli");
	g_srv = load("ca", "srv");
	g_evil = load("evil", "evil-srv");
	g_picky = load("evil", "srv");
	memset(&p, 0, sizeof(p));
	if (addr_parse("10.0.0.7:8080", false, &p.target, cmd, sizeof(cmd)) == 0) {
		p.proto = PREAMBLE_PROTO_TCP;
		strcpy(p.service, "web");
		g_pre_len = preamble_encode(g_pre, sizeof(g_pre), &p);
	}
	if (!g_cli || !g_srv || !g_evil || !g_picky || g_pre_len <= 0) {
		teardown(state);
		return -1;
	}
	return 0;
}

/* --- stderr capture: the link logs there ------------------------------------------ */

static int cap_fd = -1, cap_saved = -1;
static enum log_level cap_level;

static void cap_start(void)
{
	cap_fd = memfd_create("stderr", MFD_CLOEXEC);
	assert_true(cap_fd >= 0);
	cap_saved = dup(STDERR_FILENO);
	assert_true(cap_saved >= 0);
	assert_int_equal(dup2(cap_fd, STDERR_FILENO), STDERR_FILENO);
	cap_level = log_threshold;
	log_set_level(LOG_LVL_DEBUG); /* the link logs its failures at debug */
}

/* Restores stderr; copies what was logged meanwhile into out. Idempotent. */
static void cap_stop(char *out, size_t len)
{
	ssize_t n;

	if (out)
		out[0] = '\0';
	if (cap_fd < 0)
		return;
	log_set_level(cap_level);
	dup2(cap_saved, STDERR_FILENO);
	close(cap_saved);
	n = out ? pread(cap_fd, out, len - 1, 0) : 0;
	close(cap_fd);
	cap_fd = cap_saved = -1;
	if (out)
		out[n > 0 ? n : 0] = '\0';
}

static int cap_teardown(void **state)
{
	cap_stop(NULL, 0);
	return 0;
}

/* Lines of log that contain needle. */
static unsigned count_lines(const char *log, const char *needle)
{
	const char *p = log, *nl;
	unsigned n = 0;

	for (; *p; p = nl + 1) {
		char line[1024];
		size_t l;

		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p);
		l = (size_t)(nl - p) < sizeof(line) - 1 ? (size_t)(nl - p) : sizeof(line) - 1;
		memcpy(line, p, l);
		line[l] = '\0';
		if (strstr(line, needle))
			n++;
		if (!*nl)
			break;
	}
	return n;
}

/* --- the pair: our client leg, a scripted peer agent ------------------------------- */

/* A connected non-blocking TCP loopback pair: fd[0] dials, fd[1] was accepted. */
static void tcp_pair(int fd[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int l;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd[0] >= 0);
	assert_true(connect(fd[0], (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS);
	fd[1] = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(fd[1] >= 0);
	close(l);
}

/* What the peer does once it has read the prefix (or instead of TLS at all). */
enum peer_end {
	END_KEEP,   /* stays open, says nothing more */
	END_NOTIFY, /* close_notify */
	END_FIN,    /* shutdown(SHUT_WR), no close_notify */
	END_RESET,  /* close with SO_LINGER {1, 0}: RST */
	END_NO_TLS, /* FIN before any TLS (not a close: unread bytes would make it a reset) */
};

#define PEER_CHUNKS 3

struct peer_script {
	struct tls_ctx **ctx; /* the peer's context: g_srv, g_evil, g_picky */
	/* after the prefix: each chunk one tls_write (one record); len 0 ends the list */
	struct {
		const char *bytes;
		size_t len;
	} chunk[PEER_CHUNKS];
	enum peer_end end;
};

enum peer_state { P_HANDSHAKE, P_PREFIX, P_SEND, P_END, P_DONE };

struct peer {
	const struct peer_script *sc;
	struct tls_conn *t;
	int fd;
	enum peer_state st;
	size_t want_prefix; /* prefix bytes it expects */
	uint8_t got[NODELINK_PREFIX_MAX];
	size_t got_len;
	unsigned chunk;
	short wait; /* POLLIN / POLLOUT while blocked */
};

static short poll_ev(const struct tls_conn *t, short dflt)
{
	switch (tls_want(t)) {
	case TLS_WANT_READ:
		return POLLIN;
	case TLS_WANT_WRITE:
		return POLLOUT;
	default:
		return dflt;
	}
}

/* Advances the peer as far as it goes; p->wait says what it blocks on (0: done). */
static void peer_run(struct peer *p)
{
	struct linger lg = { 1, 0 };
	ssize_t n;
	int rc;

	for (;;) {
		switch (p->st) {
		case P_HANDSHAKE:
			if (p->sc->end == END_NO_TLS) {
				p->st = P_END;
				break;
			}
			rc = tls_handshake(p->t);
			if (rc == -EAGAIN) {
				p->wait = poll_ev(p->t, POLLIN);
				return;
			}
			/* a refusal (g_picky, or our client refusing g_evil) ends the script */
			p->st = rc ? P_DONE : P_PREFIX;
			break;
		case P_PREFIX:
			if (p->got_len == p->want_prefix) {
				p->st = P_SEND;
				break;
			}
			n = tls_read(p->t, p->got + p->got_len, p->want_prefix - p->got_len);
			if (n == -EAGAIN) {
				p->wait = poll_ev(p->t, POLLIN);
				return;
			}
			if (n <= 0) {
				p->st = P_DONE;
				break;
			}
			p->got_len += (size_t)n;
			break;
		case P_SEND:
			if (p->chunk == PEER_CHUNKS || !p->sc->chunk[p->chunk].len) {
				p->st = P_END;
				break;
			}
			n = tls_write(p->t, p->sc->chunk[p->chunk].bytes, p->sc->chunk[p->chunk].len);
			if (n == -EAGAIN) {
				p->wait = poll_ev(p->t, POLLOUT);
				return;
			}
			assert_int_equal(n, (ssize_t)p->sc->chunk[p->chunk].len);
			p->chunk++;
			break;
		case P_END:
			switch (p->sc->end) {
			case END_KEEP:
				break;
			case END_NOTIFY:
				tls_shutdown(p->t);
				break;
			case END_FIN:
			case END_NO_TLS:
				assert_int_equal(shutdown(p->fd, SHUT_WR), 0);
				break;
			case END_RESET:
				assert_int_equal(setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
				tls_conn_free(p->t);
				p->t = NULL;
				close(p->fd);
				p->fd = -1;
				break;
			}
			p->st = P_DONE;
			break;
		case P_DONE:
			p->wait = 0;
			return;
		}
	}
}

struct link_run {
	int fd[2];
	struct tls_conn *c;
	struct nodelink l;
	struct peer p;
	int rc; /* the last nodelink_step result */
};

static void run_init(struct link_run *r, const struct peer_script *sc, const void *prefix, size_t len)
{
	memset(r, 0, sizeof(*r));
	tcp_pair(r->fd);
	r->c = tls_conn_new(g_cli, r->fd[0], false);
	assert_non_null(r->c);
	assert_int_equal(nodelink_init(&r->l, prefix, len, "%s", NAME), 0);
	r->p.sc = sc;
	r->p.fd = r->fd[1];
	r->p.t = tls_conn_new(*sc->ctx, r->fd[1], true);
	assert_non_null(r->p.t);
	r->p.want_prefix = len;
	r->rc = -EAGAIN;
}

static void run_fini(struct link_run *r)
{
	tls_conn_free(r->c);
	tls_conn_free(r->p.t);
	close(r->fd[0]);
	if (r->p.fd >= 0)
		close(r->p.fd);
}

/*
 * Steps both sides until the link is over (or, until_peer_done, until the
 * peer has nothing left to do while the link waits). Fails on a hang.
 */
static void run_drive(struct link_run *r, bool until_peer_done)
{
	int i;

	for (i = 0; i < 10000; i++) {
		struct pollfd pfd[2];
		nfds_t n = 0;

		if (r->rc == -EAGAIN)
			r->rc = nodelink_step(&r->l, r->c);
		peer_run(&r->p);
		if (r->rc != -EAGAIN)
			return;
		if (until_peer_done && r->p.st == P_DONE)
			return;
		/* the link says what it waits for through tls_want, as a watcher would */
		assert_true(tls_want(r->c) == TLS_WANT_READ || tls_want(r->c) == TLS_WANT_WRITE);
		pfd[n++] = (struct pollfd){ .fd = r->fd[0], .events = poll_ev(r->c, POLLIN) };
		if (r->p.wait)
			pfd[n++] = (struct pollfd){ .fd = r->p.fd, .events = r->p.wait };
		if (poll(pfd, n, POLL_MS) == 0)
			fail_msg("hung: the link waits for %s, the peer is in state %d",
				 pfd[0].events == POLLIN ? "reading" : "writing", r->p.st);
	}
	fail_msg("no outcome in 10000 steps");
}

/* Reads exactly len bytes the peer sent after the reply, waiting as needed. */
static void read_after(struct link_run *r, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		struct pollfd pfd = { .fd = r->fd[0], .events = POLLIN };

		peer_run(&r->p);
		n = tls_read(r->c, buf + got, len - got);
		if (n == -EAGAIN) {
			pfd.events = poll_ev(r->c, POLLIN);
			if (poll(&pfd, 1, POLL_MS) != 1)
				fail_msg("the bytes behind the reply never came (%zu of %zu)", got, len);
			continue;
		}
		if (n <= 0)
			fail_msg("reading behind the reply: %zd (%s)", n, tls_conn_detail(r->c));
		got += (size_t)n;
	}
}

/* --- outcomes ----------------------------------------------------------------------- */

#define CH(s)                    \
	{                        \
		s, sizeof(s) - 1 \
	}
/* Replies as on the wire (preamble.h): "WEFT", version 1, status, two zero bytes. */
#define REPLY(st)                                      \
	{                                              \
		"WEFT\1" st "\0\0", PREAMBLE_REPLY_LEN \
	}
#define ST_OK "\0"
#define ST_DENIED "\1"
#define ST_UNKNOWN_TARGET "\2"
#define ST_UNREACHABLE "\3"
#define ST_BAD_PREAMBLE "\4"
#define ST_OVERLOADED "\5"

struct outcome {
	const char *name;
	struct peer_script sc;
	int prefix; /* -1: a real preamble; else that many pattern bytes */
	int err;    /* nodelink_step's result, as a positive errno (0: connected) */
	int reply_status;
	int tls_fail;
	const char *log;   /* the one debug line a failure logs (after "NAME: "); NULL: none */
	const char *after; /* bytes the peer sent behind its reply, still readable */
};

static void check_outcome(const struct outcome *o)
{
	uint8_t prefix[NODELINK_PREFIX_MAX];
	char log[8192], want[256], buf[64];
	struct link_run r;
	size_t plen;
	int i;

	if (o->prefix < 0) {
		memcpy(prefix, g_pre, (size_t)g_pre_len);
		plen = (size_t)g_pre_len;
	} else {
		for (i = 0; i < o->prefix; i++)
			prefix[i] = (uint8_t)(i * 7 + 1);
		plen = (size_t)o->prefix;
	}
	cap_start();
	run_init(&r, &o->sc, prefix, plen);
	run_drive(&r, false);
	cap_stop(log, sizeof(log));
	if (r.rc != -o->err || r.l.reply_status != o->reply_status || r.l.tls_fail != o->tls_fail)
		fail_msg("%s: rc %d reply_status %d tls_fail %s (%s); expected %d %d %s", o->name, r.rc,
			 r.l.reply_status, tls_fail_name((enum tls_fail)r.l.tls_fail), tls_conn_detail(r.c), -o->err,
			 o->reply_status, tls_fail_name((enum tls_fail)o->tls_fail));
	/* one line per failed attempt, none for a success */
	if (count_lines(log, NAME ": ") != (o->log ? 1u : 0u))
		fail_msg("%s: expected %s log line naming the link, got:\n%s", o->name, o->log ? "one" : "no", log);
	snprintf(want, sizeof(want), NAME ": %s", o->log ? o->log : "");
	if (o->log && count_lines(log, want) != 1)
		fail_msg("%s: expected the line \"%s\", got:\n%s", o->name, want, log);
	/* connected: the peer got the prefix, whole and unchanged */
	if (!o->err && (r.p.got_len != plen || memcmp(r.p.got, prefix, plen)))
		fail_msg("%s: the peer read another prefix (%zu bytes of %zu)", o->name, r.p.got_len, plen);
	/* over: the same answer again, and nothing more is read from the TLS layer */
	assert_int_equal(nodelink_step(&r.l, r.c), r.rc);
	if (o->after) {
		size_t n = strlen(o->after);

		read_after(&r, buf, n);
		if (memcmp(buf, o->after, n))
			fail_msg("%s: the bytes behind the reply changed", o->name);
	}
	run_fini(&r);
}

static void test_outcomes(void **state)
{
	static const struct outcome cases[] = {
		/* connected */
		{ "ok", { &g_srv, { REPLY(ST_OK) }, END_KEEP }, -1, 0, PREAMBLE_ST_OK, TLS_FAIL_NONE, NULL, NULL },
		{ "ok, bytes behind it in the same record",
		  { &g_srv, { CH("WEFT\1\0\0\0hello") }, END_KEEP },
		  -1,
		  0,
		  PREAMBLE_ST_OK,
		  TLS_FAIL_NONE,
		  NULL,
		  "hello" },
		{ "ok in three records, then bytes and close_notify",
		  { &g_srv, { CH("WEF"), CH("T\1\0\0\0"), CH("HTTP/1.1 200 OK\r\n") }, END_NOTIFY },
		  -1,
		  0,
		  PREAMBLE_ST_OK,
		  TLS_FAIL_NONE,
		  NULL,
		  "HTTP/1.1 200 OK\r\n" },
		{ "ok, no prefix",
		  { &g_srv, { REPLY(ST_OK), CH("x") }, END_KEEP },
		  0,
		  0,
		  PREAMBLE_ST_OK,
		  TLS_FAIL_NONE,
		  NULL,
		  "x" },
		{ "ok, the longest prefix",
		  { &g_srv, { REPLY(ST_OK) }, END_KEEP },
		  NODELINK_PREFIX_MAX,
		  0,
		  PREAMBLE_ST_OK,
		  TLS_FAIL_NONE,
		  NULL,
		  NULL },
		/* the peer agent refused: its status, the attempt's errno */
		{ "denied",
		  { &g_srv, { REPLY(ST_DENIED) }, END_NOTIFY },
		  -1,
		  EACCES,
		  PREAMBLE_ST_DENIED,
		  TLS_FAIL_NONE,
		  "peer agent replied denied",
		  NULL },
		{ "unknown_target",
		  { &g_srv, { REPLY(ST_UNKNOWN_TARGET) }, END_NOTIFY },
		  -1,
		  ECONNREFUSED,
		  PREAMBLE_ST_UNKNOWN_TARGET,
		  TLS_FAIL_NONE,
		  "peer agent replied unknown_target",
		  NULL },
		{ "unreachable",
		  { &g_srv, { REPLY(ST_UNREACHABLE) }, END_NOTIFY },
		  -1,
		  ECONNREFUSED,
		  PREAMBLE_ST_UNREACHABLE,
		  TLS_FAIL_NONE,
		  "peer agent replied unreachable",
		  NULL },
		{ "bad_preamble",
		  { &g_srv, { REPLY(ST_BAD_PREAMBLE) }, END_NOTIFY },
		  -1,
		  EPROTO,
		  PREAMBLE_ST_BAD_PREAMBLE,
		  TLS_FAIL_NONE,
		  "peer agent replied bad_preamble",
		  NULL },
		{ "overloaded",
		  { &g_srv, { REPLY(ST_OVERLOADED) }, END_KEEP },
		  -1,
		  EBUSY,
		  PREAMBLE_ST_OVERLOADED,
		  TLS_FAIL_NONE,
		  "peer agent replied overloaded",
		  NULL },
		/* garbage: refused at its first wrong byte, the peer staying open (no wait for all 8) */
		{ "garbage: HTTP",
		  { &g_srv, { CH("HTTP/1.1 400 Bad Request\r\n\r\n") }, END_KEEP },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_NONE,
		  "not a preamble reply",
		  NULL },
		{ "garbage: one wrong byte",
		  { &g_srv, { CH("X") }, END_KEEP },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_NONE,
		  "not a preamble reply",
		  NULL },
		{ "garbage: version 2",
		  { &g_srv, { CH("WEFT\2\0\0\0") }, END_KEEP },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_NONE,
		  "not a preamble reply",
		  NULL },
		{ "garbage: unknown status",
		  { &g_srv, { CH("WEFT\1\11\0\0") }, END_KEEP },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_NONE,
		  "not a preamble reply",
		  NULL },
		{ "garbage: reserved bytes set",
		  { &g_srv, { CH("WEFT\1\0\0\1") }, END_KEEP },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_NONE,
		  "not a preamble reply",
		  NULL },
		/* closed before the reply */
		{ "close_notify, no reply",
		  { &g_srv, { { NULL, 0 } }, END_NOTIFY },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_CLOSED,
		  "peer closed before its preamble reply",
		  NULL },
		{ "close_notify after half a reply",
		  { &g_srv, { CH("WEFT") }, END_NOTIFY },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_CLOSED,
		  "peer closed before its preamble reply",
		  NULL },
		{ "FIN without close_notify",
		  { &g_srv, { { NULL, 0 } }, END_FIN },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_CLOSED,
		  "TLS failed (closed): ",
		  NULL },
		{ "FIN before any TLS",
		  { &g_srv, { { NULL, 0 } }, END_NO_TLS },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_CLOSED,
		  "TLS failed (closed): ",
		  NULL },
		{ "reset before the reply",
		  { &g_srv, { { NULL, 0 } }, END_RESET },
		  -1,
		  ECONNRESET,
		  -1,
		  TLS_FAIL_IO,
		  "TLS failed (io): ",
		  NULL },
		/* TLS refusals: ours in the handshake, the peer's on the reply read (TLS 1.3) */
		{ "peer of an unknown CA",
		  { &g_evil, { { NULL, 0 } }, END_KEEP },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_UNKNOWN_CA,
		  "TLS failed (unknown_ca): ",
		  NULL },
		{ "the peer refuses our certificate",
		  { &g_picky, { { NULL, 0 } }, END_KEEP },
		  -1,
		  EPROTO,
		  -1,
		  TLS_FAIL_PEER_ALERT,
		  "TLS failed (peer_alert): ",
		  NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_outcome(&cases[i]);
}

/* --- nodelink_init's failures and corner cases ---------------------------------------- */

static void test_init(void **state)
{
	static struct nodelink l, before;
	uint8_t big[NODELINK_PREFIX_MAX + 1];
	char name[NODELINK_NAME_MAX + 40];
	int n;

	memset(big, 'p', sizeof(big));
	memset(&l, 0xa5, sizeof(l));
	before = l;
	/* refused, l untouched */
	assert_int_equal(nodelink_init(&l, big, sizeof(big), "x"), -EINVAL);
	assert_memory_equal(&l, &before, sizeof(l));
	assert_int_equal(nodelink_init(&l, NULL, 1, "x"), -EINVAL);
	assert_memory_equal(&l, &before, sizeof(l));
	/* the longest prefix; no prefix at all */
	assert_int_equal(nodelink_init(&l, big, NODELINK_PREFIX_MAX, "x"), 0);
	assert_int_equal(l.len, NODELINK_PREFIX_MAX);
	assert_int_equal(nodelink_init(&l, NULL, 0, "x"), 0);
	assert_int_equal(l.len, 0);
	assert_false(nodelink_started(&l));
	assert_int_equal(l.tls_fail, TLS_FAIL_NONE);
	assert_int_equal(l.reply_status, -1);
	/* encoded in place, and overlapping */
	n = g_pre_len;
	memcpy(l.prefix, g_pre, (size_t)n);
	assert_int_equal(nodelink_init(&l, l.prefix, (size_t)n, "x"), 0);
	assert_memory_equal(l.prefix, g_pre, (size_t)n);
	memcpy(l.prefix + 3, g_pre, (size_t)n);
	assert_int_equal(nodelink_init(&l, l.prefix + 3, (size_t)n, "x"), 0);
	assert_memory_equal(l.prefix, g_pre, (size_t)n);
	/* a long name is cut, not overrun */
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(nodelink_init(&l, NULL, 0, "%s", name), 0);
	assert_int_equal(strlen(l.name), NODELINK_NAME_MAX - 1);
	assert_int_equal(nodelink_init(&l, NULL, 0, "relay %p: attempt %u", (void *)&l, 3u), 0);
	assert_non_null(strstr(l.name, ": attempt 3"));
}

/* --- nodelink_expire: the caller's deadline in each step ------------------------------- */

static void test_expire(void **state)
{
	static const struct peer_script silent = { &g_srv, { { NULL, 0 } }, END_KEEP };
	static const struct peer_script ok = { &g_srv, { REPLY(ST_OK) }, END_KEEP };
	struct nodelink l;
	struct link_run r;
	char log[4096];

	/* before the first step: the TCP connect's timeout, nothing of the link's (no log) */
	assert_int_equal(nodelink_init(&l, g_pre, (size_t)g_pre_len, NAME), 0);
	cap_start();
	assert_int_equal(nodelink_expire(&l), -ETIMEDOUT);
	cap_stop(log, sizeof(log));
	assert_int_equal(count_lines(log, NAME), 0);
	assert_int_equal(l.tls_fail, TLS_FAIL_NONE);
	assert_int_equal(nodelink_step(&l, NULL), -ETIMEDOUT); /* over: tls is not touched */

	/* in the handshake: the client hello is out, the peer never answers */
	run_init(&r, &silent, g_pre, (size_t)g_pre_len);
	assert_int_equal(nodelink_step(&r.l, r.c), -EAGAIN);
	assert_true(nodelink_started(&r.l));
	cap_start();
	assert_int_equal(nodelink_expire(&r.l), -ETIMEDOUT);
	cap_stop(log, sizeof(log));
	assert_int_equal(r.l.tls_fail, TLS_FAIL_TIMEOUT);
	assert_int_equal(r.l.reply_status, -1);
	assert_int_equal(count_lines(log, NAME ": timed out in the TLS handshake"), 1);
	assert_int_equal(nodelink_step(&r.l, r.c), -ETIMEDOUT);
	run_fini(&r);

	/* waiting for the reply: the peer read the prefix and says nothing */
	run_init(&r, &silent, g_pre, (size_t)g_pre_len);
	run_drive(&r, true);
	assert_int_equal(r.rc, -EAGAIN);
	assert_int_equal(r.p.got_len, (size_t)g_pre_len);
	cap_start();
	assert_int_equal(nodelink_expire(&r.l), -ETIMEDOUT);
	cap_stop(log, sizeof(log));
	assert_int_equal(r.l.tls_fail, TLS_FAIL_NONE);
	assert_int_equal(count_lines(log, NAME ": timed out waiting for the preamble reply"), 1);
	run_fini(&r);

	/* after the outcome: the outcome stands */
	run_init(&r, &ok, g_pre, (size_t)g_pre_len);
	run_drive(&r, false);
	assert_int_equal(r.rc, 0);
	assert_int_equal(nodelink_expire(&r.l), 0);
	assert_int_equal(r.l.reply_status, PREAMBLE_ST_OK);
	assert_int_equal(nodelink_step(&r.l, r.c), 0);
	run_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_outcomes, cap_teardown),
		cmocka_unit_test(test_init),
		cmocka_unit_test_teardown(test_expire, cap_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
