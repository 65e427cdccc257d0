/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lpause: what a listener does when accept() fails for want of a resource
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM). A listening watcher is level-triggered:
 * returning and waiting for the next event calls it again at once, forever
 * (issue 18: both threads at 99% CPU, hundreds of MB of log). Instead the
 * listener's watchers stop and a one-shot timer, set again each time,
 * restarts them after LPAUSE_FIRST_S; while the first accept after each
 * restart fails again, the pause doubles up to LPAUSE_MAX_S, so a starved
 * listener costs one wake-up a second. The first accept that works resets it.
 * Meanwhile new connections wait in the kernel's listen backlog (bounded by
 * listen()'s backlog; beyond it the kernel drops SYNs and clients retry), so
 * pausing loses nothing a client would not retry: the cost is latency.
 *
 * Logging: one WARN when the trouble starts (what failed, what to do), a
 * reminder every LPAUSE_REMIND_S while it lasts, one INFO once accepts have
 * worked for LPAUSE_QUIET_S. Errors that accept(2) passes on from one
 * connection (ECONNABORTED, EPROTO, the network errors the man page lists;
 * EPERM from a firewall hook) are not a reason to pause: that connection is
 * gone and the next may be fine. Any other error pauses too (a bug would
 * otherwise spin).
 *
 * A struct lpause belongs to the loop of its watchers (one thread).
 * It may call: lib/log, libev.
 */
#ifndef WEFT_LPAUSE_H
#define WEFT_LPAUSE_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#define LPAUSE_FIRST_S 0.1  /* first pause */
#define LPAUSE_MAX_S 1.0    /* longest pause (the worst added latency once descriptors free up) */
#define LPAUSE_REMIND_S 30. /* WARN again while it lasts */
#define LPAUSE_QUIET_S 5.   /* accepts working this long after the last error: logged as over */

enum lpause_verdict {
	LPAUSE_EMPTY,  /* EAGAIN, EINTR: the backlog is empty; wait for the next event */
	LPAUSE_NEXT,   /* that one connection failed: accept the next */
	LPAUSE_PAUSED, /* the listener is paused: return from the callback */
};

struct lpause {
	struct ev_loop *loop;
	ev_io *ios; /* the listener's watchers (stopped and restarted together) */
	int nios;
	ev_timer timer;
	void (*hook)(void *arg, bool run); /* more watchers of the same listener set (NULL: none) */
	void *hook_arg;
	char what[64];    /* "worker 1: outbound listeners", for the log */
	double delay;     /* length of the current (or last) pause */
	double first_err; /* when the trouble started (ev_now) */
	double last_err;  /* the latest error */
	double last_warn; /* the latest WARN line */
	uint64_t pauses;  /* in this episode */
	uint64_t total;   /* pauses since start */
	int err;          /* the latest errno */
	bool paused;      /* watchers stopped, timer armed */
	bool retrying;    /* restarted after a pause; no accept has worked since */
	bool episode;     /* trouble logged and not yet logged as over */
};

/*
 * ios[0..nios) are the listener's watchers, initialised (not necessarily
 * started); what names them in the log (copied).
 */
void lpause_init(struct lpause *p, struct ev_loop *loop, ev_io *ios, int nios, const char *what);
/* Points the pauser at the listener's watchers again (their number changed). */
void lpause_set_ios(struct lpause *p, ev_io *ios, int nios);
/*
 * Watchers not in ios that pause with them (e.g. a changing set of pods'
 * listeners): hook(arg, false) when they must stop, (arg, true) when they may
 * run again. The caller also asks lpause_paused() before starting new ones.
 */
void lpause_set_hook(struct lpause *p, void (*hook)(void *arg, bool run), void *arg);
static inline bool lpause_paused(const struct lpause *p)
{
	return p->paused;
}
/* accept() failed with err: what the caller does next (see enum lpause_verdict). */
enum lpause_verdict lpause_accept_error(struct lpause *p, int err);
void lpause_recovered(struct lpause *p);
/* An accept worked: ends a back-off (cheap when nothing is going on). */
static inline void lpause_accepted(struct lpause *p)
{
	if (__builtin_expect(p->retrying || p->episode, 0))
		lpause_recovered(p);
}
/* The listener goes away (or stops accepting): no restart will happen. */
void lpause_stop(struct lpause *p);

#endif
