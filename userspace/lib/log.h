/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One line per event on stderr: "2026-11-27T09:40:01.123Z weftd[pid] LEVEL msg".
 * The level check is an inline compare so debug calls on the data path cost a
 * branch when debug is off; never log per byte or per read.
 * It may call: libc only.
 */
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#include <stdarg.h>
#include <stddef.h>

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

#endif
