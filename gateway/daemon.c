/* SPDX-License-Identifier: MIT */
/*
 * daemon.c: `pincer serve`. Start-up in order (config, state folder, store,
 * servers, front door), then signals: SIGHUP reloads the config, SIGTERM
 * and SIGINT drain and exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pincer.h"
#include "egress.h"

static int	check_exposure(const struct config *);
static int	state_prepare(const char *, int *);
static void	reload(const struct config_overrides *);
static int	apply(struct config *, json_t *, char *, size_t);
static void	apply_logging(const struct config *);
static int	start_egress(const struct config *, char *, size_t);
static int	local_socket(const struct config *);
static int	open_objstore(const struct config *);

static int	state_fd = -1;	/* kept open when the socket path is long */
/* The command line's overrides, for reloads from the API. */
static const struct config_overrides *serve_ov;
/* Set by daemon_restart: the next SIGTERM is a restart, not a stop. */
static volatile sig_atomic_t restart_asked;
/* One reload at a time: SIGHUP's, or a save through the API. */
static pthread_mutex_t	 reload_lock = PTHREAD_MUTEX_INITIALIZER;

int
daemon_serve(const struct config_overrides *ov)
{
	struct config	*c;
	struct logline	 l;
	sigset_t	 sigs;
	siginfo_t	 si;
	char		*err = NULL, bound[96], dbpath[4096];
	double		 t0 = now_seconds();
	int		 lockfd = -1, rc = 1, sig;

	/* Everything pincerd writes (database, keys) is for itself alone. */
	umask(077);
	serve_ov = ov;
	if ((c = config_load(ov, &err)) == NULL) {
		fprintf(stderr, "pincerd: the config is not valid:\n%s",
		    err != NULL ? err : "out of memory\n");
		free(err);
		return 2;
	}
	config_publish(c);
	apply_logging(c);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (state_prepare(c->state_dir, &lockfd) == -1)
		goto out;
	snprintf(dbpath, sizeof(dbpath), "%s/pincer.db", c->state_dir);
	if (store_open(dbpath, c->busy_timeout_ms, &err) == -1) {
		log_error("cannot open the store", "%s: %s", dbpath,
		    err != NULL ? err : "out of memory");
		free(err);
		goto out;
	}
	if (auth_init(c->state_dir) == -1 || secrets_init(c->state_dir) == -1 ||
	    check_exposure(c) == -1)
		goto out;
	auth_setup_code_announce();
	if (metrics_init(route_count()) == -1 ||
	    ratelimit_init(4096) == -1)
		goto out;

	/* Signals go to this thread alone: block them before any thread. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (usage_start() == -1 || upcall_start(c->http_threads) == -1 ||
	    relay_start() == -1 || open_objstore(c) == -1 ||
	    sbx_init(c) == -1 ||
	    /* After sbx_init: it syncs only sandboxes that exist. */
	    objstore_sync_start(c, objstore_shared()) == -1 ||
	    snapshot_start(c) == -1 ||
	    ws_start(c) == -1 || channel_start(c) == -1 ||
	    browser_start(c) == -1 || cdp_start(c) == -1 ||
	    egress_log_start() == -1 || start_egress(c, NULL, 0) == -1 ||
	    backup_start(c) == -1 || http_start(c) == -1 ||
	    door_start(c, bound, sizeof(bound)) == -1 ||
	    local_socket(c) == -1 ||
	    /* Last: a turn left from the last run starts a sandbox, whose
	     * calls come in through the door. */
	    dispatch_start(c) == -1)
		goto stop;
	if (log_begin(&l, LOG_INFO, "listening")) {
		log_str(&l, "addr", bound);
		log_str(&l, "version", pincer_version);
		log_int(&l, "startup_us", (long long)((now_seconds() - t0) *
		    1e6));
		log_end(&l);
	}
	for (;;) {
		if ((sig = sigwaitinfo(&sigs, &si)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (sig == SIGHUP) {
			reload(ov);
			continue;
		}
		if (sig == SIGUSR1) {
			/* The CLI changed users or tokens. */
			auth_invalidate();
			log_debug("credentials changed; cache dropped", NULL);
			continue;
		}
		if (log_begin(&l, LOG_INFO, restart_asked ? "restarting" :
		    "shutting down")) {
			log_str(&l, "signal", sig == SIGTERM ? "TERM" : "INT");
			log_int(&l, "in_flight", http_in_flight());
			log_end(&l);
		}
		break;
	}
	rc = 0;
stop:
	door_stop_accepting();
	/* Turns are cut (their messages run again at the next start) and
	 * chat streams told, so the drain does not wait for them. */
	dispatch_stop();
	/* Requests parked for the browser are answered; sessions told. */
	cdp_stop();
	/* A backup uploading is let finish: it uses the store, curl and
	 * the shared object store. */
	backup_stop();
	relay_end_all(true);
	/* Snapshot jobs are cancelled, their requests answered. */
	snapshot_stop();
	http_drain(config_current()->shutdown_timeout_s);
	/* No webhook is in flight now; sockets close before ws.c goes. */
	channel_stop();
	relay_end_all(false);
	/* LLM calls still open end now (a stream gets an error event). */
	upcall_stop();
	/* Terminals are told 1001 "shutdown" before their sandboxes go. */
	door_stop();
	/* No browser context's connection comes in after this. */
	egress_browser_stop();
	/* Proxied connections end before their sandboxes do. */
	egress_stop();
	/* Their last records reach the store. */
	egress_log_stop();
	ws_stop();
	objstore_sync_shutting();
	sbx_shutdown();
	/* No sandbox runs now, no egress thread asks: their CAs go. */
	egress_ca_shutdown();
	/* After the sandboxes: their final /data syncs. */
	objstore_sync_stop();
	objstore_close(objstore_shared_set(NULL));
	browser_stop();
	http_stop();
	relay_stop();
	usage_stop();
	llm_call_shutdown();
	if (rc == 0)
		log_info("stopped", NULL);
out:
	auth_shutdown();
	secrets_shutdown();
	store_close();
	curl_global_cleanup();
	metrics_free();
	ratelimit_free();
	if (lockfd != -1)
		close(lockfd);
	llm_conf_free_all();
	config_release_all();
	return rc == 0 && restart_asked ? DAEMON_RESTART : rc;
}

/*
 * Stop as SIGTERM does, then start again in the same process (main
 * execs pincerd anew): what only a restart applies (listen, channels,
 * sandbox settings) takes effect, with no service manager needed.
 */
void
daemon_restart(void)
{
	restart_asked = 1;
	kill(getpid(), SIGTERM);
}

/*
 * An agent gateway on a public address without authentication is a remote
 * shell for anyone who finds it. Loopback is always allowed; any other
 * address once someone can log in (an owner exists) or a zero-trust
 * proxy's JWT is required.
 */
static int
check_exposure(const struct config *c)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;

	if (net_parse_listen(c->listen, &ss, &len) == -1)
		return -1;
	if (net_is_loopback((struct sockaddr *)&ss) || auth_configured(c))
		return 0;
	log_error("refusing to listen on a non-loopback address",
	    "%s: no authentication is configured (no owner exists and "
	    "auth.external_jwt is off), so anyone who can reach the port "
	    "could drive the agent. Create the owner first: pincer user add "
	    "NAME --role owner --password-stdin", c->listen);
	return -1;
}

/* The state folder is private (0700) and one pincerd holds it at a time. */
static int
state_prepare(const char *dir, int *lockfd)
{
	char	 path[4096], pid[32];
	struct stat st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_error("cannot create the state folder", "%s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		log_error("the state folder is not a folder", "%s", dir);
		return -1;
	}
	if ((st.st_mode & 077) != 0 && chmod(dir, st.st_mode & ~077) == -1)
		log_warn("cannot make the state folder private", "%s: %s", dir,
		    strerror(errno));
	snprintf(path, sizeof(path), "%s/pincerd.lock", dir);
	*lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*lockfd == -1) {
		log_error("cannot write in the state folder", "%s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if (flock(*lockfd, LOCK_EX | LOCK_NB) == -1) {
		log_error("the state folder is in use", "%s: another pincerd "
		    "is running with it", dir);
		close(*lockfd);
		*lockfd = -1;
		return -1;
	}
	/* The pid, for the CLI's "credentials changed" signal. */
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(*lockfd, 0) == -1 ||
	    write(*lockfd, pid, strlen(pid)) != (ssize_t)strlen(pid))
		log_warn("cannot record the pid", "%s", path);
	return 0;
}

/* SIGHUP: a config that does not validate changes nothing. */
static void
reload(const struct config_overrides *ov)
{
	struct config	*next;
	char		*err = NULL, *p;

	pthread_mutex_lock(&reload_lock);
	if ((next = config_load(ov, &err)) == NULL) {
		/* One line per event: fold the error list. */
		for (p = err; p != NULL && *p; p++)
			if (*p == '\n')
				*p = p[1] ? ';' : '\0';
		log_error("config reload failed; keeping the running config",
		    "%s", err != NULL ? err : "out of memory");
		free(err);
		goto out;
	}
	if (apply(next, NULL, NULL, 0) == 0) {
		audit_add("SIGHUP", "", "config_reload", config_path(ov), "");
		log_info("config reloaded", "file=%s", config_path(ov));
	}
out:
	pthread_mutex_unlock(&reload_lock);
}

/* The file the config is read from (what SIGHUP re-reads). */
const char *
daemon_config_path(void)
{
	return config_path(serve_ov);
}

const struct config_overrides *
daemon_overrides(void)
{
	return serve_ov;
}

/*
 * A candidate file (the API writes it beside the real one) loaded as
 * SIGHUP loads the real one: the environment and the command line still
 * win over it. NULL and err (caller frees) when it does not validate.
 */
struct config *
daemon_config_try(const char *path, char **err)
{
	struct config_overrides	 ov = { 0 };

	if (serve_ov != NULL)
		ov = *serve_ov;
	ov.config_file = path;
	return config_load(&ov, err);
}

/*
 * Make next (from daemon_config_try) the running config, as SIGHUP does;
 * names of changed options that need a restart go into restart. -1 and
 * err when the egress policies refuse it (next is freed, nothing changed).
 */
int
daemon_config_apply(struct config *next, json_t *restart, char *err,
    size_t errsz)
{
	int	 rc;

	pthread_mutex_lock(&reload_lock);
	rc = apply(next, restart, err, errsz);
	pthread_mutex_unlock(&reload_lock);
	if (rc == 0)
		log_info("config reloaded", "file=%s by=api",
		    config_path(serve_ov));
	return rc;
}

/* Under reload_lock. */
static int
apply(struct config *next, json_t *restart, char *err, size_t errsz)
{
	config_carry_restart(next, config_current(), restart);
	if (start_egress(next, err, errsz) == -1) {
		config_free(next);
		return -1;
	}
	config_publish(next);
	apply_logging(next);
	return 0;
}

/* The egress policies: a policy that does not parse is said and stops
 * the start (or the reload, which keeps the running ones). */
static int
start_egress(const struct config *c, char *out, size_t outsz)
{
	char	 err[300];

	if (egress_start(c, err, sizeof(err)) == 0)
		return 0;
	log_error("egress policy refused", "%s", err);
	if (out != NULL)
		snprintf(out, outsz, "%s", err);
	return -1;
}

static void
apply_logging(const struct config *c)
{
	log_setup((enum log_level)c->log_level, (enum log_format)c->log_format);
}

/*
 * $state/pincerd.sock: the CLI's way in (pincer sandbox …). It is 0600 in
 * the 0700 state folder, so only the account running pincerd reaches it,
 * and that account is treated as the owner (auth.c). A path too long for
 * a Unix socket is bound through /proc/self/fd of the open state folder.
 */
static int
local_socket(const struct config *c)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path),
	    "%s/pincerd.sock", c->state_dir) >= sizeof(sun.sun_path)) {
		if ((state_fd = open(c->state_dir, O_PATH | O_DIRECTORY |
		    O_CLOEXEC)) == -1)
			goto fail;
		snprintf(sun.sun_path, sizeof(sun.sun_path),
		    "/proc/self/fd/%d/pincerd.sock", state_fd);
	}
	unlink(sun.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(sun.sun_path, 0600) == -1 || listen(fd, 128) == -1 ||
	    door_unix_add(fd) == -1) {
		close(fd);
		goto fail;
	}
	auth_set_local_socket(sun.sun_path);
	return 0;
fail:
	log_error("cannot listen on the local socket", "%s/pincerd.sock: %s",
	    c->state_dir, strerror(errno));
	return -1;
}

/*
 * The object store, shared by the /data sync, snapshots and backups. One
 * that is set up but cannot open stops the start: running on without it
 * would let an agent's memory exist only on this disk, unnoticed.
 */
static int
open_objstore(const struct config *c)
{
	struct objstore	*os;
	char		 err[OS_ERR];

	if ((os = objstore_open(c, err)) == NULL && *err != '\0') {
		log_error("the object store cannot be used", "error=\"%s\" "
		    "hint=\"fix objstore.* or set objstore.backend off; "
		    "pincer objstore check tests it\"", err);
		return -1;
	}
	objstore_shared_set(os);
	return 0;
}
