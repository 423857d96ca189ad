/* SPDX-License-Identifier: MIT */
/*
 * snap_run.c: the work of one snapshot job, on a snapshot thread: take
 * (pin, pack, unpin, upload, expire), restore and fork (fetch and check
 * the archive once, then for each target: pin, unpack into a staging
 * folder, swap, unpin), list, get, delete. The answer goes into the job;
 * snapshot.c sends it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "pincer.h"
#include "snapshot.h"

static void	 run_create(const struct snap_ctx *, struct job *);
static void	 run_restore(const struct snap_ctx *, struct job *);
static int	 restore_one(const struct snap_ctx *, struct job *,
		    struct target *, int);
static void	 run_list(const struct snap_ctx *, struct job *);
static void	 run_get_delete(const struct snap_ctx *, struct job *);
static void	 undo_made(struct job *);
static void	 restart(void *);
static int	 temp_file(const char *);
static void	 ids_of(long long, struct snap_ids *);
static long long wall_ms(void);

void
snap_run(const struct snap_ctx *cx, struct job *j)
{
	switch (j->kind) {
	case J_CREATE:
	case J_AUTO:
		run_create(cx, j);
		break;
	case J_LIST:
		run_list(cx, j);
		break;
	case J_GET:
	case J_DELETE:
		run_get_delete(cx, j);
		break;
	case J_RESTORE:
	case J_FORK:
		run_restore(cx, j);
		break;
	}
}

/* Pin (stopping it if running), pack, unpin, upload, expire. */
static void
run_create(const struct snap_ctx *cx, struct job *j)
{
	const struct config	*c = config_current();
	struct snap_ids		 ids;
	struct snap_stats	 st;
	long long		 slot, t0 = wall_ms();
	bool			 was_running;
	char			 err[OS_ERR], *name;
	int			 dfd = -1, fd = -1, rc, gone;
	enum sbx_err		 e;
	json_t			*m;
	struct tm		 tm;
	time_t			 now = (time_t)(t0 / 1000);
	char			 when[40];

	e = sbx_pin(j->sandbox, j->kind == J_CREATE, j->kind == J_AUTO ?
	    &j->cancel : NULL, &slot, &was_running);
	if (e != SBX_OK) {
		/* Automatic: woken (or destroyed) before it began. */
		if (j->kind == J_AUTO)
			j->cancel = true;
		snap_run_fail(j, sbx_http_status(e), e == SBX_NOT_FOUND ?
		    "not_found" : "sandbox_busy", "%s", sbx_strerror(e));
		return;
	}
	ids_of(slot, &ids);
	if ((dfd = openat(cx->rootfd, j->sandbox, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    (fd = temp_file(cx->state)) == -1) {
		rc = errno;
		sbx_unpin(j->sandbox);
		snap_run_fail(j, rc == ENOENT ? 409 : 500, "snapshot_failed",
		    "%s", rc == ENOENT ? "the sandbox has never run: it has "
		    "nothing to snapshot" : strerror(rc));
		goto out;
	}
	rc = snap_pack(dfd, &ids, fd, (int)c->snap_level, &j->cancel, &st,
	    err, sizeof(err));
	sbx_unpin(j->sandbox);
	/* Started again on a loop thread: a launcher dies with the thread
	 * that forked it. (Without loops the job runs here; it frees.) */
	if (was_running && !j->cancel &&
	    (name = strdup(j->sandbox)) != NULL)
		upcall_post(restart, name, 0);
	if (rc == -1) {
		snap_run_fail(j, 500, "snapshot_failed", "the sandbox could "
		    "not be packed: %s", err);
		goto out;
	}
	snap_store_new_id(j->sandbox, t0, j->id, sizeof(j->id));
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03lldZ",
	    t0 % 1000);
	m = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I, "
	    "s:I, s:[sss], s:{s:i, s:I}, s:s}", "format", SNAP_FORMAT, "id",
	    j->id, "sandbox", j->sandbox, "created", when,
	    "created_ms", (json_int_t)t0, "reason", j->kind == J_AUTO ?
	    "sleep" : "api", "by", j->actor, "files", (json_int_t)st.files,
	    "bytes", (json_int_t)st.bytes, "skipped", (json_int_t)st.skipped,
	    "pack_ms", (json_int_t)(wall_ms() - t0), "parts", snap_parts[0],
	    snap_parts[1], snap_parts[2], "ids", "base", 0, "count",
	    (json_int_t)ids.count, "pincer_version", pincer_version);
	if (m == NULL || (rc = snap_store_put(cx->os, j->id, fd, m, err)) !=
	    OS_OK) {
		json_decref(m);
		snap_run_fail(j, 502, "objstore_failed", "the snapshot could "
		    "not be stored: %s", m == NULL ? "out of memory" : err);
		goto out;
	}
	gone = snap_store_expire(cx->os, j->sandbox, c->snap_keep,
	    c->snap_max_age_days, j->id, err);
	if (gone == -1)
		log_warn("snapshot retention failed", "sandbox=%s %s",
		    j->sandbox, err);
	json_object_set_new(m, "expired", json_integer(gone > 0 ? gone : 0));
	log_info("snapshot taken", "id=%s sandbox=%s files=%lld bytes=%lld "
	    "size=%lld ms=%lld", j->id, j->sandbox, st.files, st.bytes,
	    json_integer_value(json_object_get(m, "size")), wall_ms() - t0);
	if (j->kind == J_AUTO)
		audit_add("pincerd", NULL, "snapshot.create", j->id,
		    "on sleep");
	j->status = 201;
	j->body = m;
out:
	if (dfd != -1)
		close(dfd);
	if (fd != -1)
		close(fd);
}

/* The archive fetched and checked once, then made into each target. */
static void
run_restore(const struct snap_ctx *cx, struct job *j)
{
	json_t		*m;
	const char	*fmt;
	char		 err[OS_ERR];
	int		 fd = -1, rc;
	size_t		 i;

	if ((m = snap_store_manifest(cx->os, j->id, &rc, err)) == NULL) {
		snap_run_fail(j, rc == OS_NOTFOUND ? 404 : 502,
		    rc == OS_NOTFOUND ? "not_found" : "objstore_failed", "%s",
		    rc == OS_NOTFOUND ? "no such snapshot" : err);
		return;
	}
	if ((fmt = json_string_value(json_object_get(m, "format"))) == NULL ||
	    strcmp(fmt, SNAP_FORMAT) != 0) {
		snap_run_fail(j, 422, "snapshot_damaged", "%s: not a snapshot "
		    "this pincer knows (format %s)", j->id, SNAP_FORMAT);
		goto out;
	}
	if ((fd = temp_file(cx->state)) == -1) {
		snap_run_fail(j, 500, "snapshot_failed", "%s", strerror(errno));
		goto out;
	}
	if ((rc = snap_store_fetch(cx->os, m, fd, err)) != SNAP_OK) {
		snap_run_fail(j, rc == SNAP_DAMAGED ? 422 : rc == SNAP_STORE ?
		    502 : 500, rc == SNAP_DAMAGED ? "snapshot_damaged" :
		    "objstore_failed", "%s; nothing was restored", err);
		goto out;
	}
	for (i = 0; i < j->ntargets; i++)
		if (restore_one(cx, j, &j->targets[i], fd) == -1) {
			undo_made(j);
			goto out;
		}
	j->status = j->kind == J_FORK || j->create ? 201 : 200;
	j->body = json_pack("{s:s, s:[], s:I}", "snapshot", j->id,
	    "sandboxes", "files", json_integer_value(json_object_get(m,
	    "files")));
out:
	if (fd != -1)
		close(fd);
	json_decref(m);
}

/*
 * Into a staging folder beside the sandboxes, then swapped in: until the
 * swap the target is untouched, whatever the archive holds.
 */
static int
restore_one(const struct snap_ctx *cx, struct job *j, struct target *t,
    int fd)
{
	struct snap_ids		 ids;
	struct snap_stats	 st;
	char			 stage[PATH_MAX], err[OS_ERR], *base;
	long long		 slot;
	bool			 was_running, made;
	enum sbx_err		 e;
	int			 sfd, rc = SNAP_FAILED;

	if (j->create) {
		if ((e = sbx_create(t->name, j->actor, &made)) != SBX_OK ||
		    !made)
			return snap_run_fail(j, e != SBX_OK ?
			    sbx_http_status(e) : 409, "exists", "%s: %s",
			    t->name, e != SBX_OK ?
			    sbx_strerror(e) : sbx_strerror(SBX_EXISTS));
		t->made = t->start = true;
	}
	if ((e = sbx_pin(t->name, true, NULL, &slot, &was_running)) != SBX_OK)
		return snap_run_fail(j, sbx_http_status(e), e == SBX_NOT_FOUND ?
		    "not_found" : "sandbox_busy", "%s: %s%s", t->name,
		    sbx_strerror(e), e == SBX_NOT_FOUND ? " (send \"create\": "
		    "true to make it)" : "");
	t->start |= was_running;
	ids_of(slot, &ids);
	/* The staging folder: mkdtemp replaces the six X's. */
	if ((size_t)snprintf(stage, sizeof(stage), "%s/sandboxes/.restore-"
	    "%s-XXXXXX", cx->state, t->name) >= sizeof(stage) ||
	    mkdtemp(stage) == NULL) {
		snap_run_fail(j, 500, "restore_failed", "%s: %s", stage,
		    strerror(errno));
		goto out;
	}
	base = strrchr(stage, '/') + 1;
	if ((sfd = openat(cx->rootfd, base, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 || lseek(fd, 0, SEEK_SET) == -1)
		snprintf(err, sizeof(err), "%s", strerror(errno));
	else if ((rc = snap_unpack(fd, sfd, &ids, &j->cancel, &st, err,
	    sizeof(err))) == SNAP_OK && snap_swap(cx->rootfd, t->name, base,
	    &ids, err, sizeof(err)) == -1)
		rc = SNAP_FAILED;
	if (sfd != -1)
		close(sfd);
	if (launch_rm_tree(cx->rootfd, base) == -1 && errno != ENOENT)
		log_warn("a restore's staging folder stays", "%s: %s", stage,
		    strerror(errno));
	if (rc != SNAP_OK)
		snap_run_fail(j, rc == SNAP_DAMAGED ? 422 : 500,
		    rc == SNAP_DAMAGED ? "snapshot_damaged" : "restore_failed",
		    "%s: nothing was "
		    "restored: %s", t->name, err);
	else
		log_info("snapshot restored", "id=%s sandbox=%s files=%lld",
		    j->id, t->name, st.files);
out:
	sbx_unpin(t->name);
	return rc == SNAP_OK ? 0 : -1;
}

static void
run_list(const struct snap_ctx *cx, struct job *j)
{
	char	 err[OS_ERR];
	json_t	*a;

	if ((a = snap_store_list(cx->os, j->sandbox[0] != '\0' ? j->sandbox :
	    NULL, err)) == NULL) {
		snap_run_fail(j, 502, "objstore_failed", "%s", err);
		return;
	}
	j->status = 200;
	j->body = json_pack("{s:o}", "snapshots", a);
}

static void
run_get_delete(const struct snap_ctx *cx, struct job *j)
{
	char	 err[OS_ERR];
	json_t	*m;
	int	 rc;

	if ((m = snap_store_manifest(cx->os, j->id, &rc, err)) == NULL) {
		snap_run_fail(j, rc == OS_NOTFOUND ? 404 : 502,
		    rc == OS_NOTFOUND ? "not_found" : "objstore_failed", "%s",
		    rc == OS_NOTFOUND ? "no such snapshot" : err);
		return;
	}
	if (j->kind == J_DELETE) {
		json_decref(m);
		if (snap_store_delete(cx->os, j->id, err) != OS_OK) {
			snap_run_fail(j, 502, "objstore_failed", "%s", err);
			return;
		}
		m = json_pack("{s:s, s:b}", "id", j->id, "deleted", 1);
	}
	j->status = 200;
	j->body = m;
}

/* All or none: sandboxes this job made go again. */
static void
undo_made(struct job *j)
{
	size_t	 i;

	for (i = 0; i < j->ntargets; i++) {
		if (j->targets[i].made && sbx_destroy(j->targets[i].name) !=
		    SBX_OK)
			log_warn("a sandbox of a failed restore stays",
			    "name=%s", j->targets[i].name);
		j->targets[i].made = j->targets[i].start = false;
	}
}

static void
restart(void *arg)
{
	struct sbx_ref	 ref;
	char		*name = arg;
	enum sbx_err	 e;

	if ((e = sbx_acquire(name, &ref)) == SBX_OK)
		sbx_release(&ref);
	else
		log_warn("a sandbox did not start again after its snapshot",
		    "name=%s %s", name, sbx_strerror(e));
	free(name);
}

/* Staging folders of restores cut short by the end of a pincerd. */
void
snap_run_sweep(const struct snap_ctx *cx)
{
	struct dirent	*e;
	DIR		*d;
	int		 fd;

	if ((fd = openat(cx->rootfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (!strncmp(e->d_name, ".restore-", 9)) {
			if (launch_rm_tree(cx->rootfd, e->d_name) == -1)
				log_warn("a restore's staging folder stays",
				    "%s: %s", e->d_name, strerror(errno));
			else
				log_info("a restore's staging folder removed",
				    "%s", e->d_name);
		}
	closedir(d);
}

/* Nameless in the state folder: nothing is left if pincerd dies. */
static int
temp_file(const char *state)
{
	char	 path[PATH_MAX];
	int	 fd;

	if ((fd = open(state, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600)) != -1)
		return fd;
	/* mkostemp's template: it replaces the six X's. */
	if ((size_t)snprintf(path, sizeof(path), "%s/.snapshot-XXXXXX",
	    state) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) != -1)
		unlink(path);
	return fd;
}

/*
 * The host ids of a sandbox's inner 0, as pincer-sandbox maps them: as
 * root, 65536 from sandbox.uid_base + slot * 65536 when that range is
 * there to map (not in a container that maps only a few); otherwise
 * pincerd's own ids alone.
 */
static void
ids_of(long long slot, struct snap_ids *ids)
{
	long long	 base = config_current()->sbx_uid_base + slot * 65536;
	unsigned long	 in, out, n;
	bool		 mapped = false;
	FILE		*f;

	if (geteuid() == 0 && (f = fopen("/proc/self/uid_map", "re")) !=
	    NULL) {
		while (!mapped && fscanf(f, "%lu %lu %lu", &in, &out, &n) == 3)
			mapped = (unsigned long)base >= in &&
			    (unsigned long)base + 65536 <= in + n;
		fclose(f);
	}
	if (mapped) {
		ids->uid = ids->gid = base;
		ids->count = 65536;
	} else {
		ids->uid = geteuid();
		ids->gid = getegid();
		ids->count = 1;
	}
}

static long long
wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
snap_run_fail(struct job *j, int status, const char *code, const char *f, ...)
{
	va_list	 ap;

	j->status = status;
	snprintf(j->code, sizeof(j->code), "%s", code);
	va_start(ap, f);
	vsnprintf(j->msg, sizeof(j->msg), f, ap);
	va_end(ap);
	return -1;
}
