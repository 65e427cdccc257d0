// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/lib/file.c: what file_open_regular opens (a regular file, or a
 * link to one) and what it refuses at once, with its kind: a FIFO (whose
 * open would block until a writer came: an alarm turns a regression into a
 * failure, not a hang), a directory, a character device, a socket, a link
 * to a FIFO, a missing file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/file.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/weft-test-file.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	alarm(10); /* a blocking open would hang the test: fail it instead */
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	alarm(0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *in_dir(const char *name)
{
	static char p[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void test_regular(void **state)
{
	struct stat st;
	char buf[8] = "";
	int fd, w;

	w = open(in_dir("a.conf"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(w >= 0);
	assert_int_equal(write(w, "hello", 5), 5);
	close(w);
	assert_int_equal(symlink(in_dir("a.conf"), in_dir("link.conf")), 0);

	fd = file_open_regular(in_dir("a.conf"), &st);
	assert_true(fd >= 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 5);
	assert_int_equal(read(fd, buf, sizeof(buf)), 5); /* O_NONBLOCK changes nothing for a file */
	assert_memory_equal(buf, "hello", 5);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);

	/* a link to a file is fine (ConfigMaps and cert-manager secrets are links) */
	fd = file_open_regular(in_dir("link.conf"), &st);
	assert_true(fd >= 0);
	close(fd);
}

static void test_refused(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int s;

	assert_int_equal(mkfifo(in_dir("fifo"), 0600), 0);
	assert_int_equal(file_open_regular(in_dir("fifo"), &st), -EINVAL);
	assert_string_equal(file_kind(st.st_mode), "a FIFO");

	assert_int_equal(symlink(in_dir("fifo"), in_dir("fifo-link")), 0);
	assert_int_equal(file_open_regular(in_dir("fifo-link"), &st), -EINVAL);
	assert_string_equal(file_kind(st.st_mode), "a FIFO");

	assert_int_equal(file_open_regular(dir, &st), -EISDIR);
	assert_string_equal(file_kind(st.st_mode), "a directory");

	assert_int_equal(file_open_regular("/dev/null", &st), -EINVAL);
	assert_string_equal(file_kind(st.st_mode), "a character device");

	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", in_dir("sock"));
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(file_open_regular(in_dir("sock"), &st), -EINVAL);
	assert_string_equal(file_kind(st.st_mode), "a socket");
	close(s);

	assert_int_equal(file_open_regular(in_dir("missing"), &st), -ENOENT);
	assert_int_equal(file_open_regular("", &st), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_regular, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
