#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Prints the userspace modules (.c files) a program needs: the closure of its
# #include "dir/name.h" lines, where userspace/dir/name.c exists. The Makefile
# derives the link lists of weftctl and the fuzz targets from it, so adding a
# module to a parser never means editing a hand-kept list.
#   scripts/modules.sh tests/fuzz/fuzz_http1.c    -> userspace/codec/http1.c ...
set -eu
todo="$*"
seen=" "
out=""
while [ -n "$todo" ]; do
	set -- $todo
	f=$1
	shift
	todo="$*"
	case "$seen" in *" $f "*) continue ;; esac
	seen="$seen$f "
	case "$f" in userspace/*.c) out="$out $f" ;; esac
	for inc in $(sed -n 's/^#include "\([a-z_0-9]*\/[a-z_0-9-]*\)\.h".*/\1/p' "$f"); do
		[ -f "userspace/$inc.h" ] && todo="$todo userspace/$inc.h"
		[ -f "userspace/$inc.c" ] && todo="$todo userspace/$inc.c"
	done
done
printf '%s\n' $out | sort
