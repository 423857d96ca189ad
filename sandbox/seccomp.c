/* SPDX-License-Identifier: MIT */
/*
 * seccomp.c: the system calls a sandbox may not make. The namespaces and
 * the empty capability sets already stop most of these; the filter is the
 * second wall, and it also closes what namespaces do not: TIOCSTI and
 * TIOCLINUX on a terminal, kernel interfaces with a history of holes
 * (bpf, userfaultfd, perf_event_open, keyctl), and new namespaces, whose
 * fresh capabilities would reopen everything above.
 */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <seccomp.h>

#include "sandbox.h"

static const char *const denied[] = {
	"mount", "umount2", "pivot_root", "chroot", "move_mount",
	"open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
	"mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev",
	"kexec_load", "kexec_file_load", "init_module", "finit_module",
	"delete_module", "bpf", "perf_event_open", "keyctl", "add_key",
	"request_key", "userfaultfd", "open_by_handle_at",
	"name_to_handle_at", "setns", "reboot", "swapon", "swapoff", "acct",
	"quotactl", "syslog", "settimeofday", "clock_settime", "adjtimex",
	"clock_adjtime", "iopl", "ioperm", "lookup_dcookie", "vhangup",
	"nfsservctl", "uselib", "personality", NULL
};

#define NS_FLAGS	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | \
			    CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | \
			    CLONE_NEWCGROUP | CLONE_NEWTIME)

void
seccomp_install(void)
{
	scmp_filter_ctx	 ctx;
	size_t		 i;
	int		 nr, rc = 0;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		die("seccomp_init failed");
	for (i = 0; denied[i] != NULL; i++) {
		/* A name this libseccomp or kernel does not know is no hole. */
		if ((nr = seccomp_syscall_resolve_name(denied[i])) ==
		    __NR_SCMP_ERROR)
			continue;
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
	/* No new namespaces, by unshare or by clone's flags. */
	for (i = 0; i < 8 * sizeof(int); i++) {
		unsigned long	 bit = 1UL << i;

		if ((bit & NS_FLAGS) == 0)
			continue;
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
		    SCMP_SYS(unshare), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, bit,
		    bit));
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
		    SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit));
	}
	/* clone3's flags are in memory a filter cannot read: make callers
	 * fall back to clone, which it can. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
	    0);
	/* Typing into a terminal (CVE-2017-5226) and the console's ioctls. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, TIOCSTI));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, TIOCLINUX));
	/* Sockets: Unix, and IP (loopback only: the net namespace has no
	 * other interface). No netlink, packet, vsock, bluetooth … */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT),
	    SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_GT, AF_INET6));
	for (i = 0; i < AF_INET6; i++)
		if (i != AF_UNIX && i != AF_INET)
			rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT),
			    SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, i));
	if (rc != 0)
		die("cannot build the seccomp filter");
	if (seccomp_load(ctx) != 0)
		die("cannot load the seccomp filter");
	seccomp_release(ctx);
}
