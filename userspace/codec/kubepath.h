/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * kubepath: which Kubernetes pod a cgroup belongs to, read from the cgroup's
 * path alone. The kubelet names every pod's cgroup after the pod's UID and
 * its QoS class, and the container runtime names each container's cgroup
 * after the container ID, so a path (from /proc/PID/cgroup, or a cgroup id
 * resolved to its path) gives the pod, the QoS class and the container with
 * no API server and no runtime socket. Pure: no I/O, no allocation, O(length
 * of the path).
 *
 * Layouts recognised (<uid> is the pod UID, <u_i_d> the same with '_' for
 * '-', <id> a container ID):
 *
 *   systemd cgroup driver (kubelet --cgroup-driver=systemd; names are slice
 *   units, and systemd reads '-' as the hierarchy, so the UID's dashes are
 *   written as '_'):
 *     kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<u_i_d>.slice/cri-containerd-<id>.scope
 *     kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<u_i_d>.slice/crio-<id>.scope
 *     kubepods.slice/kubepods-pod<u_i_d>.slice/docker-<id>.scope          (guaranteed: no QoS slice)
 *     kubepods.slice/kubepods-pod<u_i_d>.slice/crio-conmon-<id>.scope     (CRI-O's monitor: runtime "crio")
 *   e.g. kubepods.slice/kubepods-burstable.slice/
 *        kubepods-burstable-pod0f3c9a52_7d1e_4b8a_9c2f_5e6d7a8b9c0d.slice/
 *        cri-containerd-4c1f...e9.scope          -> uid 0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0d
 *
 *   cgroupfs cgroup driver (directories as written; the UID keeps its dashes):
 *     kubepods/burstable/pod<uid>/<id>          (containerd, Docker)
 *     kubepods/besteffort/pod<uid>/crio-<id>    (CRI-O; also crio-conmon-<id>)
 *     kubepods/pod<uid>/<id>                    (guaranteed)
 *   e.g. kubepods/pod0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0d/4c1f...e9
 *
 * Any of them may stand below other components: an absolute path
 * ("/sys/fs/cgroup/kubepods.slice/..."), /proc/PID/cgroup's form
 * ("/kubepods/..."), or a test's own subtree ("weft-e2e-123-x/kubepods/...").
 * The kubepods component ("kubepods.slice" or "kubepods", which also says
 * the driver) is found by name, and when several components carry that name
 * the LAST one is read: a node nested in a pod (kind in a pod, the e2e
 * tests) has its own kubepods below the outer pod's, and the inner pod is
 * the workload.
 *
 * Trust: the answer is as good as the path. The kubelet and the runtime
 * create every component down to the container's; below that, a container
 * allowed to make cgroups (cgroup namespace with a writable cgroupfs,
 * privileged) can create anything, including "kubepods/pod<another uid>".
 * Because the last kubepods component wins, such a container can make its
 * own sub-cgroups read as another pod. Callers that give identity from this
 * must only do so where containers cannot create cgroups, or check that the
 * pod is one the node runs.
 *
 * Strictness (what each answer means):
 * - Components are separated by '/'; empty ones ("//", a leading or
 *   trailing '/') are skipped. A "." or ".." component in a path with a
 *   kubepods component is -EINVAL: the kernel never writes one, and a
 *   prefix of such a path need not name the pod's cgroup.
 * - UID: exactly 36 characters, 8-4-4-4-12 lowercase hex, '-' between the
 *   groups (cgroupfs) or '_' (systemd); anything else is -EINVAL. Static
 *   pods (kubelet manifests) have a 32-hex-digit MD5 UID with no dashes:
 *   those are -EINVAL too, so control-plane pods of kubeadm clusters are not
 *   recognised yet.
 * - Below kubepods.slice, names starting "kubepods-" are the kubelet's
 *   (systemd requires a child slice to carry its parent's name as prefix):
 *   one that is neither a QoS slice nor a pod slice of the QoS it sits in
 *   is -EINVAL, as is a cgroupfs "pod..." directory with a bad UID. Other
 *   names there are -ENOENT (not pods).
 * - Container part, the component right below the pod's: a name with a
 *   runtime prefix (systemd: cri-containerd-, crio-conmon-, crio-, docker-,
 *   with ".scope"; cgroupfs: crio-conmon-, crio-) or, for cgroupfs, a name
 *   made only of hex digits, must carry an ID of 1..64 lowercase hex digits
 *   (-EINVAL otherwise). Any other name there (another runtime's scope, a
 *   sandbox cgroup) still lies inside the pod: 0, with container "".
 * - Components below the container part are ignored.
 * - Above the pod ("kubepods.slice", ".../kubepods-burstable.slice",
 *   "kubepods/besteffort"): -ENOENT. No kubepods component: -ENOENT.
 * - A non-default --cgroup-root with the systemd driver renames every slice
 *   ("kubelet-kubepods-...slice"): not recognised (-ENOENT).
 *
 * It may call: libc only.
 */
#ifndef WEFT_KUBEPATH_H
#define WEFT_KUBEPATH_H

#include <stddef.h>

#define KUBE_UID_LEN 36          /* 8-4-4-4-12 */
#define KUBE_CONTAINER_ID_MAX 64 /* hex digits: a sha256 */

enum kube_qos {
	KUBE_QOS_NONE = 0, /* not a pod path */
	KUBE_QOS_GUARANTEED,
	KUBE_QOS_BURSTABLE,
	KUBE_QOS_BESTEFFORT,
};

enum kube_driver {
	KUBE_DRIVER_SYSTEMD = 1,  /* "kubepods.slice" */
	KUBE_DRIVER_CGROUPFS = 2, /* "kubepods" */
};

struct kube_pod {
	char uid[KUBE_UID_LEN + 1]; /* canonical, with dashes (systemd's '_' turned back into '-') */
	enum kube_qos qos;
	enum kube_driver driver;
	char runtime[16];                          /* "containerd", "crio", "docker"; "" when the name says none */
	char container[KUBE_CONTAINER_ID_MAX + 1]; /* lowercase hex ID, or "" above the container */
	size_t pod_end;                            /* path[0..pod_end) is the pod's own cgroup */
};

/*
 * Reads the pod from a cgroup path (NUL-terminated; absolute, relative to the
 * cgroup2 mount, or as /proc/PID/cgroup prints it after "0::"). Returns 0
 * and fills *out when the path is a pod's cgroup or lies inside one;
 * -ENOENT when it is not a pod's path (no kubepods component, above the pod
 * level, an unrelated name below kubepods); -EINVAL when it looks like a
 * pod's path and breaks the kubelet's naming (bad UID, a pod slice of the
 * wrong QoS, a runtime scope with a bad ID, a "." or ".." component). The
 * rules are in the comment above. path[0..out->pod_end) names the pod's own
 * cgroup in the form it was given (it ends with the pod's component, no
 * trailing '/'). *out is written only on success. O(strlen(path)).
 */
int kube_pod_from_cgroup(const char *path, struct kube_pod *out);

/* "guaranteed", "burstable", "besteffort"; "none" for KUBE_QOS_NONE, "unknown" out of range. */
const char *kube_qos_name(enum kube_qos q);

#endif
