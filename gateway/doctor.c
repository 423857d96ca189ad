/* SPDX-License-Identifier: MIT */
/* doctor.c: `pincer doctor`, each check with OK/WARN/FAIL and the fix. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pincer.h"

enum verdict { OK, WARN, FAIL };

static void	report(enum verdict, const char *, const char *, ...)
		    PINCER_PRINTF(3, 4);
static void	check_state(const struct config *);
static void	check_store(const struct config *);
static void	check_namespaces(void);
static void	check_cgroups(void);
static void	check_seccomp(void);
static void	check_browser(const struct config *);
static void	check_objstore(const struct config *);
static void	check_sandbox(const struct config *);
static void	check_port(const struct config *);
static void	check_channels(const struct config *);
static int	in_child(int (*)(void));
static int	child_unshare(void);
static int	child_seccomp(void);

static int	 nfail;

int
doctor_run(const struct config_overrides *ov)
{
	struct config	*c;
	char		*err = NULL, *p;

	printf("pincer %s doctor\n", pincer_version);
	if ((c = config_load(ov, &err)) == NULL) {
		/* One report line: the errors joined, no trailing newline. */
		for (p = err; p != NULL && (p = strchr(p, '\n')) != NULL; p++)
			*p = p[1] ? ';' : '\0';
		report(FAIL, "config", "%s", err != NULL ? err : "invalid");
		printf("      fix: correct the keys named above; `pincer "
		    "config options` lists them all\n");
		printf("some checks failed\n");
		free(err);
		return 1;
	}
	report(OK, "config", "%s is valid", config_path(ov));
	check_port(c);
	check_state(c);
	check_store(c);
	check_namespaces();
	check_cgroups();
	check_seccomp();
	check_sandbox(c);
	check_browser(c);
	check_objstore(c);
	check_channels(c);
	config_free(c);
	printf("%s\n", nfail ? "some checks failed" : "all checks passed");
	return nfail ? 1 : 0;
}

static void
report(enum verdict v, const char *what, const char *fmt, ...)
{
	static const char *const names[] = { "OK", "WARN", "FAIL" };
	va_list	 ap;

	printf("%-5s %-12s ", names[v], what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (v == FAIL)
		nfail++;
}

/*
 * Each channel's secrets are set: a name in the config with no value
 * behind it is a channel that refuses every webhook. Only the names are
 * read (the values stay sealed).
 */
static void
check_channels(const struct config *c)
{
	static const char *const keys[] = { "bot_token", "signing_secret",
	    "app_token", "webhook_secret", "access_token", "app_secret",
	    "verify_token", "secret" };
	const json_t	*ch;
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	const char	*name, *sec;
	char		 path[4096];
	size_t		 i, k;
	int		 missing;

	if (json_array_size(c->channels) == 0)
		return;
	snprintf(path, sizeof(path), "%s/pincer.db", c->state_dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(db, "SELECT 1 FROM secrets WHERE "
	    "name = ?", -1, &st, NULL) != SQLITE_OK) {
		report(WARN, "channels", "cannot read the secrets' names yet");
		sqlite3_close(db);
		return;
	}
	json_array_foreach(c->channels, i, ch) {
		name = json_string_value(json_object_get(ch, "name"));
		for (missing = 0, k = 0; k < sizeof(keys) / sizeof(keys[0]);
		    k++) {
			if ((sec = json_string_value(json_object_get(ch,
			    keys[k]))) == NULL)
				continue;
			sqlite3_bind_text(st, 1, sec, -1, SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_ROW) {
				report(FAIL, "channels", "%s: %s names the "
				    "secret %s, which is not set", name,
				    keys[k], sec);
				printf("      fix: pincer secret set %s (the "
				    "value on stdin)\n", sec);
				missing++;
			}
			sqlite3_reset(st);
		}
		if (missing == 0)
			report(OK, "channels", "%s (%s): its secrets are set",
			    name, json_string_value(json_object_get(ch,
			    "kind")));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
check_state(const struct config *c)
{
	char	 path[4096];
	int	 fd;

	if (access(c->state_dir, F_OK) == -1) {
		report(WARN, "state", "%s does not exist yet; pincerd creates "
		    "it at first start", c->state_dir);
		return;
	}
	snprintf(path, sizeof(path), "%s/.doctor-XXXXXX", c->state_dir);
	if ((fd = mkstemp(path)) == -1) {
		report(FAIL, "state", "%s is not writable: %s", c->state_dir,
		    strerror(errno));
		printf("      fix: chown it to the user pincerd runs as, "
		    "or set --state\n");
		return;
	}
	close(fd);
	unlink(path);
	report(OK, "state", "%s is writable", c->state_dir);
}

static void
check_store(const struct config *c)
{
	sqlite3	*db = NULL;
	char	 path[4096];
	int	 v, latest = store_latest_version();

	snprintf(path, sizeof(path), "%s/pincer.db", c->state_dir);
	if (access(path, F_OK) == -1) {
		report(WARN, "database", "%s does not exist yet; pincerd "
		    "creates it at first start (schema version %d)", path,
		    latest);
		return;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK || (v = store_schema_version(db)) < 0) {
		report(FAIL, "database", "%s cannot be read: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return;
	}
	sqlite3_close(db);
	if (v == latest)
		report(OK, "database", "schema version %d (latest)", v);
	else if (v < latest)
		report(WARN, "database", "schema version %d; pincerd migrates "
		    "it to %d at next start", v, latest);
	else {
		report(FAIL, "database", "schema version %d is newer than this "
		    "pincer knows (%d)", v, latest);
		printf("      fix: run the newer pincer that wrote it\n");
	}
}

static void
check_namespaces(void)
{
	int	 rc = in_child(child_unshare);

	if (rc == 0) {
		report(OK, "namespaces", "user, mount, pid, net, uts and ipc "
		    "namespaces can be created");
		return;
	}
	report(FAIL, "namespaces", "cannot create user/mount/pid/net "
	    "namespaces (%s)", strerror(rc > 0 ? rc : EPERM));
	printf("      fix: sysctl -w kernel.unprivileged_userns_clone=1 "
	    "user.max_user_namespaces=15000; in a container, allow "
	    "unshare (e.g. --security-opt seccomp=unconfined)\n");
}

/*
 * cgroup v2 is one hierarchy with cgroup.controllers; v1 is a tmpfs of
 * per-controller hierarchies. Sandboxes need memory and pids on either.
 */
static void
check_cgroups(void)
{
	struct statfs	 sf;
	char		 ctrl[512] = "", need[64];
	FILE		*f;
	size_t		 n;

	if (statfs("/sys/fs/cgroup", &sf) == -1) {
		report(FAIL, "cgroups", "/sys/fs/cgroup is not mounted");
		return;
	}
	if (sf.f_type == CGROUP2_SUPER_MAGIC) {
		if ((f = fopen("/sys/fs/cgroup/cgroup.controllers", "re"))
		    != NULL) {
			n = fread(ctrl, 1, sizeof(ctrl) - 1, f);
			ctrl[n] = '\0';
			fclose(f);
		}
		ctrl[strcspn(ctrl, "\n")] = '\0';
		if (strstr(ctrl, "memory") && strstr(ctrl, "pids"))
			report(OK, "cgroups", "v2, controllers: %s", ctrl);
		else
			report(WARN, "cgroups", "v2, but memory or pids is "
			    "missing (controllers: %s); sandboxes run without "
			    "those limits", ctrl);
		return;
	}
	n = 0;
	snprintf(ctrl, sizeof(ctrl), "v1, controllers:");
	for (const char *const *c = (const char *const[]){ "memory", "pids",
	    "cpu", NULL }; *c != NULL; c++) {
		snprintf(need, sizeof(need), "/sys/fs/cgroup/%s", *c);
		if (access(need, F_OK) == 0) {
			strncat(ctrl, " ", sizeof(ctrl) - strlen(ctrl) - 1);
			strncat(ctrl, *c, sizeof(ctrl) - strlen(ctrl) - 1);
			n++;
		}
	}
	report(n >= 2 ? OK : WARN, "cgroups", "%s", ctrl);
}

static void
check_seccomp(void)
{
	int	 rc = in_child(child_seccomp);

	if (rc == 0)
		report(OK, "seccomp", "filters can be loaded");
	else {
		report(FAIL, "seccomp", "cannot load a seccomp filter (%s)",
		    strerror(rc > 0 ? rc : EPERM));
		printf("      fix: use a kernel built with "
		    "CONFIG_SECCOMP_FILTER\n");
	}
}

/*
 * The whole sandbox, once: what it needs (namespaces, overlay, pivot_root,
 * seccomp, pincer-init as PID 1) is known to work only when a sandbox has
 * really started. The same programs pincerd would use, from the config.
 */
static void
check_sandbox(const struct config *c)
{
	char	 sbx[PATH_MAX], init[PATH_MAX], dir[] =
		    "/tmp/pincer-doctor-XXXXXX", cmd[3 * PATH_MAX];
	char	 out[512] = "";
	ssize_t	 n;
	FILE	*p;

	launch_exe_path(c->sbx_launcher, "pincer-sandbox", sbx, sizeof(sbx));
	launch_exe_path(c->sbx_init, "pincer-init", init, sizeof(init));
	if (access(sbx, X_OK) == -1 || access(init, R_OK) == -1) {
		report(FAIL, "sandbox", "%s is missing: sandboxes cannot "
		    "start", access(sbx, X_OK) == -1 ? sbx : init);
		printf("      fix: install pincer-sandbox and pincer-init "
		    "next to pincer, or set sandbox.launcher and "
		    "sandbox.init\n");
		return;
	}
	if (mkdtemp(dir) == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "'%s' --dir '%s/s' --init '%s' -- "
	    "--no-forward -- /bin/sh -c 'grep ^Seccomp: /proc/self/status' "
	    "2>&1", sbx, dir, init);
	fflush(stdout);
	if ((p = popen(cmd, "r")) != NULL) {
		n = (ssize_t)fread(out, 1, sizeof(out) - 1, p);
		out[n > 0 ? n : 0] = '\0';
		pclose(p);
	}
	/* A temporary folder left behind is no failure of the check. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	n = system(cmd);
	out[strcspn(out, "\n")] = '\0';
	if (strstr(out, "Seccomp:\t2") != NULL)
		report(OK, "sandbox", "a sandbox starts: user, mount, pid, "
		    "net, uts, ipc namespaces, no capabilities, seccomp, "
		    "pincer-init as PID 1; its root is %s", geteuid() == 0 ?
		    "a host uid range of its own (sandbox.uid_base), or this "
		    "uid where that range is not mapped (rootless container)" :
		    "this user's uid (unprivileged user namespace)");
	else {
		report(FAIL, "sandbox", "pincer-sandbox cannot start a "
		    "sandbox: %s", out[0] ? out : "no output");
		printf("      fix: see the namespaces and seccomp lines "
		    "above\n");
	}
}

/*
 * Where /data, snapshots and backups go. The keys of an s3 store are
 * sealed in the database; `pincer objstore check` proves them with a
 * round trip, so doctor only says so.
 */
static void
check_objstore(const struct config *c)
{
	char		 path[4096];
	struct stat	 st;
	size_t		 n = strlen(c->state_dir);

	if (c->os_backend == 2) {
		report(WARN, "objstore", "off: each sandbox's /data lives on "
		    "this disk only");
		printf("      fix: set objstore.backend local (another disk) "
		    "or s3\n");
		return;
	}
	if (c->os_backend == 1) {
		report(OK, "objstore", "s3: bucket %s at %s (%s style); "
		    "`pincer objstore check` proves the keys with a round "
		    "trip", c->os_bucket, c->os_endpoint, c->os_url_style ?
		    "virtual" : "path");
		return;
	}
	if (*c->os_path != '\0')
		snprintf(path, sizeof(path), "%s", c->os_path);
	else
		snprintf(path, sizeof(path), "%s/objstore", c->state_dir);
	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		report(FAIL, "objstore", "%s is not a folder", path);
		return;
	}
	if (*c->os_path == '\0' || (strncmp(c->os_path, c->state_dir, n) ==
	    0 && (c->os_path[n] == '/' || c->os_path[n] == '\0'))) {
		report(WARN, "objstore", "local, %s: inside the state folder, "
		    "so a dead disk loses the copy with the original", path);
		printf("      fix: objstore.path on another disk, or "
		    "objstore.backend s3\n");
		return;
	}
	report(OK, "objstore", "local, %s", path);
}

/* The backend browser.backend picks (browser.c), and what it needs. */
static void
check_browser(const struct config *c)
{
	switch (browser_backend(c)) {
	case BROWSER_OFF:
		if (c->browser_backend == BROWSER_OFF) {
			report(OK, "browser", "off (browser.backend)");
			return;
		}
		report(WARN, "browser", "off: no Chromium at %s and no "
		    "browser.remote_url; agents cannot browse",
		    c->browser_chromium);
		printf("      fix: apt-get install chromium, or set "
		    "browser.remote_url\n");
		return;
	case BROWSER_REMOTE:
		if (!*c->browser_remote_url) {
			report(FAIL, "browser", "browser.backend is remote "
			    "but browser.remote_url is empty");
			printf("      fix: set browser.remote_url\n");
		} else
			report(OK, "browser", "remote %s",
			    c->browser_remote_url);
		return;
	default:
		break;
	}
	if (access(c->browser_chromium, X_OK) == 0)
		report(OK, "browser", "local Chromium %s", c->browser_chromium);
	else {
		report(FAIL, "browser", "browser.backend is local but %s "
		    "cannot be run", c->browser_chromium);
		printf("      fix: apt-get install chromium, or set "
		    "browser.chromium\n");
	}
}

static void
check_port(const struct config *c)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd, one = 1;

	if (net_parse_listen(c->listen, &ss, &len) == -1)
		return;
	if (!net_is_loopback((struct sockaddr *)&ss)) {
		report(FAIL, "listen", "%s is not loopback, and no "
		    "authentication is configured: pincerd refuses it",
		    c->listen);
		printf("      fix: listen on 127.0.0.1 behind a reverse proxy "
		    "that authenticates\n");
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd != -1 && bind(fd, (struct sockaddr *)&ss, len) == 0)
		report(OK, "port", "%s is free", c->listen);
	else {
		report(WARN, "port", "%s is in use (%s): is pincerd already "
		    "running?", c->listen, strerror(errno));
	}
	if (fd != -1)
		close(fd);
}

/* Run a probe in a child so nothing it changes touches us. */
static int
in_child(int (*fn)(void))
{
	pid_t	 pid;
	int	 st;

	fflush(stdout);
	if ((pid = fork()) == -1)
		return errno;
	if (pid == 0)
		_exit(fn());
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static int
child_unshare(void)
{
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID |
	    CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC) == -1)
		return errno;
	return 0;
}

static int
child_seccomp(void)
{
	struct sock_filter	 allow[] = {
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog	 prog = { .len = 1, .filter = allow };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1)
		return errno;
	return 0;
}
