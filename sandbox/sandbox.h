/* SPDX-License-Identifier: MIT */
/* sandbox.h: pincer-sandbox's one internal header, a section per file. */
#ifndef SANDBOX_H
#define SANDBOX_H

/* sandbox.c */
void	die(const char *, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* cgroup.c */
#include <sys/types.h>
struct limits {
	const char	*name;		/* the group's name: the sandbox's */
	long		 memory_mb;	/* 0: no limit */
	long		 pids;
	long		 cpu_weight;	/* 1..10000, as cgroup v2's */
	long		 cpu_quota;	/* % of one CPU, 1..100000 */
};
void	cgroup_enter(const struct limits *, pid_t);
void	cgroup_leave(const struct limits *);

/* rootfs.c */
void	rootfs_build(long tmp_mb, const char *rootfs, const char *const *tools,
	    int ntools);

/* seccomp.c */
void	seccomp_install(void);

#endif
