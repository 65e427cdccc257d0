// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft-loadgen: the two HTTP/1.1 clients of the benchmark that no Debian
 * package provides (scripts/bench/run.sh builds it into build/bench/).
 *
 *   weft-loadgen rate --connect IP:PORT [--path /p] [--host H] --rate R
 *                     [--conns C] [--duration S] [--warmup S]
 *       Open-loop, fixed-rate latency measurement that does not hide
 *       coordinated omission (the approach of wrk2). Request k is *due* at
 *       t0 + k/R and belongs to connection k % C (keep-alive, no pipelining).
 *       Its latency is counted from when it was due, not from when it was
 *       sent: if the connection is still waiting for an earlier answer, the
 *       request waits in that connection's queue and the wait is part of its
 *       latency, exactly as a user arriving at that moment would see it.
 *       Requests due during the warm-up are sent but not recorded. Prints one
 *       JSON object: percentiles (microseconds) of the corrected latency, of
 *       the plain service time (send to last byte), and of the generator's
 *       own lateness (how late it woke up to send a due request).
 *       --spin 1 busy-polls (epoll_wait with a zero timeout) instead of
 *       sleeping until the next send: the generator's CPU never idles, so
 *       its own wake-up latency (large in a VM) stays out of the numbers,
 *       as sockperf does. Pin it to a CPU of its own when spinning.
 *
 *   weft-loadgen hold --connect IP:PORT [--path /p] --conns N [--parallel P]
 *       Opens N keep-alive connections (at most P connecting at once), makes
 *       one request on each, prints {"held": n, ...} once all are idle, then
 *       holds them open until its standard input closes (or SIGTERM/SIGINT),
 *       and prints a second JSON line with how many the far side closed.
 *
 * Only numeric IPv4 addresses are accepted: the benchmark only ever talks to
 * 127.0.0.0/8, and to 198.18.0.0/15 on the veth of the pod it makes itself
 * (its own network namespace, no route out).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF 16384
#define MAX_CONNS 200000

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "weft-loadgen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- options ------------------------------------------------------------- */

struct opts {
	const char *mode;
	struct sockaddr_in dst;
	char connect[64];
	const char *path;
	const char *host;
	double rate;
	int conns;
	double duration;
	double warmup;
	int parallel;
	double timeout;
	bool spin;
};

static void parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	long port;
	uint32_t ip;
	char *end;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		die("bad address '%s' (want a.b.c.d:port)", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		die("bad port in '%s'", s);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		die("bad IPv4 address '%s'", host);
	ip = ntohl(sa->sin_addr.s_addr);
	if (ip >> 24 != 127 && ip >> 17 != (198u << 8 | 18u) >> 1)
		die("%s is not in 127.0.0.0/8 or 198.18.0.0/15: the benchmark only talks to loopback and its own pod",
		    host);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->path = "/";
	o->rate = 1000;
	o->conns = 16;
	o->duration = 5;
	o->warmup = 1;
	o->parallel = 256;
	o->timeout = 30;
	if (argc < 2)
		die("usage: weft-loadgen rate|hold --connect IP:PORT [options] (see the source)");
	o->mode = argv[1];
	for (i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			die("%s needs a value", k);
		i++;
		if (!strcmp(k, "--connect")) {
			parse_addr(v, &o->dst);
			snprintf(o->connect, sizeof(o->connect), "%s", v);
		} else if (!strcmp(k, "--path"))
			o->path = v;
		else if (!strcmp(k, "--host"))
			o->host = v;
		else if (!strcmp(k, "--rate"))
			o->rate = atof(v);
		else if (!strcmp(k, "--conns"))
			o->conns = atoi(v);
		else if (!strcmp(k, "--duration"))
			o->duration = atof(v);
		else if (!strcmp(k, "--warmup"))
			o->warmup = atof(v);
		else if (!strcmp(k, "--parallel"))
			o->parallel = atoi(v);
		else if (!strcmp(k, "--timeout"))
			o->timeout = atof(v);
		else if (!strcmp(k, "--spin"))
			o->spin = atoi(v) != 0;
		else
			die("unknown option %s", k);
	}
	if (!o->connect[0])
		die("--connect is required");
	if (o->conns < 1 || o->conns > MAX_CONNS)
		die("--conns must be 1..%d", MAX_CONNS);
	if (!(o->rate > 0 && o->rate <= 1e6))
		die("--rate must be in (0, 1e6]");
	if (!(o->duration > 0) || o->warmup < 0)
		die("bad --duration/--warmup");
	if (o->parallel < 1)
		o->parallel = 1;
	if (!o->host)
		o->host = o->connect;
}

/* --- one HTTP/1.1 connection --------------------------------------------- */

struct conn {
	int fd;
	bool busy;        /* a request is out, its answer not complete */
	bool connecting;  /* hold mode: nonblocking connect in progress */
	bool held;        /* hold mode: answered, now idle */
	bool dead;
	int64_t due_ns;   /* intended send time of the request in flight */
	int64_t sent_ns;  /* when it was really sent */
	/* queue of due times of requests waiting for this connection */
	int64_t *q;
	uint32_t qhead, qlen, qcap;
	size_t rlen;
	char rbuf[RBUF];
};

static char req[1024];
static size_t req_len;

static void build_request(const struct opts *o)
{
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weft-loadgen\r\n\r\n", o->path,
			 o->host);

	if (n < 0 || (size_t)n >= sizeof(req))
		die("request too long");
	req_len = (size_t)n;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/*
 * Is rbuf[0..len) one complete response? Returns its length, 0 if more bytes
 * are needed, -1 if it is not a 200 response we can frame.
 */
static long response_complete(const char *b, size_t len)
{
	const char *end = memmem(b, len, "\r\n\r\n", 4), *p, *line;
	size_t head;
	long clen = -1;

	if (!end)
		return len >= RBUF ? -1 : 0;
	head = (size_t)(end - b) + 4;
	if (len < 12 || memcmp(b, "HTTP/1.", 7) || memcmp(b + 8, " 200", 4))
		return -1;
	for (line = b; line < end;) {
		const char *eol = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);

		if (!eol)
			break;
		if ((size_t)(eol - line) > 15 && !strncasecmp(line, "content-length:", 15)) {
			for (p = line + 15; *p == ' ' || *p == '\t'; p++)
				;
			clen = strtol(p, NULL, 10);
		}
		line = eol + 2;
	}
	if (clen < 0 || clen > RBUF)
		return -1; /* chunked or huge: not what the benchmark serves */
	if (len < head + (size_t)clen)
		return 0;
	return (long)(head + (size_t)clen);
}

static int send_request(struct conn *c)
{
	ssize_t n = send(c->fd, req, req_len, MSG_NOSIGNAL);

	/* A 60-byte request always fits an empty socket buffer. */
	return n == (ssize_t)req_len ? 0 : -1;
}

/* Reads what is there; returns 1 when a full answer arrived, 0 if not yet, -1 on error/EOF. */
static int read_response(struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
		long r;

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return -1;
		c->rlen += (size_t)n;
		r = response_complete(c->rbuf, c->rlen);
		if (r < 0)
			return -1;
		if (r > 0) {
			memmove(c->rbuf, c->rbuf + r, c->rlen - (size_t)r);
			c->rlen -= (size_t)r;
			return 1;
		}
	}
}

/* --- statistics ---------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, size_t n, double q)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)ceil(q / 100.0 * (double)n);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return (double)v[i - 1] / 1000.0; /* ns -> us */
}

static void print_dist(const char *name, int64_t *v, size_t n, bool last)
{
	double sum = 0;
	size_t i;

	qsort(v, n, sizeof(*v), cmp_i64);
	for (i = 0; i < n; i++)
		sum += (double)v[i];
	printf("\"%s\":{\"count\":%zu,\"mean\":%.2f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,"
	       "\"p99.9\":%.2f,\"max\":%.2f}%s",
	       name, n, n ? sum / (double)n / 1000.0 : 0.0, pct(v, n, 50), pct(v, n, 90),
	       pct(v, n, 99), pct(v, n, 99.9), n ? (double)v[n - 1] / 1000.0 : 0.0, last ? "" : ",");
}

/* --- rate mode ----------------------------------------------------------- */

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void q_push(struct conn *c, int64_t due)
{
	if (c->qlen == c->qcap) {
		uint32_t ncap = c->qcap ? c->qcap * 2 : 16, i;
		int64_t *nq = malloc(ncap * sizeof(*nq));

		if (!nq)
			die("out of memory");
		for (i = 0; i < c->qlen; i++)
			nq[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = nq;
		c->qcap = ncap;
		c->qhead = 0;
	}
	c->q[(c->qhead + c->qlen) % c->qcap] = due;
	c->qlen++;
}

static int64_t q_pop(struct conn *c)
{
	int64_t v = c->q[c->qhead];

	c->qhead = (c->qhead + 1) % c->qcap;
	c->qlen--;
	return v;
}

static int connect_blocking(const struct opts *o)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (const struct sockaddr *)&o->dst, sizeof(o->dst)) < 0)
		die("connect %s: %s", o->connect, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (set_nonblock(fd) < 0)
		die("fcntl: %s", strerror(errno));
	return fd;
}

static int run_rate(const struct opts *o)
{
	struct conn *cs = calloc((size_t)o->conns, sizeof(*cs));
	size_t cap = (size_t)(o->rate * o->duration * 1.1) + 1024, nlat = 0, nsvc = 0, nlag = 0;
	int64_t *lat = malloc(cap * sizeof(int64_t)), *svc = malloc(cap * sizeof(int64_t));
	int64_t *lag = malloc(cap * sizeof(int64_t));
	int64_t t0, t_rec, t_end, interval_ns = (int64_t)(1e9 / o->rate), deadline;
	uint64_t k = 0, sent = 0, done = 0, errors = 0, unfinished = 0;
	struct epoll_event evs[256];
	int ep, i;

	if (!cs || !lat || !svc || !lag)
		die("out of memory");
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (i = 0; i < o->conns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

		cs[i].fd = connect_blocking(o);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
	}
	t0 = now_ns() + 10 * 1000000; /* start 10 ms from now, schedule from there */
	t_rec = t0 + (int64_t)(o->warmup * 1e9);
	t_end = t_rec + (int64_t)(o->duration * 1e9);

	for (;;) {
		int64_t now = now_ns(), next_due = t0 + (int64_t)k * interval_ns, wait_ns;
		struct timespec ts;
		int n;

		if (stop_flag)
			break;
		/* Dispatch every request that is due. */
		while (next_due <= now && next_due < t_end) {
			struct conn *c = &cs[k % (uint64_t)o->conns];

			if (c->dead) {
				if (next_due >= t_rec)
					errors++;
			} else if (c->busy) {
				q_push(c, next_due);
			} else {
				c->busy = true;
				c->due_ns = next_due;
				c->sent_ns = now_ns();
				if (next_due >= t_rec && nlag < cap)
					lag[nlag++] = c->sent_ns - next_due;
				if (send_request(c) < 0) {
					c->dead = true;
					errors++;
				}
				sent++;
			}
			k++;
			next_due = t0 + (int64_t)k * interval_ns;
		}
		if (next_due >= t_end) {
			bool any = false;

			for (i = 0; i < o->conns; i++)
				if (!cs[i].dead && (cs[i].busy || cs[i].qlen))
					any = true;
			if (!any)
				break;
			deadline = t_end + (int64_t)(o->timeout * 1e9);
			if (now >= deadline)
				break;
			wait_ns = deadline - now;
		} else {
			wait_ns = next_due - now;
		}
		if (o->spin)
			wait_ns = 0; /* busy-poll: never let this CPU go idle */
		ts.tv_sec = wait_ns / 1000000000;
		ts.tv_nsec = wait_ns % 1000000000;
		n = epoll_pwait2(ep, evs, 256, &ts, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_pwait2: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			struct conn *c = &cs[evs[i].data.u32];
			int r;

			if (c->dead)
				continue;
			r = read_response(c);
			if (r < 0 || (r > 0 && !c->busy)) {
				c->dead = true;
				errors++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				continue;
			}
			if (r == 0)
				continue;
			now = now_ns();
			done++;
			if (c->due_ns >= t_rec && nlat < cap) {
				lat[nlat++] = now - c->due_ns;
				svc[nsvc++] = now - c->sent_ns;
			}
			c->busy = false;
			if (c->qlen) {
				c->busy = true;
				c->due_ns = q_pop(c);
				c->sent_ns = now;
				if (send_request(c) < 0) {
					c->dead = true;
					errors++;
				}
				sent++;
			}
		}
	}
	for (i = 0; i < o->conns; i++) {
		if (cs[i].busy && cs[i].due_ns >= t_rec)
			unfinished++;
		unfinished += cs[i].qlen;
		close(cs[i].fd);
	}
	{
		double span = (double)(t_end - t_rec) / 1e9;

		printf("{\"mode\":\"rate\",\"target\":\"%s\",\"spin\":%s,\"rate\":%.1f,\"conns\":%d,"
		       "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"sent\":%" PRIu64 ",\"completed\":%" PRIu64
		       ",\"recorded\":%zu,\"achieved_rate\":%.1f,\"errors\":%" PRIu64
		       ",\"unfinished\":%" PRIu64 ",",
		       o->connect, o->spin ? "true" : "false", o->rate, o->conns, o->duration, o->warmup, sent, done, nlat,
		       (double)nlat / span, errors, unfinished);
		print_dist("latency_us", lat, nlat, false);
		print_dist("service_us", svc, nsvc, false);
		print_dist("send_lag_us", lag, nlag, true);
		printf("}\n");
	}
	return errors || unfinished ? 1 : 0;
}

/* --- hold mode ----------------------------------------------------------- */

static int run_hold(const struct opts *o)
{
	struct conn *cs = calloc((size_t)o->conns, sizeof(*cs));
	struct epoll_event evs[512];
	int ep, next = 0, inprog = 0, held = 0, errors = 0, closed = 0, i;
	int64_t t0 = now_ns(), deadline = t0 + (int64_t)(o->timeout * 1e9);
	char first_err[128] = "";

	if (!cs)
		die("out of memory");
	ep = epoll_create1(EPOLL_CLOEXEC);
	while (held + errors < o->conns) {
		int n;

		while (next < o->conns && inprog < o->parallel) {
			struct conn *c = &cs[next];
			struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)next };
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

			next++;
			if (fd < 0) {
				if (!first_err[0])
					snprintf(first_err, sizeof(first_err), "socket: %s", strerror(errno));
				errors++;
				c->dead = true;
				continue;
			}
			c->fd = fd;
			if (connect(fd, (const struct sockaddr *)&o->dst, sizeof(o->dst)) < 0 &&
			    errno != EINPROGRESS) {
				if (!first_err[0])
					snprintf(first_err, sizeof(first_err), "connect: %s", strerror(errno));
				errors++;
				c->dead = true;
				close(fd);
				continue;
			}
			c->connecting = true;
			inprog++;
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		}
		if (now_ns() > deadline)
			break;
		n = epoll_wait(ep, evs, 512, 1000);
		for (i = 0; i < n; i++) {
			struct conn *c = &cs[evs[i].data.u32];
			int r;

			if (c->dead || c->held)
				continue;
			if (c->connecting) {
				int err = 0;
				socklen_t l = sizeof(err);
				struct epoll_event ev = { .events = EPOLLIN, .data.u32 = evs[i].data.u32 };

				if (!(evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
					continue;
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
				if (err || send_request(c) < 0) {
					if (!first_err[0])
						snprintf(first_err, sizeof(first_err), "connect/send: %s",
							 strerror(err ? err : errno));
					goto fail;
				}
				c->connecting = false;
				c->busy = true;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			r = read_response(c);
			if (r == 0)
				continue;
			if (r < 0) {
				if (!first_err[0])
					snprintf(first_err, sizeof(first_err), "response: %s",
						 errno ? strerror(errno) : "EOF or bad answer");
				goto fail;
			}
			c->busy = false;
			c->held = true;
			held++;
			inprog--;
			continue;
fail:
			c->dead = true;
			errors++;
			inprog--;
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
		}
	}
	printf("{\"mode\":\"hold\",\"target\":\"%s\",\"conns\":%d,\"held\":%d,\"errors\":%d,"
	       "\"first_error\":\"%s\",\"open_s\":%.3f}\n",
	       o->connect, o->conns, held, errors, first_err, (double)(now_ns() - t0) / 1e9);
	fflush(stdout);

	/* Hold until stdin closes or a signal; notice connections the far side closes. */
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };

		/* stdin that epoll cannot watch (a file, /dev/null): hold until a signal */
		if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) < 0)
			fprintf(stderr, "weft-loadgen: stdin is not a pipe: holding until SIGTERM\n");
	}
	while (!stop_flag) {
		int n = epoll_wait(ep, evs, 512, 1000);
		bool quit = false;

		for (i = 0; i < n; i++) {
			struct conn *c;
			char b[4096];

			if (evs[i].data.u32 == UINT32_MAX) {
				if (read(0, b, sizeof(b)) <= 0)
					quit = true;
				continue;
			}
			c = &cs[evs[i].data.u32];
			if (c->dead)
				continue;
			if (recv(c->fd, b, sizeof(b), 0) <= 0) {
				c->dead = true;
				closed++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			}
		}
		if (quit)
			break;
	}
	for (i = 0; i < o->conns; i++)
		if (cs[i].held || (!cs[i].dead && cs[i].fd > 0))
			close(cs[i].fd);
	printf("{\"mode\":\"hold-end\",\"closed_by_peer\":%d}\n", closed);
	return held == o->conns ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct sigaction sa = { .sa_handler = on_signal };
	struct rlimit rl;

	parse_opts(argc, argv, &o);
	build_request(&o);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Wake up on time: the default 50 us timer slack would make every send late. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o.conns + 64) {
		rl.rlim_cur = (rlim_t)o.conns + 64;
		if (rl.rlim_max < rl.rlim_cur)
			rl.rlim_max = rl.rlim_cur;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			die("cannot raise RLIMIT_NOFILE to %d: %s", o.conns + 64, strerror(errno));
	}
	if (!strcmp(o.mode, "rate"))
		return run_rate(&o);
	if (!strcmp(o.mode, "hold"))
		return run_hold(&o);
	die("unknown mode '%s' (rate|hold)", o.mode);
}
