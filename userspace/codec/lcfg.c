// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lcfg: libconfig 1.5 text guards (lcfg.h). Moved out of config/config.c so endpoint files share them. */
#include "codec/lcfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Would libconfig 1.5 wrap this unsuffixed integer literal (it keeps only 32 bits)? */
static bool int_literal_wraps(const char *t, size_t len)
{
	unsigned long long v = 0;
	bool neg = false;
	size_t i = 0;

	if (len > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
		for (i = 2; i < len; i++) {
			if (!isxdigit((unsigned char)t[i]))
				return false;
			if (v <= 0x7fffffffull)
				v = v * 16 + (unsigned long long)(isdigit((unsigned char)t[i])
									  ? t[i] - '0'
									  : (tolower((unsigned char)t[i]) - 'a' + 10));
		}
		return v > 0x7fffffffull;
	}
	if (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-';
		i = 1;
	}
	if (i == len)
		return false;
	for (; i < len; i++) {
		if (!isdigit((unsigned char)t[i]))
			return false;
		if (v <= 0x80000000ull)
			v = v * 10 + (unsigned long long)(t[i] - '0');
	}
	return neg ? v > 0x80000000ull : v > 0x7fffffffull;
}

/*
 * Walks text as libconfig's scanner does (strings, three comment styles,
 * names, numbers) and copies it to out (if not NULL) with an 'L' after each
 * integer literal that libconfig 1.5 would wrap. Returns how many it marked.
 * Inserting 'L' keeps lines and columns of everything before it, and makes
 * libconfig read a 64-bit integer, which the range checks then reject with
 * the real value.
 */
static size_t prescan_ints(const char *t, char *out)
{
	enum { CODE, STR, LINE_COMMENT, BLOCK_COMMENT } st = CODE;
	size_t i = 0, o = 0, marked = 0;

#define EMIT(ch)                       \
	do {                           \
		if (out)               \
			out[o] = (ch); \
		o++;                   \
	} while (0)

	while (t[i]) {
		char ch = t[i];

		switch (st) {
		case STR:
			if (ch == '\\' && t[i + 1]) {
				EMIT(ch);
				i++;
				ch = t[i];
			} else if (ch == '"') {
				st = CODE;
			}
			break;
		case LINE_COMMENT:
			if (ch == '\n')
				st = CODE;
			break;
		case BLOCK_COMMENT:
			if (ch == '*' && t[i + 1] == '/') {
				EMIT(ch);
				i++;
				ch = t[i];
				st = CODE;
			}
			break;
		case CODE:
			if (ch == '"') {
				st = STR;
			} else if (ch == '#' || (ch == '/' && t[i + 1] == '/')) {
				st = LINE_COMMENT;
			} else if (ch == '/' && t[i + 1] == '*') {
				EMIT(ch);
				i++;
				ch = t[i];
				st = BLOCK_COMMENT;
			} else if (isalpha((unsigned char)ch) || ch == '*') {
				/* A name (or true/false): digits inside it are not numbers. */
				while (isalnum((unsigned char)t[i]) || t[i] == '-' || t[i] == '_' || t[i] == '*') {
					EMIT(t[i]);
					i++;
				}
				continue;
			} else if (isdigit((unsigned char)ch) || (ch == '.' && isdigit((unsigned char)t[i + 1])) ||
				   ((ch == '-' || ch == '+') &&
				    (isdigit((unsigned char)t[i + 1]) || t[i + 1] == '.'))) {
				size_t start = i;
				bool hex;

				i++;
				hex = ch == '0' && (t[i] == 'x' || t[i] == 'X');
				while (isalnum((unsigned char)t[i]) || t[i] == '.' || t[i] == '_' ||
				       (!hex && (t[i] == '-' || t[i] == '+') && (t[i - 1] == 'e' || t[i - 1] == 'E')))
					i++;
				if (out)
					memcpy(out + o, t + start, i - start);
				o += i - start;
				if (int_literal_wraps(t + start, i - start)) {
					EMIT('L');
					marked++;
				}
				continue;
			}
			break;
		}
		EMIT(ch);
		i++;
	}
	EMIT('\0');
#undef EMIT
	return marked;
}

unsigned lcfg_include_line(const char *text, unsigned after)
{
	const char *p = text;
	unsigned line = 1;

	for (;;) {
		const char *q = p;

		while (*q == ' ' || *q == '\t')
			q++;
		if (line > after && !strncmp(q, "@include", 8))
			return line;
		p = strchr(p, '\n');
		if (!p)
			return 0;
		p++;
		line++;
	}
}

int lcfg_fix_ints(const char *text, char **fixed)
{
	size_t n = prescan_ints(text, NULL);

	*fixed = NULL;
	if (!n)
		return 0;
	*fixed = malloc(strlen(text) + n + 1);
	if (!*fixed)
		return -ENOMEM;
	prescan_ints(text, *fixed);
	return 0;
}
