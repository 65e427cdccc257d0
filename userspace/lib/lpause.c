// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "lib/lpause.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"

static void lpause_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct lpause *p = t->data;
	int i;

	(void)revents;
	p->paused = false;
	p->retrying = true;
	for (i = 0; i < p->nios; i++)
		ev_io_start(loop, &p->ios[i]);
	if (p->hook)
		p->hook(p->hook_arg, true);
}

void lpause_init(struct lpause *p, struct ev_loop *loop, ev_io *ios, int nios, const char *what)
{
	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->ios = ios;
	p->nios = nios;
	snprintf(p->what, sizeof(p->what), "%s", what);
	ev_timer_init(&p->timer, lpause_on_timer, LPAUSE_FIRST_S, 0.);
	p->timer.data = p;
}

void lpause_set_ios(struct lpause *p, ev_io *ios, int nios)
{
	p->ios = ios;
	p->nios = nios;
}

void lpause_set_hook(struct lpause *p, void (*hook)(void *arg, bool run), void *arg)
{
	p->hook = hook;
	p->hook_arg = arg;
}

/* Errors accept(2) passes on from one pending connection (man 2 accept, "Error handling"). */
static bool lpause_conn_error(int err)
{
	switch (err) {
	case ECONNABORTED:
	case EPROTO:
	case EPERM: /* a firewall (or LSM) refused that connection */
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return true;
	default:
		return false;
	}
}

static const char *lpause_advice(int err)
{
	switch (err) {
	case EMFILE:
		return "weftd has as many files open as its RLIMIT_NOFILE allows: raise it (LimitNOFILE= in the "
		       "systemd unit, ulimit -n) or lower agent.max_connections";
	case ENFILE:
		return "the system-wide file table is full: raise fs.file-max or find what holds the files";
	case ENOBUFS:
	case ENOMEM:
		return "the kernel is short of memory for sockets: look at memory pressure and net.ipv4.tcp_mem";
	default:
		return "an unexpected accept error; please report it";
	}
}

enum lpause_verdict lpause_accept_error(struct lpause *p, int err)
{
	double now;
	int i;

	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
		return LPAUSE_EMPTY;
	if (lpause_conn_error(err))
		return LPAUSE_NEXT;
	now = ev_now(p->loop);
	/* the first accept after a pause failed again: the trouble lasts, back off */
	if (p->retrying) {
		p->delay *= 2;
		if (p->delay > LPAUSE_MAX_S)
			p->delay = LPAUSE_MAX_S;
	} else {
		p->delay = LPAUSE_FIRST_S;
	}
	p->retrying = false;
	p->err = err;
	p->last_err = now;
	p->total++;
	if (!p->episode) {
		p->episode = true;
		p->first_err = now;
		p->pauses = 0;
		p->last_warn = now;
		log_warn("%s: accept: %s; pausing them (%.1f s, doubling up to %.0f s while it lasts; new "
			 "connections wait in the listen backlog): %s",
			 p->what, strerror(err), LPAUSE_FIRST_S, LPAUSE_MAX_S, lpause_advice(err));
	} else if (now - p->last_warn >= LPAUSE_REMIND_S) {
		p->last_warn = now;
		log_warn("%s: accept still failing (%s): paused %llu times in the last %.0f s: %s", p->what,
			 strerror(err), (unsigned long long)p->pauses, now - p->first_err, lpause_advice(err));
	}
	p->pauses++;
	for (i = 0; i < p->nios; i++)
		ev_io_stop(p->loop, &p->ios[i]);
	if (p->hook)
		p->hook(p->hook_arg, false);
	p->paused = true;
	/* a one-shot timer is re-armed with its delay each time, or it would fire at once */
	ev_timer_stop(p->loop, &p->timer);
	ev_timer_set(&p->timer, p->delay, 0.);
	ev_timer_start(p->loop, &p->timer);
	return LPAUSE_PAUSED;
}

void lpause_recovered(struct lpause *p)
{
	double now;

	p->retrying = false;
	if (!p->episode)
		return;
	now = ev_now(p->loop);
	if (now - p->last_err < LPAUSE_QUIET_S)
		return;
	p->episode = false;
	log_info("%s: accepting again (paused %llu times over %.1f s for %s)", p->what, (unsigned long long)p->pauses,
		 p->last_err - p->first_err + p->delay, strerror(p->err));
}

void lpause_stop(struct lpause *p)
{
	if (!p->loop)
		return;
	ev_timer_stop(p->loop, &p->timer);
	p->paused = false;
	p->retrying = false;
}
