/* SPDX-License-Identifier: MIT */
/*
 * browser.c: the browser backend the CDP bridge talks to (README,
 * Browser). "local": pincerd starts Debian's Chromium headless on
 * loopback with a fresh profile, keeps it running (restarts with
 * backoff when it dies) and ends its whole process group at shutdown.
 * "remote": a CDP endpoint the owner runs. "auto": local when Chromium
 * is installed, else off. browser_endpoint() says where it is now.
 * A local Chromium is started on first use, not with pincerd: a
 * gateway whose agents never browse does not carry a browser's memory.
 *
 * Chromium is told port 0 and writes the port it took, with its
 * browser target's path, to DevToolsActivePort in the profile: no port
 * is guessed and none can be taken by someone else in between.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pincer.h"

#define READY_MS	30000	/* Chromium's port file, at most */
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	60000
#define STABLE_MS	60000	/* up this long: the backoff starts over */
#define STOP_MS		5000	/* SIGTERM, then the group is killed */

static void	*supervise(void *);
static pid_t	 spawn(const char *exe, const char *profile);
static int	 await_port(pid_t, const char *profile, char *, size_t);
static void	 set_endpoint(const char *);
static bool	 pause_ms(long);

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 wake = PTHREAD_COND_INITIALIZER;
static char		 endpoint[512];	/* lock: "" while down */
static char		 why[256];	/* lock: why it is down */
static pid_t		 child_pid;	/* lock: 0 when none */
static bool		 quit;		/* lock */
static bool		 running;	/* lock: the supervisor was started */
static bool		 local;		/* the backend is a local Chromium */
static pthread_t	 thread;
static char		 exe[4096];
static char		 profile[4096];
static long		 restarts;	/* lock */

/* The backend chosen by browser.backend and what the host has. */
enum browser_backend
browser_backend(const struct config *c)
{
	if (c->browser_backend != BROWSER_AUTO)
		return (enum browser_backend)c->browser_backend;
	if (*c->browser_remote_url)
		return BROWSER_REMOTE;
	return access(c->browser_chromium, X_OK) == 0 ? BROWSER_LOCAL :
	    BROWSER_OFF;
}

int
browser_start(const struct config *c)
{
	enum browser_backend	 b = browser_backend(c);

	quit = false;
	restarts = 0;
	local = false;
	switch (b) {
	case BROWSER_OFF:
		snprintf(why, sizeof(why), c->browser_backend == BROWSER_OFF ?
		    "the browser is off (browser.backend)" : "no Chromium at "
		    "%s and no browser.remote_url (apt-get install chromium)",
		    c->browser_chromium);
		log_info("browser off", "%s", why);
		return 0;
	case BROWSER_REMOTE:
		if (!*c->browser_remote_url) {
			log_error("browser.backend is remote but "
			    "browser.remote_url is empty", NULL);
			return -1;
		}
		set_endpoint(c->browser_remote_url);
		return 0;
	default:
		break;
	}
	if (access(c->browser_chromium, X_OK) == -1) {
		log_error("browser.backend is local but Chromium cannot be run",
		    "%s: %s; fix: apt-get install chromium, or set "
		    "browser.chromium", c->browser_chromium, strerror(errno));
		return -1;
	}
	snprintf(exe, sizeof(exe), "%s", c->browser_chromium);
	snprintf(profile, sizeof(profile), "%s/browser", c->state_dir);
	snprintf(why, sizeof(why), "Chromium is not started yet");
	local = true;
	return 0;
}

/* The local Chromium's supervisor, once: 0 started or running. */
static int
start_local(void)
{
	int	 rc = 0;

	pthread_mutex_lock(&lock);
	if (!running && !quit) {
		snprintf(why, sizeof(why), "Chromium is starting");
		if (pthread_create(&thread, NULL, supervise, NULL) != 0) {
			snprintf(why, sizeof(why), "cannot start the browser "
			    "supervisor");
			rc = -1;
		} else
			running = true;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

/* Chromium's whole process group ends; the profile goes with it. */
void
browser_stop(void)
{
	struct timespec	 ts;
	pid_t		 pid;

	pthread_mutex_lock(&lock);
	quit = true;
	pid = child_pid;
	pthread_cond_broadcast(&wake);
	if (!running) {
		pthread_mutex_unlock(&lock);
		set_endpoint("");
		return;
	}
	pthread_mutex_unlock(&lock);
	if (pid > 0)
		kill(-pid, SIGTERM);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += STOP_MS / 1000;
	if (pthread_timedjoin_np(thread, NULL, &ts) != 0) {
		pthread_mutex_lock(&lock);
		pid = child_pid;
		pthread_mutex_unlock(&lock);
		log_warn("Chromium did not stop in time; killed", "pid %d",
		    (int)pid);
		if (pid > 0)	/* never 0: that is pincerd's own group */
			kill(-pid, SIGKILL);
		pthread_join(thread, NULL);
	}
	running = false;
	set_endpoint("");
}

/*
 * Where the backend is ("http://127.0.0.1:PORT", the remote URL), or -1
 * with why it is not there. A local Chromium not running yet is started:
 * ask again (browser_wait) once it has had time.
 */
int
browser_endpoint(char *out, size_t outsz, char *err, size_t errsz)
{
	int	 rc = 0;

	if (local && start_local() == -1) {
		snprintf(err, errsz, "cannot start the browser supervisor");
		return -1;
	}
	pthread_mutex_lock(&lock);
	if (*endpoint)
		snprintf(out, outsz, "%s", endpoint);
	else {
		snprintf(err, errsz, "%s", *why ? why : "no browser");
		rc = -1;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

/*
 * The local Chromium's pid, which is also its process group's (its
 * renderers and network service are in it); 0 when none is running.
 */
pid_t
browser_local_pid(void)
{
	pid_t	 pid;

	pthread_mutex_lock(&lock);
	pid = local ? child_pid : 0;
	pthread_mutex_unlock(&lock);
	return pid;
}

/* The backend's state for GET /api/v1/browser. The URL of a local
 * Chromium is not shown: its port takes any local connection. */
json_t *
browser_status(void)
{
	json_t	*o = json_object();

	pthread_mutex_lock(&lock);
	json_object_set_new(o, "backend", json_string(local ? "local" :
	    *endpoint ? "remote" : "off"));
	json_object_set_new(o, "state", json_string(*endpoint ? "ready" :
	    !local ? "off" : !running ? "stopped" : child_pid > 0 ?
	    "starting" : "restarting"));
	if (!*endpoint)
		json_object_set_new(o, "reason", json_string(why));
	if (local) {
		json_object_set_new(o, "pid", json_integer(child_pid));
		json_object_set_new(o, "restarts", json_integer(restarts));
	}
	pthread_mutex_unlock(&lock);
	return o;
}

/* GET /api/v1/browser */
void
api_browser(struct http_req *req)
{
	http_reply_json(req, 200, browser_status());
}

/* POST /api/v1/browser/start: a local Chromium is started now rather
 * than on first use; 202 with the state (poll GET for "ready"). */
void
api_browser_start(struct http_req *req)
{
	if (!local) {
		http_error(req, 409, "not_local", "the browser backend is "
		    "not a local Chromium (browser.backend)");
		return;
	}
	if (start_local() == -1) {
		http_error(req, 500, "internal", "cannot start the browser "
		    "supervisor (out of threads)");
		return;
	}
	http_reply_json(req, 202, browser_status());
}

static void *
supervise(void *unused)
{
	struct logline	 l;
	char		 ep[512], port[300];
	long		 backoff = BACKOFF_MIN_MS;
	double		 t0;
	pid_t		 pid;
	int		 st;

	(void)unused;
	for (;;) {
		/* A fresh profile each time: nothing from an earlier
		 * session (cookies, a crashed tab) is carried over. */
		launch_rm_tree(AT_FDCWD, profile);
		if (mkdir(profile, 0700) == -1 && errno != EEXIST) {
			log_error("cannot make the browser profile", "%s: %s",
			    profile, strerror(errno));
			pid = -1;
		} else
			pid = spawn(exe, profile);
		t0 = now_seconds();
		if (pid > 0) {
			pthread_mutex_lock(&lock);
			child_pid = pid;
			if (quit)	/* browser_stop missed it */
				kill(-pid, SIGTERM);
			pthread_mutex_unlock(&lock);
			if (await_port(pid, profile, port, sizeof(port)) == 0) {
				snprintf(ep, sizeof(ep), "http://127.0.0.1:%s",
				    port);
				set_endpoint(ep);
				if (log_begin(&l, LOG_INFO, "browser ready")) {
					log_str(&l, "url", ep);
					log_int(&l, "pid", pid);
					log_end(&l);
				}
			}
			while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
				;
			/* Its renderers and helpers are in its group. */
			kill(-pid, SIGKILL);
			set_endpoint("");
			pthread_mutex_lock(&lock);
			child_pid = 0;
			pthread_mutex_unlock(&lock);
		}
		pthread_mutex_lock(&lock);
		if (quit) {
			pthread_mutex_unlock(&lock);
			break;
		}
		restarts++;
		snprintf(why, sizeof(why), "Chromium exited; it is started "
		    "again in %ld ms", backoff);
		pthread_mutex_unlock(&lock);
		if ((now_seconds() - t0) * 1000 >= STABLE_MS)
			backoff = BACKOFF_MIN_MS;
		if (pid > 0 && log_begin(&l, LOG_WARN, "Chromium exited")) {
			log_int(&l, "status", WIFEXITED(st) ?
			    WEXITSTATUS(st) : -1);
			log_int(&l, "signal", WIFSIGNALED(st) ? WTERMSIG(st) :
			    0);
			log_int(&l, "restart_in_ms", backoff);
			log_end(&l);
		}
		if (!pause_ms(backoff))
			break;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
		    backoff * 2;
	}
	launch_rm_tree(AT_FDCWD, profile);
	return NULL;
}

/*
 * Headless, on loopback, and quiet: no first-run work, no update or
 * metrics traffic, no crash reporter, no GPU. As root Chromium refuses
 * to start without --no-sandbox; pincerd should not run as root outside
 * tests (README, Browser).
 */
static pid_t
spawn(const char *path, const char *dir)
{
	char		 udd[4200];
	const char	*argv[32];
	size_t		 n = 0;
	sigset_t	 none;
	pid_t		 pid;
	int		 fd;

	snprintf(udd, sizeof(udd), "--user-data-dir=%s", dir);
	argv[n++] = path;
	argv[n++] = "--headless=new";
	argv[n++] = "--remote-debugging-address=127.0.0.1";
	argv[n++] = "--remote-debugging-port=0";
	argv[n++] = udd;
	argv[n++] = "--no-first-run";
	argv[n++] = "--no-default-browser-check";
	argv[n++] = "--disable-background-networking";
	argv[n++] = "--disable-component-update";
	argv[n++] = "--disable-sync";
	argv[n++] = "--disable-breakpad";
	argv[n++] = "--disable-crash-reporter";
	argv[n++] = "--metrics-recording-only";
	argv[n++] = "--disable-domain-reliability";
	argv[n++] = "--disable-default-apps";
	argv[n++] = "--disable-extensions";
	argv[n++] = "--disable-gpu";
	argv[n++] = "--mute-audio";
	argv[n++] = "--password-store=basic";
	argv[n++] = "--use-mock-keychain";
	if (geteuid() == 0)
		argv[n++] = "--no-sandbox";
	argv[n++] = "about:blank";
	argv[n] = NULL;

	if ((pid = fork()) == -1) {
		log_error("cannot start Chromium", "%s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		setpgid(pid, pid);
		return pid;
	}
	/* Between fork and exec: async-signal-safe calls only. */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	syscall(SYS_close_range, 3U, ~0U, 0);
	execv(path, (char *const *)argv);
	_exit(127);
}

/* DevToolsActivePort: the port on its first line. -1: Chromium died or
 * did not write it within READY_MS. */
static int
await_port(pid_t pid, const char *dir, char *port, size_t portsz)
{
	char		 path[4200], line[64];
	siginfo_t	 si;
	FILE		*f;
	long		 waited;
	size_t		 n;

	snprintf(path, sizeof(path), "%s/DevToolsActivePort", dir);
	for (waited = 0; waited < READY_MS; waited += 50) {
		if ((f = fopen(path, "re")) != NULL) {
			n = fgets(line, sizeof(line), f) != NULL ?
			    strspn(line, "0123456789") : 0;
			fclose(f);
			if (n > 0 && n < portsz && (line[n] == '\n' ||
			    line[n] == '\0')) {
				memcpy(port, line, n);
				port[n] = '\0';
				return 0;
			}
		}
		/* Dead (left for supervise to reap), or pincerd stopping. */
		memset(&si, 0, sizeof(si));
		if ((waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG |
		    WNOWAIT) == 0 && si.si_pid == pid) || !pause_ms(50))
			return -1;
	}
	log_error("Chromium did not open its debugging port in time",
	    "pid %d, waited %d ms", (int)pid, READY_MS);
	kill(-pid, SIGKILL);
	return -1;
}

static void
set_endpoint(const char *ep)
{
	pthread_mutex_lock(&lock);
	snprintf(endpoint, sizeof(endpoint), "%s", ep);
	pthread_mutex_unlock(&lock);
}

/* false: pincerd is stopping. */
static bool
pause_ms(long ms)
{
	struct timespec	 ts;
	bool		 go;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&lock);
	if (!quit)
		pthread_cond_timedwait(&wake, &lock, &ts);
	go = !quit;
	pthread_mutex_unlock(&lock);
	return go;
}
