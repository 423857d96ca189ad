/* SPDX-License-Identifier: MIT */
/*
 * cgroup.c: a sandbox's memory, pids and cpu limits. On cgroup v2 one
 * group under /sys/fs/cgroup/pincer/NAME holds all three; on a v1
 * hierarchy (as on this build machine) each controller has its own
 * pincer/NAME group. The launcher puts its child in the groups before the
 * child runs anything, and removes them when the sandbox is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "sandbox.h"

static bool	is_v2(void);
static void	group(const char *, const char *, char *, size_t);
static void	put(const char *, const char *, const char *, bool);

/* Create the groups, set the limits, move pid in. 0 in a limit: none. */
void
cgroup_enter(const struct limits *l, pid_t pid)
{
	char	 g[PATH_MAX], v[64];

	if (l->memory_mb == 0 && l->pids == 0 && l->cpu_weight == 0 &&
	    l->cpu_quota == 0)
		return;
	snprintf(v, sizeof(v), "%ld", (long)pid);
	if (is_v2()) {
		group("", l->name, g, sizeof(g));
		/* Enable the controllers for pincer's children. */
		put("/sys/fs/cgroup/pincer", "cgroup.subtree_control",
		    "+memory +pids +cpu", false);
		if (l->memory_mb > 0) {
			snprintf(v, sizeof(v), "%ld", l->memory_mb << 20);
			put(g, "memory.max", v, true);
			put(g, "memory.swap.max", "0", false);
		}
		if (l->pids > 0) {
			snprintf(v, sizeof(v), "%ld", l->pids);
			put(g, "pids.max", v, true);
		}
		if (l->cpu_weight > 0) {
			snprintf(v, sizeof(v), "%ld", l->cpu_weight);
			put(g, "cpu.weight", v, true);
		}
		/* A quota per period of 100 ms: 50% is 50 ms of CPU. */
		if (l->cpu_quota > 0) {
			snprintf(v, sizeof(v), "%ld 100000", l->cpu_quota * 1000);
			put(g, "cpu.max", v, true);
		}
		snprintf(v, sizeof(v), "%ld", (long)pid);
		put(g, "cgroup.procs", v, true);
		return;
	}
	if (l->memory_mb > 0) {
		group("memory/", l->name, g, sizeof(g));
		snprintf(v, sizeof(v), "%ld", l->memory_mb << 20);
		put(g, "memory.limit_in_bytes", v, true);
		/* With swap accounting, no swap beyond the limit either. */
		put(g, "memory.memsw.limit_in_bytes", v, false);
		snprintf(v, sizeof(v), "%ld", (long)pid);
		put(g, "cgroup.procs", v, true);
	}
	if (l->pids > 0) {
		group("pids/", l->name, g, sizeof(g));
		snprintf(v, sizeof(v), "%ld", l->pids);
		put(g, "pids.max", v, true);
		snprintf(v, sizeof(v), "%ld", (long)pid);
		put(g, "cgroup.procs", v, true);
	}
	if (l->cpu_weight > 0 || l->cpu_quota > 0) {
		group("cpu/", l->name, g, sizeof(g));
		/* v2 weight 1..10000 (100 default) as v1 shares (1024). */
		snprintf(v, sizeof(v), "%ld", (l->cpu_weight > 0 ?
		    l->cpu_weight : 100) * 1024 / 100);
		put(g, "cpu.shares", v, true);
		if (l->cpu_quota > 0) {
			put(g, "cpu.cfs_period_us", "100000", true);
			snprintf(v, sizeof(v), "%ld", l->cpu_quota * 1000);
			put(g, "cpu.cfs_quota_us", v, true);
		}
		snprintf(v, sizeof(v), "%ld", (long)pid);
		put(g, "cgroup.procs", v, true);
	}
}

/* After the sandbox: its groups are empty; remove them. */
void
cgroup_leave(const struct limits *l)
{
	static const char *const v1[] = { "memory/", "pids/", "cpu/", NULL };
	char	 g[PATH_MAX];
	size_t	 i;

	if (l->memory_mb == 0 && l->pids == 0 && l->cpu_weight == 0 &&
	    l->cpu_quota == 0)
		return;
	if (is_v2()) {
		snprintf(g, sizeof(g), "/sys/fs/cgroup/pincer/%s", l->name);
		rmdir(g);
		return;
	}
	for (i = 0; v1[i] != NULL; i++) {
		snprintf(g, sizeof(g), "/sys/fs/cgroup/%spincer/%s", v1[i],
		    l->name);
		rmdir(g);
	}
}

static bool
is_v2(void)
{
	struct statfs	 sf;

	return statfs("/sys/fs/cgroup", &sf) == 0 &&
	    sf.f_type == CGROUP2_SUPER_MAGIC;
}

static void
group(const char *ctrl, const char *name, char *out, size_t outsz)
{
	char	 parent[PATH_MAX];

	snprintf(parent, sizeof(parent), "/sys/fs/cgroup/%spincer", ctrl);
	if (mkdir(parent, 0755) == -1 && errno != EEXIST)
		die("cgroup %s: %s (limits need root and a writable "
		    "cgroup hierarchy)", parent, strerror(errno));
	if ((size_t)snprintf(out, outsz, "%s/%s", parent, name) >= outsz)
		die("cgroup name too long");
	if (mkdir(out, 0755) == -1 && errno != EEXIST)
		die("cgroup %s: %s", out, strerror(errno));
}

/* Write a value; a required one that fails stops the launcher. */
static void
put(const char *dir, const char *file, const char *val, bool required)
{
	char	 path[PATH_MAX];
	int	 fd;
	ssize_t	 n;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >=
	    sizeof(path))
		die("cgroup path too long");
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1) {
		if (required)
			die("%s: %s", path, strerror(errno));
		return;
	}
	n = write(fd, val, strlen(val));
	close(fd);
	if (n != (ssize_t)strlen(val) && required)
		die("%s = %s: %s", path, val, strerror(errno));
}
