/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One line per event on stderr: "2026-11-27T09:40:01.123Z weftd[pid] LEVEL msg".
 * The level check is an inline compare so debug calls on the data path cost a
 * branch when debug is off; never log per byte or per read.
 *
 * Rate-limited lines (log_warn_rl and friends) are for what one connection or
 * one accept can cause: a flood of refused connections must not become a
 * flood of log lines (issue 18: 5,300 WARN lines in 20 s). Each call site
 * gets its own static struct log_rl from the macro, so one noisy message does
 * not silence another. Per site, at most log_rl_limit lines a second go out
 * (agent.log_rate_limit, 0: no limit); the rest are counted
 * (log_suppressed_total). The next line that goes out from that site ends
 * with "(N similar messages suppressed in the last S s)", and log_rl_flush()
 * (the main loop, once a second) reports counts no later line would carry.
 * Thread-safe without a lock: a site's one-second window and its line count
 * share one 64-bit atomic (compare-and-swap), suppressed lines are an atomic
 * add; a site joins the flush list (a lock-free stack that never shrinks:
 * sites are static) the first time it suppresses a line. Cost under the
 * limit: one coarse clock read (vDSO) and one CAS, then the usual formatting.
 * It may call: libc only.
 */
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_threshold;

void log_set_level(enum log_level l);
/* Where lines go (default stderr); for tests. */
void log_set_fd(int fd);

/* Formats a user-facing error message into err (err NULL or errlen 0: nothing). */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void log_emit(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_AT(lvl, ...)                              \
	do {                                          \
		if ((lvl) <= log_threshold)           \
			log_emit((lvl), __VA_ARGS__); \
	} while (0)
#define log_error(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

/* ---- rate-limited lines --------------------------------------------------- */

#define LOG_RL_DEFAULT 10 /* lines per second per call site (agent.log_rate_limit) */

/* One call site's state; zero-initialised (static) apart from level and fmt. */
struct log_rl {
	_Atomic uint64_t win;        /* (second + 1) << 32 | lines that went out in that second */
	_Atomic uint64_t suppressed; /* lines counted, not written, since the last report */
	_Atomic uint64_t last_ms;    /* when this site last wrote a line (or a report) */
	_Atomic bool listed;         /* on the flush list */
	struct log_rl *next;         /* flush list */
	enum log_level level;
	const char *fmt; /* the call's format string: names the site in flush reports */
};

/* Lines per second per site; 0: no limit. Set by the main thread, read by every thread. */
void log_rl_set_limit(unsigned per_s);
unsigned log_rl_limit(void);
/* Lines suppressed since start, all sites (weft_log_suppressed_total). */
uint64_t log_suppressed_total(void);
/* CLOCK_MONOTONIC_COARSE in ms: the limiter's clock. */
uint64_t log_now_ms(void);
/* Replaces the limiter's clock (NULL: back to log_now_ms); for tests. */
void log_rl_set_clock(uint64_t (*now_ms)(void));

/*
 * The decision alone (no I/O): true when a line from rl may go out at
 * now_ms; then *suppressed and *span_ms say how many lines were held back
 * since the site's last line, over how long (0 and 0 when none). False: the
 * line was counted as suppressed.
 */
bool log_rl_admit(struct log_rl *rl, uint64_t now_ms, uint64_t *suppressed, uint64_t *span_ms);
/* Writes the line if log_rl_admit lets it through (the macros call this). */
void log_emit_rl(struct log_rl *rl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Writes "N similar messages suppressed in the last S s: "<fmt>"" for each
 * site holding a count that has written nothing for a second. Main thread,
 * about once a second; returns how many report lines it wrote.
 */
unsigned log_rl_flush(uint64_t now_ms);

#define LOG_RL_FMT_(fmt, ...) fmt
#define LOG_RL_AT(lvl, ...)                                                                                 \
	do {                                                                                                \
		static struct log_rl log_rl_site_ = { .level = (lvl), .fmt = LOG_RL_FMT_(__VA_ARGS__, 0) }; \
		if ((lvl) <= log_threshold)                                                                 \
			log_emit_rl(&log_rl_site_, __VA_ARGS__);                                            \
	} while (0)
#define log_error_rl(...) LOG_RL_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn_rl(...) LOG_RL_AT(LOG_LVL_WARN, __VA_ARGS__)
#define log_info_rl(...) LOG_RL_AT(LOG_LVL_INFO, __VA_ARGS__)

#endif
