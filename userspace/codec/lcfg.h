/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lcfg: guards for text that weft hands to libconfig 1.5 (the config file,
 * endpoint files). Two of libconfig's behaviours would be wrong for us:
 * - "@include" at the start of a line opens another file: a parser fed from
 *   a ConfigMap, a fuzzer or a file another tool writes must not open files.
 *   lcfg_include_line finds such lines so the caller can refuse them.
 * - an integer literal that does not fit in 32 bits is silently wrapped
 *   (4294967297 reads as 1). lcfg_fix_ints copies the text with an 'L' after
 *   each such literal, so libconfig reads it as 64-bit and range checks see
 *   the real value; lines and columns before each insertion are unchanged.
 * Pure: no I/O; O(length of the text).
 * It may call: libc only.
 */
#ifndef WEFT_LCFG_H
#define WEFT_LCFG_H

/*
 * The first line after line `after` (1-based; 0: from the start) whose
 * first non-blank characters are "@include" (libconfig's scanner takes it
 * there, even inside a comment or string: refusing too much is harmless,
 * opening another file is not), or 0 when there is none.
 */
unsigned lcfg_include_line(const char *text, unsigned after);

/*
 * *fixed: a copy of text with 'L' after every integer literal libconfig 1.5
 * would wrap (the caller frees it), or NULL when the text needs no change.
 * 0 or -ENOMEM.
 */
int lcfg_fix_ints(const char *text, char **fixed);

#endif
