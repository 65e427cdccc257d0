// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "lib/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LVL_INFO;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
static int log_fd = STDERR_FILENO;

void log_set_level(enum log_level l)
{
	log_threshold = l;
}

void log_set_fd(int fd)
{
	log_fd = fd;
}

/* Formats the whole line first so concurrent writers never interleave mid-line. */
void log_emit(enum log_level l, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ weftd[%d] %-5s ", ts.tv_nsec / 1000000L, (int)getpid(),
		     level_names[l]);
	if (r > 0)
		n += (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
	line[n++] = '\n';
	(void)!write(log_fd, line, n);
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
