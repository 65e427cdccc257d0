/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * netns: network namespaces by file descriptor, and sockets made in them.
 *
 * A socket belongs to the namespace its creating thread was in when it
 * called socket(), for its whole life. So weftd serves a pod (which has its
 * own namespace) by entering the pod's namespace on one thread, making the
 * socket, and coming back: the socket stays in the pod, the thread is home
 * again, and an ordinary event loop in the host namespace drives it.
 *
 * setns() moves only the calling thread. A thread that could not come back
 * would make every later socket in the wrong namespace, silently: that is
 * treated as impossible (the home namespace fd is held open for the process
 * lifetime, and we are privileged) and aborts the process.
 *
 * Placement hook: the pod manager (listen/pods) installs a function that
 * says in which namespace a local endpoint address lives; every data path
 * makes its upstream sockets with netns_upstream_socket(), so a connection to
 * a pod on this node starts inside that pod (a local connection there: the
 * agent's SO_MARK survives it, which strict_inbound relies on).
 * It may call: libc only.
 */
#ifndef WEFT_NETNS_H
#define WEFT_NETNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Opens the calling process's own network namespace, once; returns it (>= 0) or -errno. */
int netns_home(void);
/* The namespace inode of a process (stat of /proc/PID/ns/net); 0 or -errno. */
int netns_ino_of_pid(pid_t pid, uint64_t *ino);
/* Opens /proc/PID/ns/net (O_CLOEXEC); the fd or -errno. */
int netns_open_pid(pid_t pid);
/* The namespace of a socket (ioctl SIOCGSKNS): a new fd or -errno. */
int netns_of_socket(int sockfd);
/* The inode of the namespace behind a namespace fd; 0 or -errno. */
int netns_ino_of_fd(int nsfd, uint64_t *ino);

/* The calling thread enters nsfd's namespace; 0 or -errno (then it did not move). */
int netns_enter(int nsfd);
/* The calling thread goes back to netns_home(); aborts if it cannot (see above). */
void netns_leave(void);

/* socket(domain, type, proto) made in nsfd's namespace, from the calling thread; fd or -errno. */
int netns_socket(int nsfd, int domain, int type, int proto);

/*
 * The placement hook: fn returns a new socket(dst family, type, proto) made
 * in the namespace where dst is a local address, or -ENOENT when dst is not
 * one it knows (then the socket is made here). Set before the workers start;
 * NULL removes it. fn runs on any worker thread.
 */
typedef int (*netns_place_fn)(void *arg, const struct sockaddr *dst, int type, int proto);
void netns_set_placer(netns_place_fn fn, void *arg);

/*
 * A non-blocking, close-on-exec TCP socket for connecting to dst: made in the
 * namespace the hook names, else here; SO_MARK set when mark != 0 (the
 * agent's own connections stay out of the BPF redirect). fd or -errno.
 */
int netns_upstream_socket(const struct sockaddr *dst, uint32_t mark);

/*
 * The reserve descriptor, one per thread that makes upstream sockets. With
 * one descriptor left, accept() works and the upstream socket() then fails:
 * the connection taken from the backlog would be reset, and the next one,
 * and so on (issue 18's EMFILE case, one step later). So each such thread
 * holds one spare descriptor: when socket() fails with EMFILE or ENFILE,
 * netns_upstream_socket() gives the spare back and tries once more, and
 * the connection goes on. The listener then sees netns_reserve_spent() and
 * pauses (lib/lpause) until netns_reserve_restore() can take a spare again.
 * netns_reserve_init: 0 or -errno; netns_reserve_free at thread exit.
 */
int netns_reserve_init(void);
bool netns_reserve_spent(void);
int netns_reserve_restore(void);
void netns_reserve_free(void);

#endif
