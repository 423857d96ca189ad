/* SPDX-License-Identifier: MIT */
/*
 * sbx.c: the sandbox manager. Sandboxes have names; each is a folder
 * $state/sandboxes/<name>/ and a row in the store. A running sandbox is a
 * pincer-sandbox launcher, a child of pincerd, whose PID 1 is pincer-init.
 * pincerd binds both of the sandbox's sockets itself: control.sock, whose
 * listening fd it hands to pincer-init (so a request can be sent before
 * pincer-init has even started: it waits in the backlog), and
 * gateway.sock, which the front door accepts on, knowing the caller by
 * the socket. One thread watches the launchers (pidfds) and puts idle
 * sandboxes to sleep: their processes end, /workspace and /data stay.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pincer.h"
#include "egress.h"

enum sbx_state { S_SLEEPING, S_RUNNING, S_STOPPING };

struct sbx {
	char		 name[SBX_NAME_MAX + 1];
	long long	 slot;
	enum sbx_state	 state;
	pid_t		 pid;		/* the launcher */
	int		 pidfd;
	int		 out_fd;	/* launcher's stderr and status lines */
	int		 gw_fd;		/* listening gateway.sock: door's */
	int		 run_fd;	/* run/, when its path is too long */
	char		 control[512];	/* where to connect */
	char		 gw_path[512];	/* as bound: what getsockname says */
	char		 last_error[256];
	int		 holds;
	bool		 stop_wanted;	/* explicit stop: no restart */
	bool		 quiet_sleep;	/* no on_sleep hook this time */
	int		 pinned;	/* snapshot.c has its folder */
	bool		*pin_cancel;	/* a soft pin's: set to end it */
	uint64_t	 last_used;	/* monotonic ms */
	long long	 created_ms, started_ms, used_ms;	/* unix ms */
	long long	 starts;
	struct sbx	*next;
};

static void	*sbx_main(void *);
static struct sbx *find(const char *);
static enum sbx_err start(struct sbx *);
static enum sbx_err make_room(void);
static void	 signal_stop(struct sbx *);
static void	 reap(struct sbx *);
static void	 read_output(struct sbx *);
static void	 idle_check(void);
static void	 save_state(struct sbx *, const char *);
static long long wall_ms(void);
static void	 say(struct sbx *, const char *, ...) PINCER_PRINTF(2, 3);
static struct sbx *wait_settled(const char *, const struct timespec *);

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 changed = PTHREAD_COND_INITIALIZER;
static struct sbx	*list;			/* lock */
static int		 ep = -1;
static int		 wake_fd[2] = { -1, -1 };
static pthread_t	 thread;
static bool		 running_thread;
static bool		 quit;			/* lock */
static char		 root[PATH_MAX];	/* $state/sandboxes */
static int		 rootfd = -1;		/* the same, open */
static char		 cg_prefix[16];		/* per state folder */
static char		 refusal[512];		/* why none can start */
static void		(*on_sleep)(const char *);	/* snapshot.c's */

static const char *const errs[] = {
	[SBX_OK] = "ok",
	[SBX_NOT_FOUND] = "no such sandbox",
	[SBX_BAD_NAME] = "a sandbox name is 1 to 63 of a-z, 0-9, '-', '_' "
	    "and '.', starting with a letter or digit",
	[SBX_EXISTS] = "a sandbox of that name exists",
	[SBX_LIMIT] = "sandbox.max_running sandboxes are running and busy; "
	    "try again shortly",
	[SBX_FAILED] = "the sandbox could not be started (see the log)",
	[SBX_UNAVAILABLE] = "sandboxes cannot run on this host",
	[SBX_BUSY] = "the sandbox is stopping, or being snapshotted or "
	    "restored; try again shortly",
};

int
sbx_init(const struct config *c)
{
	sqlite3_stmt	*st;
	struct sbx	*s;
	const char	*why;
	unsigned	 h = 5381;
	const char	*p;
	struct epoll_event ev;

	snprintf(root, sizeof(root), "%s/sandboxes", c->state_dir);
	if (mkdir(root, 0700) == -1 && errno != EEXIST) {
		log_error("cannot create the sandboxes folder", "%s: %s", root,
		    strerror(errno));
		return -1;
	}
	if ((rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_error("cannot open the sandboxes folder", "%s: %s", root,
		    strerror(errno));
		return -1;
	}
	/*
	 * cgroups are host-wide: two pincerds (two state folders) may both
	 * have a sandbox "main". The group name carries a hash of ours.
	 */
	for (p = c->state_dir; *p; p++)
		h = h * 33 + (unsigned char)*p;
	snprintf(cg_prefix, sizeof(cg_prefix), "%08x", h);
	if ((why = launch_probe(c)) != NULL) {
		snprintf(refusal, sizeof(refusal), "%s", why);
		log_warn("sandboxes are off", "%s", refusal);
	}
	st = store_stmt("SELECT name, slot, created_at, started_at, "
	    "last_used_at, starts FROM sandboxes ORDER BY name");
	if (st == NULL)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			break;
		snprintf(s->name, sizeof(s->name), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		s->slot = sqlite3_column_int64(st, 1);
		s->created_ms = sqlite3_column_int64(st, 2);
		s->started_ms = sqlite3_column_int64(st, 3);
		s->used_ms = sqlite3_column_int64(st, 4);
		s->starts = sqlite3_column_int64(st, 5);
		s->pidfd = s->out_fd = s->gw_fd = s->run_fd = -1;
		s->next = list;
		list = s;
	}
	sqlite3_reset(st);
	/* Whatever ran under the last pincerd ended with it. */
	if ((st = store_stmt("UPDATE sandboxes SET state = 'sleeping' "
	    "WHERE state = 'running'")) != NULL) {
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    pipe2(wake_fd, O_CLOEXEC | O_NONBLOCK) == -1)
		return -1;
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd[0], &ev);
	if (pthread_create(&thread, NULL, sbx_main, NULL) != 0)
		return -1;
	running_thread = true;
	return 0;
}

/* Every running sandbox goes to sleep; pincerd is stopping. */
void
sbx_shutdown(void)
{
	struct sbx	*s, *t;
	struct timespec	 ts;
	char		 c = 'q';

	if (!running_thread)
		return;
	pthread_mutex_lock(&lock);
	for (s = list; s != NULL; s = s->next)
		if (s->state == S_RUNNING)
			signal_stop(s);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	while (sbx_running() > 0 &&
	    pthread_cond_timedwait(&changed, &lock, &ts) == 0)
		;
	for (s = list; s != NULL; s = s->next)
		if (s->pid > 0)
			kill(s->pid, SIGKILL);
	quit = true;
	pthread_mutex_unlock(&lock);
	if (write(wake_fd[1], &c, 1) != 1)
		log_warn("cannot wake the sandbox thread", NULL);
	pthread_join(thread, NULL);
	running_thread = false;
	/* HTTP threads may still release holds: they find nothing. */
	pthread_mutex_lock(&lock);
	t = list;
	list = NULL;
	pthread_mutex_unlock(&lock);
	while ((s = t) != NULL) {
		t = s->next;
		if (s->pid > 0) {
			waitpid(s->pid, NULL, 0);
			reap(s);
		}
		free(s);
	}
	close(ep);
	close(wake_fd[0]);
	close(wake_fd[1]);
	close(rootfd);
	ep = wake_fd[0] = wake_fd[1] = rootfd = -1;
}

bool
sbx_name_valid(const char *n)
{
	size_t	 i, len = strlen(n);

	if (len < 1 || len > SBX_NAME_MAX || !isalnum((unsigned char)n[0]))
		return false;
	for (i = 0; i < len; i++)
		if (!islower((unsigned char)n[i]) &&
		    !isdigit((unsigned char)n[i]) && n[i] != '-' &&
		    n[i] != '_' && n[i] != '.')
			return false;
	return strstr(n, "..") == NULL;
}

/* The {name} of /api/v1/sandboxes/{name}/…, if it is a valid one. */
bool
sbx_path_name(const char *path, char *out, size_t outsz)
{
	const char	*prefix = "/api/v1/sandboxes/";
	size_t		 n;

	out[0] = '\0';
	if (strncmp(path, prefix, strlen(prefix)) != 0)
		return false;
	path += strlen(prefix);
	if ((n = strcspn(path, "/")) == 0 || n >= outsz)
		return false;
	memcpy(out, path, n);
	out[n] = '\0';
	return sbx_name_valid(out);
}

const char *
sbx_strerror(enum sbx_err e)
{
	if (e == SBX_UNAVAILABLE && refusal[0] != '\0')
		return refusal;
	return errs[e];
}

int
sbx_http_status(enum sbx_err e)
{
	switch (e) {
	case SBX_OK:		return 200;
	case SBX_NOT_FOUND:	return 404;
	case SBX_BAD_NAME:	return 400;
	case SBX_EXISTS:	return 409;
	case SBX_LIMIT:		return 429;
	case SBX_BUSY:		return 409;
	case SBX_UNAVAILABLE:	return 503;
	default:		return 500;
	}
}

const char *
sbx_refusal(void)
{
	return refusal[0] != '\0' ? refusal : NULL;
}

/* A new sandbox: a row and a slot (its uid range); it starts on use. */
enum sbx_err
sbx_create(const char *name, const char *by, bool *created)
{
	sqlite3_stmt	*st;
	struct sbx	*s, *t;
	long long	 slot = 0;
	bool		 taken = true;

	*created = false;
	if (!sbx_name_valid(name))
		return SBX_BAD_NAME;
	pthread_mutex_lock(&lock);
	if (find(name) != NULL) {
		pthread_mutex_unlock(&lock);
		return SBX_OK;
	}
	/* The lowest free slot: ranges are reused after a destroy. */
	while (taken) {
		taken = false;
		for (t = list; t != NULL; t = t->next)
			if (t->slot == slot) {
				taken = true;
				slot++;
				break;
			}
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (st = store_stmt("INSERT INTO sandboxes (name, slot, created_by, "
	    "created_at) VALUES (?, ?, ?, ?)")) == NULL) {
		pthread_mutex_unlock(&lock);
		free(s);
		return SBX_FAILED;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->slot = slot;
	s->created_ms = wall_ms();
	s->pidfd = s->out_fd = s->gw_fd = s->run_fd = -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, slot);
	sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, s->created_ms);
	if (sqlite3_step(st) != SQLITE_DONE) {
		log_error("cannot record a sandbox", "%s",
		    sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
		pthread_mutex_unlock(&lock);
		free(s);
		return SBX_FAILED;
	}
	sqlite3_reset(st);
	s->next = list;
	list = s;
	*created = true;
	pthread_mutex_unlock(&lock);
	return SBX_OK;
}

/*
 * Get a running sandbox, starting or waking it. While held it does not
 * go to sleep for being idle. The launcher is forked by the calling
 * thread, and PR_SET_PDEATHSIG fires when that thread (not process)
 * ends: call it from a thread that lives as long as pincerd (the HTTP
 * workers, the WebSocket waker).
 */
enum sbx_err
sbx_acquire(const char *name, struct sbx_ref *ref)
{
	struct sbx	*s;
	enum sbx_err	 e = SBX_OK;
	struct timespec	 ts;
	bool		 asleep;

	memset(ref, 0, sizeof(*ref));
	if (!sbx_name_valid(name))
		return SBX_BAD_NAME;
	/* One going to sleep, or pinned by a snapshot or restore, is
	 * waited for, then woken again. A sleeping one gets the store's
	 * newer /data before it starts (not into a folder being packed
	 * or replaced); that may take a while, so not under the lock. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&lock);
	asleep = (s = wait_settled(name, &ts)) != NULL &&
	    s->state == S_SLEEPING && s->pinned == 0;
	pthread_mutex_unlock(&lock);
	if (asleep)
		objstore_sync_wake(name);
	pthread_mutex_lock(&lock);
	if ((s = wait_settled(name, &ts)) == NULL) {
		pthread_mutex_unlock(&lock);
		return SBX_NOT_FOUND;
	}
	if (s->state == S_STOPPING || s->pinned > 0)
		e = SBX_BUSY;
	if (e == SBX_OK && s->state == S_SLEEPING &&
	    (e = make_room()) == SBX_OK)
		e = start(s);
	if (e == SBX_OK) {
		s->holds++;
		s->last_used = now_ms();
		snprintf(ref->name, sizeof(ref->name), "%s", s->name);
		snprintf(ref->control, sizeof(ref->control), "%s",
		    s->control);
		ref->held = true;
	}
	pthread_mutex_unlock(&lock);
	return e;
}

void
sbx_release(struct sbx_ref *ref)
{
	struct sbx	*s;

	if (!ref->held)
		return;
	pthread_mutex_lock(&lock);
	if ((s = find(ref->name)) != NULL) {
		if (s->holds > 0)
			s->holds--;
		s->last_used = now_ms();
		s->used_ms = wall_ms();
	}
	pthread_mutex_unlock(&lock);
	ref->held = false;
}

/* Put to sleep now, and wait (bounded) until its processes are gone. */
enum sbx_err
sbx_stop(const char *name)
{
	struct sbx	*s;
	struct timespec	 ts;
	enum sbx_err	 e = SBX_OK;

	pthread_mutex_lock(&lock);
	if ((s = find(name)) == NULL) {
		pthread_mutex_unlock(&lock);
		return SBX_NOT_FOUND;
	}
	if (s->state == S_RUNNING)
		signal_stop(s);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	while (find(name) == s && s->state == S_STOPPING)
		if (pthread_cond_timedwait(&changed, &lock, &ts) != 0) {
			e = SBX_BUSY;
			break;
		}
	pthread_mutex_unlock(&lock);
	return e;
}

/* Stop it, forget it, and remove its folder. */
enum sbx_err
sbx_destroy(const char *name)
{
	struct sbx	**sp, *s;
	sqlite3_stmt	*st;
	enum sbx_err	 e;
	int		 dfd;
	struct timespec	 ts;

	if (!sbx_name_valid(name))
		return SBX_NOT_FOUND;
	/* Going away: no automatic snapshot of its last sleep. */
	pthread_mutex_lock(&lock);
	if ((s = find(name)) != NULL)
		s->quiet_sleep = true;
	pthread_mutex_unlock(&lock);
	if ((e = sbx_stop(name)) != SBX_OK)
		return e;
	/* Its /data stays in the object store (README, Persistent /data),
	 * synced a last time; no sync runs while the folder goes. */
	objstore_sync_forget(name);
	pthread_mutex_lock(&lock);
	s = NULL;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	if (wait_settled(name, &ts) != NULL)
		for (sp = &list; (s = *sp) != NULL; sp = &s->next)
			if (!strcmp(s->name, name))
				break;
	if (s == NULL || s->state != S_SLEEPING || s->pinned > 0) {
		pthread_mutex_unlock(&lock);
		objstore_sync_forgotten(name);
		return s == NULL ? SBX_NOT_FOUND : SBX_BUSY;
	}
	*sp = s->next;
	egress_conf_forget(name);
	egress_ca_forget(name);
	if ((st = store_stmt("DELETE FROM sandboxes WHERE name = ?")) !=
	    NULL) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	pthread_mutex_unlock(&lock);
	free(s);
	if ((dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (launch_rm_tree(dfd, name) == -1 && errno != ENOENT)) {
		log_error("cannot remove a sandbox folder", "%s/%s: %s", root,
		    name, strerror(errno));
		if (dfd != -1)
			close(dfd);
		objstore_sync_forgotten(name);
		return SBX_FAILED;
	}
	close(dfd);
	objstore_sync_forgotten(name);
	return SBX_OK;
}

/*
 * Keep a sandbox asleep while snapshot.c reads or replaces its folder.
 * With stop, a running one is put to sleep first (*was_running says so;
 * no on_sleep hook fires for that sleep). A wake meanwhile waits, or is
 * refused after 10 s; but with cancel (a soft pin: an automatic
 * snapshot) it sets *cancel and waits only for sbx_unpin, so no request
 * is delayed by a snapshot nobody asked for; so does another pin. One
 * pin at a time: SBX_BUSY while another hard one holds.
 */
enum sbx_err
sbx_pin(const char *name, bool stop, bool *cancel, long long *slot,
    bool *was_running)
{
	struct sbx	*s;
	struct timespec	 ts;
	enum sbx_err	 e = SBX_OK;

	*was_running = false;
	pthread_mutex_lock(&lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	/* Another's hard pin refuses; a soft one gives way (below). */
	if ((s = find(name)) == NULL)
		e = SBX_NOT_FOUND;
	else if ((s->pinned > 0 && s->pin_cancel == NULL) ||
	    (!stop && s->state != S_SLEEPING))
		e = SBX_BUSY;
	else if (s->state == S_RUNNING) {
		*was_running = true;
		s->quiet_sleep = true;
		signal_stop(s);
	}
	if (e == SBX_OK && (s = wait_settled(name, &ts)) == NULL)
		e = SBX_NOT_FOUND;
	else if (e == SBX_OK && (s->state != S_SLEEPING || s->pinned > 0))
		e = SBX_BUSY;
	if (e == SBX_OK) {
		s->pinned = 1;
		s->pin_cancel = cancel;
		*slot = s->slot;
	}
	pthread_mutex_unlock(&lock);
	return e;
}

void
sbx_unpin(const char *name)
{
	struct sbx	*s;

	pthread_mutex_lock(&lock);
	if ((s = find(name)) != NULL) {
		s->pinned = 0;
		s->pin_cancel = NULL;
	}
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
}

/* fn runs on the manager's thread, its lock held: it may only queue. */
void
sbx_on_sleep(void (*fn)(const char *name))
{
	pthread_mutex_lock(&lock);
	on_sleep = fn;
	pthread_mutex_unlock(&lock);
}

json_t *
sbx_info(const char *name)
{
	struct sbx	*s;
	json_t		*o = NULL;
	char		 cg[96];
	static const char *const states[] = { "sleeping", "running",
		"stopping" };

	pthread_mutex_lock(&lock);
	if ((s = find(name)) != NULL) {
		o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:i}",
		    "name", s->name, "state", states[s->state],
		    "created_ms", (json_int_t)s->created_ms,
		    "last_used_ms", (json_int_t)s->used_ms,
		    "starts", (json_int_t)s->starts,
		    "slot", (json_int_t)s->slot, "in_use", s->holds);
		if (o != NULL && s->state != S_SLEEPING) {
			json_object_set_new(o, "started_ms",
			    json_integer(s->started_ms));
			json_object_set_new(o, "uptime_ms", json_integer(
			    wall_ms() - s->started_ms));
			json_object_set_new(o, "pid", json_integer(s->pid));
			snprintf(cg, sizeof(cg), "%s-%s", cg_prefix, s->name);
			launch_cgroup_stats(cg, o);
		}
		if (o != NULL && s->last_error[0] != '\0')
			json_object_set_new(o, "last_error",
			    json_string(s->last_error));
	}
	pthread_mutex_unlock(&lock);
	return o;
}

json_t *
sbx_list(void)
{
	json_t		*a = json_array();
	char		 names[64][SBX_NAME_MAX + 1];
	struct sbx	*s;
	size_t		 n = 0, i, skip = 0;
	bool		 more = true;

	/* Names first, then each one's info without holding the lock. */
	while (more && a != NULL) {
		more = false;
		n = 0;
		pthread_mutex_lock(&lock);
		for (s = list, i = 0; s != NULL; s = s->next, i++) {
			if (i < skip)
				continue;
			if (n == 64) {
				more = true;
				break;
			}
			snprintf(names[n++], sizeof(names[0]), "%s", s->name);
		}
		pthread_mutex_unlock(&lock);
		for (i = 0; i < n; i++) {
			json_t	*o = sbx_info(names[i]);

			if (o != NULL)
				json_array_append_new(a, o);
		}
		skip += n;
	}
	return a;
}

bool
sbx_by_socket(const char *path, char *name, size_t namesz)
{
	struct sbx	*s;
	bool		 found = false;

	pthread_mutex_lock(&lock);
	for (s = list; s != NULL && !found; s = s->next)
		if (s->state != S_SLEEPING && s->gw_path[0] != '\0' &&
		    !strcmp(s->gw_path, path)) {
			snprintf(name, namesz, "%s", s->name);
			found = true;
		}
	pthread_mutex_unlock(&lock);
	return found;
}

/* Called with the lock held, or from sbx_shutdown after the thread. */
long
sbx_uid_base(const char *name)
{
	struct sbx	*s;
	long		 base = -1;

	pthread_mutex_lock(&lock);
	if ((s = find(name)) != NULL)
		base = config_current()->sbx_uid_base + (long)s->slot * 65536;
	pthread_mutex_unlock(&lock);
	return base;
}

long
sbx_running(void)
{
	struct sbx	*s;
	long		 n = 0;

	for (s = list; s != NULL; s = s->next)
		if (s->state != S_SLEEPING)
			n++;
	return n;
}

static struct sbx *
find(const char *name)
{
	struct sbx	*s;

	for (s = list; s != NULL; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

/*
 * Lock held: wait (until ts) while the sandbox is stopping or pinned,
 * ending a soft pin at once. The lock is let go while waiting and the
 * sandbox may be destroyed meanwhile: it is looked up again each time.
 */
static struct sbx *
wait_settled(const char *name, const struct timespec *ts)
{
	struct sbx	*s;

	while ((s = find(name)) != NULL &&
	    (s->state == S_STOPPING || s->pinned > 0)) {
		if (s->pinned > 0 && s->pin_cancel != NULL)
			__atomic_store_n(s->pin_cancel, true,
			    __ATOMIC_RELAXED);
		if (pthread_cond_timedwait(&changed, &lock, ts) != 0)
			return find(name);
	}
	return s;
}

/*
 * Room for one more under sandbox.max_running: the least recently used
 * idle sandbox is put to sleep (its stop is not waited for: the new one
 * starts at once).
 */
static enum sbx_err
make_room(void)
{
	struct sbx	*s, *lru = NULL;
	long		 n = 0;

	for (s = list; s != NULL; s = s->next)
		if (s->state == S_RUNNING)
			n++;
	if (n < config_current()->sbx_max_running)
		return SBX_OK;
	for (s = list; s != NULL; s = s->next)
		if (s->state == S_RUNNING && s->holds == 0 &&
		    (lru == NULL || s->last_used < lru->last_used))
			lru = s;
	if (lru == NULL)
		return SBX_LIMIT;
	log_info("sandbox put to sleep to make room", "name=%s", lru->name);
	signal_stop(lru);
	return SBX_OK;
}

/* Start the launcher (launch.c does the host side). Lock held. */
static enum sbx_err
start(struct sbx *s)
{
	const struct config	*c = config_current();
	struct launch_spec	 ls;
	char			 dir[PATH_MAX], rundir[PATH_MAX], cg[96];
	int			 ctl = -1;
	struct epoll_event	 ev;

	if (refusal[0] != '\0')
		return SBX_UNAVAILABLE;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", root, s->name) >=
	    sizeof(dir)) {
		say(s, "%s/%s: the path is too long", root, s->name);
		goto fail;
	}
	/* pincer-sandbox gives them to the sandbox's root; the sockets
	 * are bound first. */
	snprintf(cg, sizeof(cg), "%s/run", s->name);
	if ((mkdirat(rootfd, s->name, 0700) == -1 && errno != EEXIST) ||
	    (mkdirat(rootfd, cg, 0755) == -1 && errno != EEXIST)) {
		say(s, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	/*
	 * A CA of its own for this run, for the TLS the egress proxy
	 * intercepts: its certificate (not its key) goes to run/, which
	 * pincer-sandbox puts into the sandbox's trust store.
	 */
	if ((size_t)snprintf(rundir, sizeof(rundir), "%s/run", dir) >=
	    sizeof(rundir)) {
		say(s, "%s/run: the path is too long", dir);
		goto fail;
	}
	if (egress_ca_issue(s->name, rundir, s->last_error,
	    sizeof(s->last_error)) == -1)
		goto fail;
	if ((ctl = launch_bind(dir, "control.sock", &s->run_fd, s->control,
	    sizeof(s->control), s->last_error, sizeof(s->last_error))) ==
	    -1 || (s->gw_fd = launch_bind(dir, "gateway.sock", &s->run_fd,
	    s->gw_path, sizeof(s->gw_path), s->last_error,
	    sizeof(s->last_error))) == -1)
		goto fail;
	snprintf(cg, sizeof(cg), "%s-%s", cg_prefix, s->name);
	ls = (struct launch_spec){ .dir = dir, .name = s->name, .cgroup = cg,
	    .uid_base = c->sbx_uid_base + s->slot * 65536,
	    .control_fd = ctl };
	if ((s->pid = launch_spawn(&ls, &s->out_fd, s->last_error,
	    sizeof(s->last_error))) == -1) {
		s->pid = 0;
		goto fail;
	}
	close(ctl);
	ctl = -1;
	s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
	ev.events = EPOLLIN;
	ev.data.ptr = s;
	if (s->pidfd == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, s->pidfd, &ev) ==
	    -1) {
		/* Without a pidfd its end would go unnoticed. */
		say(s, "pidfd: %s", strerror(errno));
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
		goto fail;
	}
	ev.data.ptr = (char *)s + 1;	/* odd pointer: its output */
	epoll_ctl(ep, EPOLL_CTL_ADD, s->out_fd, &ev);
	/* The door is up before anything starts a sandbox (daemon.c). */
	if (door_unix_add(s->gw_fd) == -1)
		log_error("a sandbox's gateway.sock is not served", "name=%s",
		    s->name);
	s->state = S_RUNNING;
	s->stop_wanted = false;
	s->started_ms = wall_ms();
	s->last_used = now_ms();
	s->last_error[0] = '\0';
	s->starts++;
	/*
	 * Not written to the store here: a wake must not wait for a disk
	 * flush, and after a restart every sandbox is asleep anyway. Its
	 * times and count are written when it goes to sleep.
	 */
	log_info("sandbox started", "name=%s pid=%ld", s->name, (long)s->pid);
	objstore_sync_started(s->name);
	pthread_cond_broadcast(&changed);
	return SBX_OK;
fail:
	log_error("cannot start a sandbox", "name=%s %s", s->name,
	    s->last_error);
	egress_ca_forget(s->name);
	if (ctl != -1)
		close(ctl);
	if (s->out_fd != -1)
		close(s->out_fd);
	if (s->gw_fd != -1)
		close(s->gw_fd);
	if (s->run_fd != -1)
		close(s->run_fd);
	s->out_fd = s->gw_fd = s->run_fd = -1;
	return SBX_FAILED;
}

/*
 * SIGTERM to the launcher: pincer-init ends every process (SIGTERM, then
 * SIGKILL after 3 s). If the launcher itself hangs, the thread kills it.
 */
static void
signal_stop(struct sbx *s)
{
	if (s->state != S_RUNNING)
		return;
	s->state = S_STOPPING;
	s->stop_wanted = true;
	s->last_used = now_ms();	/* the kill deadline counts from here */
	kill(s->pid, SIGTERM);
}

static void *
sbx_main(void *arg)
{
	struct epoll_event	 evs[16];
	struct sbx		*s;
	char			 buf[64];
	int			 n, i;

	(void)arg;
	for (;;) {
		n = epoll_wait(ep, evs, 16, 1000);
		pthread_mutex_lock(&lock);
		if (quit) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		for (i = 0; i < n; i++) {
			uintptr_t p = (uintptr_t)evs[i].data.ptr;

			if (p == 0) {
				while (read(wake_fd[0], buf, sizeof(buf)) > 0)
					;
			} else if (p & 1)
				read_output((struct sbx *)(p - 1));
			else {
				s = (struct sbx *)p;
				read_output(s);
				waitpid(s->pid, NULL, WNOHANG);
				reap(s);
			}
		}
		idle_check();
		pthread_mutex_unlock(&lock);
	}
}

/* The launcher ended: its sockets go, the sandbox sleeps. Lock held. */
static void
reap(struct sbx *s)
{
	bool	 wanted = s->stop_wanted;

	if (s->pidfd != -1) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s->pidfd, NULL);
		close(s->pidfd);
	}
	if (s->out_fd != -1) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s->out_fd, NULL);
		close(s->out_fd);
	}
	if (s->gw_fd != -1)
		door_unix_remove(s->gw_fd);	/* the door closes it */
	unlink(s->control);
	unlink(s->gw_path);
	if (s->run_fd != -1)
		close(s->run_fd);
	s->pidfd = s->out_fd = s->gw_fd = s->run_fd = -1;
	s->gw_path[0] = s->control[0] = '\0';
	s->pid = 0;
	s->state = S_SLEEPING;
	s->stop_wanted = false;
	/* Its CA dies with the run; the next start makes another. */
	egress_ca_forget(s->name);
	save_state(s, "sleeping");
	objstore_sync_stopped(s->name);	/* the final flush */
	if (wanted)
		log_info("sandbox asleep", "name=%s", s->name);
	else
		log_warn("sandbox ended by itself", "name=%s %s", s->name,
		    s->last_error);
	/* Only queued there: the manager never waits for a snapshot. */
	if (wanted && !s->quiet_sleep && !quit && on_sleep != NULL)
		on_sleep(s->name);
	s->quiet_sleep = false;
	pthread_cond_broadcast(&changed);
}

/* The launcher's own lines: die() messages and its status events. */
static void
read_output(struct sbx *s)
{
	char	 buf[1024], *line, *nl;
	ssize_t	 n;

	if (s->out_fd == -1)
		return;
	while ((n = read(s->out_fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		for (line = buf; *line != '\0'; line = nl + 1) {
			if ((nl = strchr(line, '\n')) == NULL)
				nl = line + strlen(line) - 1;
			else
				*nl = '\0';
			if (*line == '\0')
				continue;
			if (!strncmp(line, "{\"event\":", 9)) {
				log_debug("sandbox event", "name=%s %s",
				    s->name, line);
				continue;
			}
			snprintf(s->last_error, sizeof(s->last_error), "%s",
			    line);
			log_info("sandbox says", "name=%s line=%s", s->name,
			    line);
		}
	}
}

/* Lock held: idle ones to sleep; stuck launchers killed. */
static void
idle_check(void)
{
	const struct config	*c = config_current();
	struct sbx		*s;
	uint64_t		 now = now_ms();

	for (s = list; s != NULL; s = s->next) {
		if (s->state == S_STOPPING && now - s->last_used > 8000)
			kill(s->pid, SIGKILL);
		if (s->state == S_RUNNING && s->holds == 0 &&
		    c->sbx_idle_s > 0 &&
		    now - s->last_used > (uint64_t)c->sbx_idle_s * 1000) {
			log_info("sandbox idle", "name=%s", s->name);
			signal_stop(s);
		}
	}
}

/* The state and times survive a restart; written on changes only. */
static void
save_state(struct sbx *s, const char *state)
{
	sqlite3_stmt	*st;

	st = store_stmt("UPDATE sandboxes SET state = ?, started_at = ?, "
	    "last_used_at = ?, starts = ? WHERE name = ?");
	if (st == NULL)
		return;
	sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, s->started_ms);
	sqlite3_bind_int64(st, 3, s->used_ms);
	sqlite3_bind_int64(st, 4, s->starts);
	sqlite3_bind_text(st, 5, s->name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warn("cannot record a sandbox's state", "%s",
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(st);
}

static long long
wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The sandbox's last error, as its info shows it. */
static void
say(struct sbx *s, const char *f, ...)
{
	va_list	 ap;

	va_start(ap, f);
	vsnprintf(s->last_error, sizeof(s->last_error), f, ap);
	va_end(ap);
}
