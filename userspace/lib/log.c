// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "lib/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LVL_INFO;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
static int log_fd = STDERR_FILENO;

static atomic_uint rl_limit = LOG_RL_DEFAULT;
static _Atomic uint64_t rl_suppressed_total;
static _Atomic(struct log_rl *) rl_head; /* sites that suppressed a line (never removed) */
static uint64_t (*rl_clock)(void) = log_now_ms;

void log_set_level(enum log_level l)
{
	log_threshold = l;
}

void log_set_fd(int fd)
{
	log_fd = fd;
}

/*
 * Formats the whole line first so concurrent writers never interleave
 * mid-line. A non-zero suppressed count adds the rate limiter's tail, kept
 * even when the message itself had to be cut.
 */
static void log_vemit(enum log_level l, uint64_t suppressed, uint64_t span_ms, const char *fmt, va_list ap)
{
	char line[1024], tail[96] = "";
	struct timespec ts;
	struct tm tm;
	size_t n, room;
	int r, tl = 0;

	if (suppressed) {
		tl = snprintf(tail, sizeof(tail), " (%" PRIu64 " similar message%s suppressed in the last %.1f s)",
			      suppressed, suppressed == 1 ? "" : "s", (double)span_ms / 1000.0);
		if (tl < 0 || (size_t)tl >= sizeof(tail))
			tl = 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ weftd[%d] %-5s ", ts.tv_nsec / 1000000L, (int)getpid(),
		     level_names[l]);
	if (r > 0)
		n += (size_t)r;
	/* room for the message: the tail and the newline stay */
	room = sizeof(line) - n - (size_t)tl - 1;
	r = vsnprintf(line + n, room, fmt, ap);
	if (r > 0)
		n += (size_t)r < room ? (size_t)r : room - 1;
	memcpy(line + n, tail, (size_t)tl);
	n += (size_t)tl;
	line[n++] = '\n';
	(void)!write(log_fd, line, n);
}

void log_emit(enum log_level l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(l, 0, 0, fmt, ap);
	va_end(ap);
}

void err_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- rate-limited lines --------------------------------------------------- */

uint64_t log_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void log_rl_set_clock(uint64_t (*now_ms)(void))
{
	rl_clock = now_ms ? now_ms : log_now_ms;
}

void log_rl_set_limit(unsigned per_s)
{
	atomic_store_explicit(&rl_limit, per_s, memory_order_relaxed);
}

unsigned log_rl_limit(void)
{
	return atomic_load_explicit(&rl_limit, memory_order_relaxed);
}

uint64_t log_suppressed_total(void)
{
	return atomic_load_explicit(&rl_suppressed_total, memory_order_relaxed);
}

/* Pushes rl on the flush list once (lock-free stack; rl->next is set before rl is published). */
static void rl_list(struct log_rl *rl)
{
	struct log_rl *head;

	if (atomic_exchange(&rl->listed, true))
		return;
	head = atomic_load(&rl_head);
	do {
		rl->next = head;
	} while (!atomic_compare_exchange_weak(&rl_head, &head, rl));
}

bool log_rl_admit(struct log_rl *rl, uint64_t now_ms, uint64_t *suppressed, uint64_t *span_ms)
{
	unsigned limit = log_rl_limit();
	uint64_t sec = (now_ms / 1000 + 1) & 0xffffffffu, old, nw, n;

	*suppressed = 0;
	*span_ms = 0;
	if (limit) {
		old = atomic_load_explicit(&rl->win, memory_order_relaxed);
		do {
			if (old >> 32 != sec)
				nw = sec << 32 | 1; /* a new second: this is its first line */
			else if ((old & 0xffffffffu) < limit)
				nw = old + 1;
			else
				goto suppress;
		} while (!atomic_compare_exchange_weak_explicit(&rl->win, &old, nw, memory_order_relaxed,
								memory_order_relaxed));
	}
	n = atomic_exchange(&rl->suppressed, 0);
	if (n) {
		*suppressed = n;
		*span_ms = now_ms - atomic_load_explicit(&rl->last_ms, memory_order_relaxed);
	}
	atomic_store_explicit(&rl->last_ms, now_ms, memory_order_relaxed);
	return true;
suppress:
	atomic_fetch_add(&rl->suppressed, 1);
	atomic_fetch_add_explicit(&rl_suppressed_total, 1, memory_order_relaxed);
	rl_list(rl);
	return false;
}

void log_emit_rl(struct log_rl *rl, const char *fmt, ...)
{
	uint64_t n, span;
	va_list ap;

	if (!log_rl_admit(rl, rl_clock(), &n, &span))
		return;
	va_start(ap, fmt);
	log_vemit(rl->level, n, span, fmt, ap);
	va_end(ap);
}

unsigned log_rl_flush(uint64_t now_ms)
{
	struct log_rl *rl;
	unsigned lines = 0;
	uint64_t n, last;

	for (rl = atomic_load(&rl_head); rl; rl = rl->next) {
		last = atomic_load_explicit(&rl->last_ms, memory_order_relaxed);
		if (!atomic_load_explicit(&rl->suppressed, memory_order_relaxed) || now_ms - last < 1000)
			continue;
		n = atomic_exchange(&rl->suppressed, 0);
		if (!n)
			continue; /* a line from that site took the count meanwhile */
		atomic_store_explicit(&rl->last_ms, now_ms, memory_order_relaxed);
		if (rl->level <= log_threshold)
			log_emit(rl->level, "%" PRIu64 " similar message%s suppressed in the last %.1f s: \"%s\"", n,
				 n == 1 ? "" : "s", (double)(now_ms - last) / 1000.0, rl->fmt);
		lines++;
	}
	return lines;
}
