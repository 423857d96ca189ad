/* SPDX-License-Identifier: MIT */
/*
 * init_exec.c: commands. POST /exec runs one and answers with its output,
 * buffered or as SSE, and kills it when its client goes away; /processes
 * keeps background ones with the last 1 MiB of each stream, follows their
 * logs, kills them, and waits for a log line or a listening port.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

#define OUT_MAX		(4 << 20)	/* buffered exec, per stream */
#define RING_MAX	(1 << 20)	/* a background process, per stream */
#define READ_CHUNK	(16 * 1024)
#define STREAM_HIGH	(256 * 1024)	/* backlog: stop reading above */
#define GRACE_MS	200		/* output held open after the exit */
#define KILL_MS		3000		/* DELETE: SIGTERM, then SIGKILL */
#define TIMEOUT_DEF	60000
#define TIMEOUT_MAX	3600000
#define WAIT_DEF	30000
#define MAX_PROCS	64
#define MAX_ARGS	4096
#define LINE_MAX_W	(64 * 1024)	/* a longer log line is cut here */
#define PORT_RETRY_MS	100
#define PORT_TRY_MS	1000

#ifndef LIST_FOREACH_SAFE		/* BSD's; glibc's queue.h lacks it */
#define LIST_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = LIST_FIRST(head);					\
	    (var) != NULL && ((tvar) = LIST_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

/* What a command is to run: argv and env's strings live in body. */
struct spec {
	json_t		*body;
	const char	**argv;		/* owned array */
	char		**env;		/* owned, one block */
	const char	*cwd;
};

/* One of a command's output pipes, registered with the loop. */
struct src {
	void		*owner;		/* struct exec or struct proc */
	int		 idx;		/* 0 stdout, 1 stderr */
	int		 fd;		/* -1 when closed */
};

struct sbuf {
	char		*d;		/* owned */
	size_t		 len, cap;
};

struct exec {
	struct conn	*conn;
	pid_t		 pid;
	struct src	 src[2];
	uint64_t	 t0, t1;	/* started, exited */
	long		 deadline, grace;
	bool		 stream, b64, exited, timed_out, truncated;
	bool		 paused, finish_on_drain;
	int		 status;
	struct sbuf	 out[2];	/* buffered */
	char		 carry[2][4];	/* streamed: a cut UTF-8 sequence */
	size_t		 ncarry[2];
};

/* The last RING_MAX bytes of a stream; grows until then, then wraps. */
struct ring {
	char		*buf;		/* owned */
	size_t		 cap;
	uint64_t	 total;		/* bytes ever written */
};

struct proc;
struct follower {
	LIST_ENTRY(follower) entry;
	struct proc	*p;
	struct conn	*conn;
	uint64_t	 pos[2];	/* next byte to send, per stream */
	bool		 b64, paused;
};

enum wkind { W_LOG, W_PORT, W_KILL };
struct waiter {
	LIST_ENTRY(waiter) entry;
	struct proc	*p;
	struct conn	*conn;
	enum wkind	 kind;
	regex_t		 re;
	bool		 have_re;
	uint64_t	 pos[2];	/* W_LOG: the next line's start */
	int		 port;
	char		*path;		/* owned; NULL: a connect is enough */
	int		 sock;
	int		 phase;		/* 0 connecting, 1 reading */
	char		 rbuf[5];
	size_t		 rlen;
	long		 deadline, retry;
};

struct proc {
	LIST_ENTRY(proc) entry;
	char		 id[65];
	json_t		*cmd;
	pid_t		 pid;
	bool		 running;	/* until exited and output drained */
	bool		 exited;
	int		 status;
	int64_t		 started_ms, ended_ms;
	struct src	 src[2];
	struct ring	 ring[2];
	long		 grace, kill_timer;
	LIST_HEAD(, follower) followers;
	LIST_HEAD(, waiter) waiters;
};

static int	spec_parse(struct conn *, json_t *, struct spec *);
static int	spec_cwd(struct conn *, json_t *, struct spec *);
static int	spec_env(struct conn *, json_t *, struct spec *);
static void	spec_free(struct spec *);
static pid_t	spawn_piped(struct spec *, int, struct src [2], void *,
		    loop_fn);
static void	src_close(struct src *);
static json_t	*text_json(const char *, size_t, bool);
static int	encoding(struct conn *, const char *, bool *);
static int	exec_opts(struct conn *, json_t *, struct exec *,
		    json_int_t *, int *);
static void	exec_read(void *, uint32_t);
static void	exec_emit(struct exec *, int, char *, size_t);
static void	exec_exited(void *, pid_t, int);
static void	exec_check(struct exec *);
static void	exec_grace(void *);
static void	exec_timeout(void *);
static void	exec_drained(struct conn *, void *);
static void	exec_finish(struct exec *);
static void	exec_gone(struct conn *, void *);
static void	exec_free(struct exec *);
static void	exit_fields(json_t *, int);
static void	proc_start(struct conn *, const struct req *);
static void	proc_list(struct conn *);
static void	proc_logs(struct conn *, struct proc *);
static void	proc_delete(struct conn *, struct proc *);
static void	proc_wait(struct conn *, const struct req *, struct proc *);
static int	wait_args(struct conn *, json_t *, struct waiter *,
		    json_int_t *);
static struct proc *proc_find(const char *);
static json_t	*proc_json(struct proc *);
static void	proc_read(void *, uint32_t);
static void	proc_exited(void *, pid_t, int);
static void	proc_check(struct proc *);
static void	proc_grace(void *);
static void	proc_hardkill(void *);
static void	proc_finish(struct proc *);
static void	proc_free(struct proc *);
static int	ring_put(struct ring *, const char *, size_t);
static void	ring_copy(const struct ring *, uint64_t, char *, size_t);
static uint64_t	ring_low(const struct ring *);
static void	follow_pump(struct follower *);
static void	follow_drained(struct conn *, void *);
static void	follow_gone(struct conn *, void *);
static void	follow_free(struct follower *);
static bool	wait_log(struct waiter *, bool);
static void	wait_port_try(void *);
static void	wait_port_io(void *, uint32_t);
static void	wait_port_fail(struct waiter *);
static void	wait_port_slow(void *);
static void	wait_timeout(void *);
static void	wait_done(struct waiter *, int);
static void	wait_gone(struct conn *, void *);
static void	waiter_free(struct waiter *);

static LIST_HEAD(, proc) procs = LIST_HEAD_INITIALIZER(procs);
static int	 nprocs;
static unsigned	 next_id;

/* --- POST /exec -------------------------------------------------------- */

void
exec_handle(struct conn *c, const struct req *r)
{
	struct spec	 sp;
	struct exec	*e;
	json_t		*body;
	json_int_t	 timeout = TIMEOUT_DEF;
	int		 infd = -1;

	if ((body = http_body_json(c, r)) == NULL)
		return;
	if (spec_parse(c, body, &sp) == -1)
		return;
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		goto out;
	}
	if (exec_opts(c, body, e, &timeout, &infd) == -1)
		goto out;
	e->conn = c;
	e->t0 = init_now_ms();
	if ((e->pid = spawn_piped(&sp, infd, e->src, e, exec_read)) == -1) {
		http_error(c, 500, "internal", "cannot start: %s",
		    strerror(errno));
		goto out;
	}
	child_watch(e->pid, exec_exited, e);
	conn_on_close(c, exec_gone, e);
	if ((e->deadline = timer_add((uint64_t)timeout, exec_timeout, e)) ==
	    -1) {
		/* No deadline, no command: it could run for ever. */
		e->deadline = 0;
		exec_timeout(e);
	}
	if (e->stream)
		sse_start(c);
	e = NULL;
out:
	if (infd != -1)
		close(infd);
	free(e);
	spec_free(&sp);
}

/*
 * timeout_ms, stream, encoding and stdin (into a memory file: nothing to
 * feed as the command runs). -1 after answering.
 */
static int
exec_opts(struct conn *c, json_t *body, struct exec *e, json_int_t *timeout,
    int *infd)
{
	json_t	*v;

	if ((v = json_object_get(body, "timeout_ms")) != NULL &&
	    (!json_is_integer(v) || (*timeout = json_integer_value(v)) < 1 ||
	    *timeout > TIMEOUT_MAX)) {
		http_error(c, 400, "bad_request", "timeout_ms: 1 to %d",
		    TIMEOUT_MAX);
		return -1;
	}
	if ((v = json_object_get(body, "stream")) != NULL &&
	    !json_is_boolean(v)) {
		http_error(c, 400, "bad_request", "stream: a boolean");
		return -1;
	}
	e->stream = json_is_true(v);
	if ((v = json_object_get(body, "encoding")) != NULL &&
	    !json_is_string(v)) {
		http_error(c, 400, "bad_request", "encoding: utf8 or base64");
		return -1;
	}
	if (encoding(c, json_string_value(v), &e->b64) == -1)
		return -1;
	if ((v = json_object_get(body, "stdin")) == NULL)
		return 0;
	if (!json_is_string(v)) {
		http_error(c, 400, "bad_request", "stdin: a string");
		return -1;
	}
	if ((*infd = memfd_create("stdin", MFD_CLOEXEC)) == -1 ||
	    write(*infd, json_string_value(v), json_string_length(v)) !=
	    (ssize_t)json_string_length(v) || lseek(*infd, 0, SEEK_SET) == -1) {
		http_error(c, 500, "internal", "stdin: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void
exec_read(void *arg, uint32_t events)
{
	struct src	*s = arg;
	struct exec	*e = s->owner;
	char		 buf[READ_CHUNK + 4];
	ssize_t		 n;

	(void)events;
	n = read(s->fd, buf + 4, READ_CHUNK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		src_close(s);
		exec_check(e);
		return;
	}
	if (!e->stream) {
		struct sbuf	*b = &e->out[s->idx];
		size_t		 take = (size_t)n, cap;
		char		*d;

		/* The first OUT_MAX bytes are kept; the rest only counted. */
		if (take > OUT_MAX - b->len) {
			take = OUT_MAX - b->len;
			e->truncated = true;
		}
		if (b->len + take > b->cap) {
			for (cap = b->cap ? b->cap : 4096; cap < b->len + take;)
				cap *= 2;
			if ((d = realloc(b->d, cap)) == NULL) {
				e->truncated = true;
				return;
			}
			b->d = d;
			b->cap = cap;
		}
		memcpy(b->d + b->len, buf + 4, take);
		b->len += take;
		return;
	}
	exec_emit(e, s->idx, buf + 4, (size_t)n);
}

/*
 * One SSE event from what was read (buf has 4 free bytes before it for
 * the carry). A UTF-8 sequence cut by the read waits for its end, so it
 * does not become U+FFFD. Above STREAM_HIGH queued, reading stops until
 * the client catches up: the command blocks on a full pipe, not us.
 */
static void
exec_emit(struct exec *e, int i, char *buf, size_t n)
{
	size_t	 hold = 0;

	buf -= e->ncarry[i];
	memcpy(buf, e->carry[i], e->ncarry[i]);
	n += e->ncarry[i];
	e->ncarry[i] = 0;
	if (!e->b64 && (hold = http_utf8_hold(buf, n)) > 0) {
		memcpy(e->carry[i], buf + n - hold, hold);
		e->ncarry[i] = hold;
		n -= hold;
	}
	if (n > 0)
		(void)sse_event(e->conn, i == 0 ? "stdout" : "stderr",
		    json_pack("{s:o}", "data", text_json(buf, n, e->b64)));
	if (conn_backlog(e->conn) > STREAM_HIGH && !e->paused) {
		e->paused = true;
		for (i = 0; i < 2; i++)
			if (e->src[i].fd != -1)
				loop_del(e->src[i].fd);
		conn_on_drain(e->conn, exec_drained, e);
	}
}

static void
exec_drained(struct conn *c, void *arg)
{
	struct exec	*e = arg;
	int		 i;

	conn_on_drain(c, NULL, NULL);
	e->paused = false;
	for (i = 0; i < 2; i++)
		if (e->src[i].fd != -1 && loop_add(e->src[i].fd, EPOLLIN,
		    exec_read, &e->src[i]) == -1)
			src_close(&e->src[i]);
	if (e->finish_on_drain) {
		e->finish_on_drain = false;
		e->grace = timer_add(GRACE_MS, exec_grace, e);
	}
	exec_check(e);
}

static void
exec_exited(void *arg, pid_t pid, int st)
{
	struct exec	*e = arg;

	(void)pid;
	e->exited = true;
	e->status = st;
	e->t1 = init_now_ms();
	timer_cancel(e->deadline);
	e->deadline = 0;
	/*
	 * Something it started may hold its output open: take what comes
	 * for a moment, then answer anyway.
	 */
	if (e->src[0].fd != -1 || e->src[1].fd != -1)
		e->grace = timer_add(GRACE_MS, exec_grace, e);
	exec_check(e);
}

static void
exec_check(struct exec *e)
{
	if (e->exited && e->src[0].fd == -1 && e->src[1].fd == -1)
		exec_finish(e);
}

static void
exec_grace(void *arg)
{
	struct exec	*e = arg;

	e->grace = 0;
	if (e->paused) {		/* the client is slow, not the pipe */
		e->finish_on_drain = true;
		return;
	}
	src_close(&e->src[0]);
	src_close(&e->src[1]);
	exec_finish(e);
}

/* The deadline: the whole process group goes. */
static void
exec_timeout(void *arg)
{
	struct exec	*e = arg;

	e->deadline = 0;
	e->timed_out = true;
	(void)kill(-e->pid, SIGKILL);
	(void)kill(e->pid, SIGKILL);
}

static void
exec_finish(struct exec *e)
{
	struct conn	*c = e->conn;
	json_t		*j;
	int		 i;

	conn_on_close(c, NULL, NULL);
	conn_on_drain(c, NULL, NULL);
	if (e->stream) {
		for (i = 0; i < 2; i++)
			if (e->ncarry[i] > 0)
				(void)sse_event(c, i == 0 ? "stdout" : "stderr",
				    json_pack("{s:o}", "data", text_json(
				    e->carry[i], e->ncarry[i], e->b64)));
		j = json_pack("{s:I,s:b}", "duration_ms",
		    (json_int_t)(e->t1 - e->t0), "timed_out", e->timed_out);
		exit_fields(j, e->status);
		(void)sse_event(c, "exit", j);
		conn_end(c);
	} else {
		j = json_pack("{s:o,s:o,s:I,s:b,s:b}",
		    "stdout", text_json(e->out[0].d, e->out[0].len, e->b64),
		    "stderr", text_json(e->out[1].d, e->out[1].len, e->b64),
		    "duration_ms", (json_int_t)(e->t1 - e->t0),
		    "timed_out", e->timed_out, "truncated", e->truncated);
		exit_fields(j, e->status);
		http_json(c, 200, j);
	}
	exec_free(e);
}

/* The client went away: so does the command, its whole group. */
static void
exec_gone(struct conn *c, void *arg)
{
	struct exec	*e = arg;

	(void)c;
	if (!e->exited) {
		(void)kill(-e->pid, SIGKILL);
		(void)kill(e->pid, SIGKILL);
		child_unwatch(e->pid);	/* reaped as an orphan */
	}
	exec_free(e);
}

static void
exec_free(struct exec *e)
{
	src_close(&e->src[0]);
	src_close(&e->src[1]);
	timer_cancel(e->deadline);
	timer_cancel(e->grace);
	free(e->out[0].d);
	free(e->out[1].d);
	free(e);
}

/* exit_code, and signal when a signal ended it (as a shell: 128 + N). */
static void
exit_fields(json_t *j, int st)
{
	if (j == NULL)
		return;
	if (WIFSIGNALED(st)) {
		json_object_set_new(j, "exit_code",
		    json_integer(128 + WTERMSIG(st)));
		json_object_set_new(j, "signal", json_integer(WTERMSIG(st)));
	} else
		json_object_set_new(j, "exit_code",
		    json_integer(WEXITSTATUS(st)));
}

/* --- /processes -------------------------------------------------------- */

void
proc_handle(struct conn *c, const struct req *r)
{
	char		 id[65];
	const char	*p = r->path + strlen("/processes"), *rest;
	struct proc	*pr;
	size_t		 len;

	if (*p == '\0' || !strcmp(p, "/")) {
		if (!strcmp(r->method, "GET"))
			proc_list(c);
		else if (!strcmp(r->method, "POST"))
			proc_start(c, r);
		else
			http_error(c, 405, "method_not_allowed",
			    "GET or POST here");
		return;
	}
	p++;
	len = strcspn(p, "/");
	rest = p + len;
	pr = NULL;
	if (len > 0 && len < sizeof(id)) {
		memcpy(id, p, len);
		id[len] = '\0';
		pr = proc_find(id);
	}
	if (pr == NULL) {
		http_error(c, 404, "not_found", "no such process");
		return;
	}
	if (*rest == '\0' && !strcmp(r->method, "GET"))
		http_json(c, 200, proc_json(pr));
	else if (*rest == '\0' && !strcmp(r->method, "DELETE"))
		proc_delete(c, pr);
	else if (!strcmp(rest, "/logs") && !strcmp(r->method, "GET"))
		proc_logs(c, pr);
	else if (!strcmp(rest, "/wait") && !strcmp(r->method, "POST"))
		proc_wait(c, r, pr);
	else if (*rest == '\0' || !strcmp(rest, "/logs") ||
	    !strcmp(rest, "/wait"))
		http_error(c, 405, "method_not_allowed", "%s is not allowed "
		    "here", r->method);
	else
		http_error(c, 404, "not_found", "no such endpoint");
}

int
proc_count(void)
{
	struct proc	*p;
	int		 n = 0;

	LIST_FOREACH(p, &procs, entry)
		if (p->running)
			n++;
	return n;
}

void
proc_kill_all(int sig)
{
	struct proc	*p;

	LIST_FOREACH(p, &procs, entry)
		if (!p->exited) {
			(void)kill(-p->pid, sig);
			(void)kill(p->pid, sig);
		}
}

static void
proc_start(struct conn *c, const struct req *r)
{
	struct spec	 sp;
	struct proc	*p = NULL, *old;
	json_t		*body, *v;
	const char	*id = NULL;
	char		 made[16];

	if ((body = http_body_json(c, r)) == NULL)
		return;
	if ((v = json_object_get(body, "id")) != NULL && (!json_is_string(v) ||
	    (id = json_string_value(v))[0] == '\0' || strlen(id) > 64 ||
	    strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_.-") != strlen(id))) {
		json_decref(body);
		http_error(c, 400, "bad_request", "id: [A-Za-z0-9_.-]{1,64}");
		return;
	}
	if (spec_parse(c, body, &sp) == -1)
		return;
	while (id == NULL) {		/* one made up: p1, p2, … */
		(void)snprintf(made, sizeof(made), "p%u", ++next_id);
		if (proc_find(made) == NULL)
			id = made;
	}
	if ((old = proc_find(id)) != NULL && old->running) {
		http_error(c, 409, "conflict", "%s is running", id);
		goto out;
	}
	if (old != NULL)
		proc_free(old);		/* an exited one is replaced */
	if (nprocs >= MAX_PROCS) {
		http_error(c, 409, "conflict", "%d processes are kept; DELETE "
		    "some", MAX_PROCS);
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		goto out;
	}
	(void)snprintf(p->id, sizeof(p->id), "%s", id);
	LIST_INIT(&p->followers);
	LIST_INIT(&p->waiters);
	if ((p->pid = spawn_piped(&sp, -1, p->src, p, proc_read)) == -1) {
		http_error(c, 500, "internal", "cannot start: %s",
		    strerror(errno));
		free(p);
		goto out;
	}
	p->cmd = json_incref(json_object_get(sp.body, "cmd"));
	p->running = true;
	p->started_ms = init_wall_ms();
	child_watch(p->pid, proc_exited, p);
	LIST_INSERT_HEAD(&procs, p, entry);
	nprocs++;
	http_json(c, 201, json_pack("{s:s,s:i,s:s,s:I}", "id", p->id, "pid",
	    (int)p->pid, "status", "running", "started_ms",
	    (json_int_t)p->started_ms));
out:
	spec_free(&sp);
}

static void
proc_list(struct conn *c)
{
	struct proc	*p;
	json_t		*a = json_array();

	LIST_FOREACH(p, &procs, entry)
		json_array_append_new(a, proc_json(p));
	http_json(c, 200, json_pack("{s:o}", "processes", a));
}

static json_t *
proc_json(struct proc *p)
{
	json_t	*j;

	j = json_pack("{s:s,s:i,s:O,s:s,s:n,s:I,s:n}", "id", p->id, "pid",
	    (int)p->pid, "cmd", p->cmd, "status", p->running ? "running" :
	    "exited", "exit_code", "started_ms", (json_int_t)p->started_ms,
	    "ended_ms");
	if (j != NULL && !p->running) {
		exit_fields(j, p->status);
		json_object_set_new(j, "ended_ms", json_integer(p->ended_ms));
	}
	return j;
}

static struct proc *
proc_find(const char *id)
{
	struct proc	*p;

	LIST_FOREACH(p, &procs, entry)
		if (!strcmp(p->id, id))
			return p;
	return NULL;
}

static void
proc_logs(struct conn *c, struct proc *p)
{
	struct follower	*f;
	const char	*s = req_query(c, "stream", 0);
	json_t		*j, *t[2];
	char		*buf;
	size_t		 n, skip;
	bool		 b64;
	int		 i;

	if (encoding(c, req_query(c, "encoding", 0), &b64) == -1)
		return;
	if (s != NULL && strcmp(s, "0") != 0 && strcmp(s, "") != 0) {
		if ((f = calloc(1, sizeof(*f))) == NULL) {
			http_error(c, 500, "internal", "out of memory");
			return;
		}
		f->p = p;
		f->conn = c;
		f->b64 = b64;
		f->pos[0] = ring_low(&p->ring[0]);
		f->pos[1] = ring_low(&p->ring[1]);
		LIST_INSERT_HEAD(&p->followers, f, entry);
		conn_on_close(c, follow_gone, f);
		sse_start(c);
		follow_pump(f);
		return;
	}
	for (i = 0; i < 2; i++) {
		n = (size_t)(p->ring[i].total - ring_low(&p->ring[i]));
		if ((buf = malloc(n + 1)) == NULL) {
			http_error(c, 500, "internal", "out of memory");
			json_decref(i == 1 ? t[0] : NULL);
			return;
		}
		ring_copy(&p->ring[i], ring_low(&p->ring[i]), buf, n);
		/* Cut at the front: skip a partial UTF-8 sequence there. */
		for (skip = 0; !b64 && ring_low(&p->ring[i]) > 0 && skip < 3 &&
		    skip < n && (buf[skip] & 0xc0) == 0x80; skip++)
			;
		t[i] = text_json(buf + skip, n - skip, b64);
		free(buf);
	}
	j = json_pack("{s:o,s:o,s:b}", "stdout", t[0], "stderr", t[1],
	    "truncated", ring_low(&p->ring[0]) > 0 || ring_low(&p->ring[1]) >
	    0);
	http_json(c, 200, j);
}

/* SIGTERM (or ?signal=…) to the group, SIGKILL after 3 s; answer at end. */
static void
proc_delete(struct conn *c, struct proc *p)
{
	static const struct {
		const char	*name;
		int		 sig;
	} sigs[] = { { "TERM", SIGTERM }, { "KILL", SIGKILL },
	    { "INT", SIGINT }, { "HUP", SIGHUP } };
	const char	*name = req_query(c, "signal", 0);
	struct waiter	*w;
	size_t		 i;
	int		 sig = SIGTERM;
	json_t		*j;

	if (name != NULL) {
		if (!strncmp(name, "SIG", 3))
			name += 3;
		for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			if (!strcmp(name, sigs[i].name))
				break;
		if (i == sizeof(sigs) / sizeof(sigs[0])) {
			http_error(c, 400, "bad_request",
			    "signal: TERM, KILL, INT or HUP");
			return;
		}
		sig = sigs[i].sig;
	}
	if (!p->running) {
		j = json_pack("{s:s,s:s}", "id", p->id, "status", "exited");
		exit_fields(j, p->status);
		proc_free(p);		/* exited records are forgotten */
		http_json(c, 200, j);
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	w->p = p;
	w->conn = c;
	w->kind = W_KILL;
	w->sock = -1;
	LIST_INSERT_HEAD(&p->waiters, w, entry);
	conn_on_close(c, wait_gone, w);
	if (!p->exited) {
		(void)kill(-p->pid, sig);
		(void)kill(p->pid, sig);
		if (sig != SIGKILL && p->kill_timer == 0)
			p->kill_timer = timer_add(KILL_MS, proc_hardkill, p);
	}
}

static void
proc_hardkill(void *arg)
{
	struct proc	*p = arg;

	p->kill_timer = 0;
	(void)kill(-p->pid, SIGKILL);
	(void)kill(p->pid, SIGKILL);
}

static void
proc_wait(struct conn *c, const struct req *r, struct proc *p)
{
	struct waiter	*w;
	json_t		*body;
	json_int_t	 timeout = WAIT_DEF;

	if ((body = http_body_json(c, r)) == NULL)
		return;
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		json_decref(body);
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	w->p = p;
	w->conn = c;
	w->sock = -1;
	if (wait_args(c, body, w, &timeout) == -1) {
		json_decref(body);
		free(w->path);
		free(w);
		return;
	}
	json_decref(body);
	LIST_INSERT_HEAD(&p->waiters, w, entry);
	conn_on_close(c, wait_gone, w);
	/* What is already kept counts; then an ended process cannot match. */
	if (w->kind == W_LOG && wait_log(w, !p->running))
		return;
	if (!p->running) {
		wait_done(w, 409);
		return;
	}
	if ((w->deadline = timer_add((uint64_t)timeout, wait_timeout, w)) ==
	    -1) {
		wait_done(w, 500);
		return;
	}
	if (w->kind == W_PORT)
		wait_port_try(w);
}

/*
 * One of log (a regex), or port with an optional path; timeout_ms. Fills
 * w; -1 after answering.
 */
static int
wait_args(struct conn *c, json_t *body, struct waiter *w,
    json_int_t *timeout)
{
	json_t		*log = json_object_get(body, "log");
	json_t		*port = json_object_get(body, "port");
	json_t		*path = json_object_get(body, "path");
	json_t		*tmo = json_object_get(body, "timeout_ms");
	const char	*ps = json_string_value(path);
	char		 err[128];
	int		 rc;

	if ((log != NULL) == (port != NULL) || (log != NULL &&
	    !json_is_string(log)) || (port != NULL &&
	    (!json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535)) || (path != NULL &&
	    (port == NULL || ps == NULL || ps[0] != '/' || strlen(ps) > 1024 ||
	    strpbrk(ps, " \r\n\t") != NULL)) || (tmo != NULL &&
	    (!json_is_integer(tmo) || (*timeout = json_integer_value(tmo)) <
	    1 || *timeout > TIMEOUT_MAX))) {
		http_error(c, 400, "bad_request", "one of log (a regex) or "
		    "port (1-65535, with an optional path /…); timeout_ms 1 "
		    "to %d", TIMEOUT_MAX);
		return -1;
	}
	if (port != NULL) {
		w->kind = W_PORT;
		w->port = (int)json_integer_value(port);
		if (ps != NULL && (w->path = strdup(ps)) == NULL) {
			http_error(c, 500, "internal", "out of memory");
			return -1;
		}
		return 0;
	}
	w->kind = W_LOG;
	if ((rc = regcomp(&w->re, json_string_value(log), REG_EXTENDED |
	    REG_NOSUB)) != 0) {
		regerror(rc, &w->re, err, sizeof(err));
		http_error(c, 400, "bad_request", "log: %s", err);
		return -1;
	}
	w->have_re = true;
	w->pos[0] = ring_low(&w->p->ring[0]);
	w->pos[1] = ring_low(&w->p->ring[1]);
	return 0;
}

static void
proc_read(void *arg, uint32_t events)
{
	struct src	*s = arg;
	struct proc	*p = s->owner;
	struct follower	*f, *fn;
	struct waiter	*w, *wn;
	char		 buf[READ_CHUNK];
	ssize_t		 n;

	(void)events;
	n = read(s->fd, buf, sizeof(buf));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		src_close(s);
		proc_check(p);
		return;
	}
	if (ring_put(&p->ring[s->idx], buf, (size_t)n) == -1)
		return;
	LIST_FOREACH_SAFE(f, &p->followers, entry, fn)
		if (!f->paused)
			follow_pump(f);
	LIST_FOREACH_SAFE(w, &p->waiters, entry, wn)
		if (w->kind == W_LOG)
			(void)wait_log(w, false);
}

static void
proc_exited(void *arg, pid_t pid, int st)
{
	struct proc	*p = arg;

	(void)pid;
	p->exited = true;
	p->status = st;
	p->ended_ms = init_wall_ms();
	timer_cancel(p->kill_timer);
	p->kill_timer = 0;
	if (p->src[0].fd != -1 || p->src[1].fd != -1)
		p->grace = timer_add(GRACE_MS, proc_grace, p);
	proc_check(p);
}

static void
proc_check(struct proc *p)
{
	if (p->running && p->exited && p->src[0].fd == -1 &&
	    p->src[1].fd == -1)
		proc_finish(p);
}

/* Output held open by what it started: the logs keep it, it has ended. */
static void
proc_grace(void *arg)
{
	struct proc	*p = arg;

	p->grace = 0;
	if (p->running)
		proc_finish(p);
}

static void
proc_finish(struct proc *p)
{
	struct follower	*f, *fn;
	struct waiter	*w, *wn;
	bool		 forget = false;

	p->running = false;
	timer_cancel(p->grace);
	p->grace = 0;
	LIST_FOREACH_SAFE(f, &p->followers, entry, fn)
		if (!f->paused)
			follow_pump(f);
	LIST_FOREACH_SAFE(w, &p->waiters, entry, wn) {
		if (w->kind == W_LOG && wait_log(w, true))
			continue;
		if (w->kind == W_KILL) {
			forget = true;
			/* Stragglers of a group told to end. */
			(void)kill(-p->pid, SIGKILL);
		}
		wait_done(w, w->kind == W_KILL ? 200 : 409);
	}
	if (forget)
		proc_free(p);
}

/* Only once nothing waits on it (a follower ends with it). */
static void
proc_free(struct proc *p)
{
	struct follower	*f;
	struct waiter	*w;

	while ((f = LIST_FIRST(&p->followers)) != NULL) {
		conn_end(f->conn);
		follow_free(f);
	}
	while ((w = LIST_FIRST(&p->waiters)) != NULL)
		wait_done(w, 409);
	if (!p->exited)
		child_unwatch(p->pid);
	src_close(&p->src[0]);
	src_close(&p->src[1]);
	timer_cancel(p->grace);
	timer_cancel(p->kill_timer);
	free(p->ring[0].buf);
	free(p->ring[1].buf);
	json_decref(p->cmd);
	LIST_REMOVE(p, entry);
	nprocs--;
	free(p);
}

/* --- log rings and their followers -------------------------------------- */

static int
ring_put(struct ring *r, const char *p, size_t n)
{
	size_t	 cap, at, k;
	char	*b;

	if (r->cap < RING_MAX && r->total + n > r->cap) {
		for (cap = r->cap ? r->cap : 4096; cap < r->total + n &&
		    cap < RING_MAX;)
			cap *= 2;
		if ((b = realloc(r->buf, cap)) == NULL)
			return -1;
		r->buf = b;
		r->cap = cap;	/* never wrapped yet: the bytes stay put */
	}
	if (n > r->cap) {
		p += n - r->cap;
		r->total += n - r->cap;
		n = r->cap;
	}
	at = (size_t)(r->total % r->cap);
	k = r->cap - at < n ? r->cap - at : n;
	memcpy(r->buf + at, p, k);
	memcpy(r->buf, p + k, n - k);
	r->total += n;
	return 0;
}

static uint64_t
ring_low(const struct ring *r)
{
	return r->total > r->cap ? r->total - r->cap : 0;
}

static void
ring_copy(const struct ring *r, uint64_t from, char *dst, size_t n)
{
	size_t	 at, k;

	if (n == 0)
		return;
	at = (size_t)(from % r->cap);
	k = r->cap - at < n ? r->cap - at : n;
	memcpy(dst, r->buf + at, k);
	memcpy(dst + k, r->buf, n - k);
}

/*
 * Sends what the follower has not seen, a chunk an event, until the
 * queue is high; then the drain resumes it. A follower that falls more
 * than a ring behind skips what the ring lost. The process's end, once
 * all is sent, is the exit event and the end of the stream.
 */
static void
follow_pump(struct follower *f)
{
	struct proc	*p = f->p;
	struct ring	*r;
	char		 buf[READ_CHUNK];
	size_t		 n, avail;
	json_t		*j;
	int		 i;

	for (i = 0; i < 2; i++) {
		r = &p->ring[i];
		if (f->pos[i] < ring_low(r))
			f->pos[i] = ring_low(r);
		while (f->pos[i] < r->total) {
			if (conn_backlog(f->conn) > STREAM_HIGH) {
				f->paused = true;
				conn_on_drain(f->conn, follow_drained, f);
				return;
			}
			avail = (size_t)(r->total - f->pos[i]);
			n = avail > sizeof(buf) ? sizeof(buf) : avail;
			ring_copy(r, f->pos[i], buf, n);
			/* A cut UTF-8 sequence waits for its end, if any. */
			if (!f->b64 && (n < avail || p->running))
				n -= http_utf8_hold(buf, n);
			if (n == 0)
				break;
			if (sse_event(f->conn, i == 0 ? "stdout" : "stderr",
			    json_pack("{s:o}", "data", text_json(buf, n,
			    f->b64))) == -1)
				break;
			f->pos[i] += n;
		}
	}
	if (p->running)
		return;
	j = json_pack("{s:I}", "ended_ms", (json_int_t)p->ended_ms);
	exit_fields(j, p->status);
	(void)sse_event(f->conn, "exit", j);
	conn_end(f->conn);
	follow_free(f);
}

static void
follow_drained(struct conn *c, void *arg)
{
	struct follower	*f = arg;

	conn_on_drain(c, NULL, NULL);
	f->paused = false;
	follow_pump(f);
}

static void
follow_gone(struct conn *c, void *arg)
{
	(void)c;
	follow_free(arg);
}

static void
follow_free(struct follower *f)
{
	conn_on_close(f->conn, NULL, NULL);
	conn_on_drain(f->conn, NULL, NULL);
	LIST_REMOVE(f, entry);
	free(f);
}

/* --- waits ------------------------------------------------------------ */

/*
 * Matches whole lines from where the waiter is; a last line without
 * its newline only at the end (final). True when it answered.
 */
static bool
wait_log(struct waiter *w, bool final)
{
	static char	 line[LINE_MAX_W + 1];
	struct ring	*r;
	char		*nl;
	size_t		 n, len, used;
	int		 i;

	for (i = 0; i < 2; i++) {
		r = &w->p->ring[i];
		if (w->pos[i] < ring_low(r))
			w->pos[i] = ring_low(r);
		while (w->pos[i] < r->total) {
			n = r->total - w->pos[i] > LINE_MAX_W ? LINE_MAX_W :
			    (size_t)(r->total - w->pos[i]);
			ring_copy(r, w->pos[i], line, n);
			if ((nl = memchr(line, '\n', n)) != NULL) {
				len = (size_t)(nl - line);
				used = len + 1;
			} else if (n == LINE_MAX_W || final)
				len = used = n;
			else
				break;
			if (len > 0 && line[len - 1] == '\r')
				len--;
			line[len] = '\0';
			w->pos[i] += used;
			if (regexec(&w->re, line, 0, NULL, 0) != 0)
				continue;
			conn_on_close(w->conn, NULL, NULL);
			http_json(w->conn, 200, json_pack("{s:b,s:o}", "ok", 1,
			    "line", http_jstr(line, len)));
			waiter_free(w);
			return true;
		}
	}
	return false;
}

/* One TCP connect to 127.0.0.1:port; a failure tries again shortly. */
static void
wait_port_try(void *arg)
{
	struct waiter		*w = arg;
	struct sockaddr_in	 sin;

	w->retry = 0;
	w->phase = 0;
	w->rlen = 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)w->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((w->sock = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		wait_port_fail(w);
		return;
	}
	if ((connect(w->sock, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno != EINPROGRESS) ||
	    loop_add(w->sock, EPOLLOUT, wait_port_io, w) == -1) {
		wait_port_fail(w);
		return;
	}
	w->retry = timer_add(PORT_TRY_MS, wait_port_slow, w);
}

/* Connected but silent, or no answer: this attempt has failed. */
static void
wait_port_slow(void *arg)
{
	struct waiter	*w = arg;

	w->retry = 0;
	wait_port_fail(w);
}

static void
wait_port_io(void *arg, uint32_t events)
{
	struct waiter	*w = arg;
	char		 req[1200];
	socklen_t	 len = sizeof(int);
	ssize_t		 n;
	int		 err = 0;

	if (w->phase == 0) {
		if (getsockopt(w->sock, SOL_SOCKET, SO_ERROR, &err, &len) ==
		    -1 || err != 0 || (events & EPOLLERR)) {
			wait_port_fail(w);
			return;
		}
		if (w->path == NULL) {
			wait_done(w, 200);
			return;
		}
		/* Any status will do: the server answers HTTP. */
		n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: "
		    "127.0.0.1:%d\r\nConnection: close\r\n\r\n", w->path,
		    w->port);
		if (send(w->sock, req, (size_t)n, MSG_NOSIGNAL) != n ||
		    loop_mod(w->sock, EPOLLIN, wait_port_io, w) == -1) {
			wait_port_fail(w);
			return;
		}
		w->phase = 1;
		return;
	}
	n = recv(w->sock, w->rbuf + w->rlen, sizeof(w->rbuf) - w->rlen, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		wait_port_fail(w);
		return;
	}
	w->rlen += (size_t)n;
	if (memcmp(w->rbuf, "HTTP/", w->rlen) != 0)
		wait_port_fail(w);
	else if (w->rlen == sizeof(w->rbuf))
		wait_done(w, 200);
}

static void
wait_port_fail(struct waiter *w)
{
	if (w->sock != -1) {
		loop_del(w->sock);
		close(w->sock);
		w->sock = -1;
	}
	timer_cancel(w->retry);
	if ((w->retry = timer_add(PORT_RETRY_MS, wait_port_try, w)) == -1)
		wait_done(w, 500);
}

static void
wait_timeout(void *arg)
{
	struct waiter	*w = arg;

	w->deadline = 0;
	wait_done(w, 408);
}

/* Answers and frees the waiter: 200, 408 timeout, 409 exited, 500. */
static void
wait_done(struct waiter *w, int status)
{
	struct conn	*c = w->conn;
	json_t		*j;

	conn_on_close(c, NULL, NULL);
	if (w->kind == W_KILL && status == 200) {
		j = json_pack("{s:s,s:s}", "id", w->p->id, "status", "exited");
		exit_fields(j, w->p->status);
		http_json(c, 200, j);
	} else if (status == 200)
		http_json(c, 200, json_pack("{s:b}", "ok", 1));
	else if (status == 408)
		http_error(c, 408, "timeout", "nothing within timeout_ms");
	else if (status == 409)
		http_error(c, 409, "exited", "%s ended first", w->p->id);
	else
		http_error(c, 500, "internal", "cannot wait: %s",
		    strerror(errno));
	waiter_free(w);
}

static void
wait_gone(struct conn *c, void *arg)
{
	(void)c;
	waiter_free(arg);
}

static void
waiter_free(struct waiter *w)
{
	if (w->sock != -1) {
		loop_del(w->sock);
		close(w->sock);
	}
	timer_cancel(w->deadline);
	timer_cancel(w->retry);
	if (w->have_re)
		regfree(&w->re);
	free(w->path);
	LIST_REMOVE(w, entry);
	free(w);
}

/* --- shared --------------------------------------------------------- */

/*
 * cmd (an array of strings), cwd and env, into sp. Takes body; -1 after
 * answering.
 */
static int
spec_parse(struct conn *c, json_t *body, struct spec *sp)
{
	json_t	*cmd, *v;
	size_t	 i, n;

	memset(sp, 0, sizeof(*sp));
	sp->body = body;
	cmd = json_object_get(body, "cmd");
	if (!json_is_array(cmd) || (n = json_array_size(cmd)) == 0 ||
	    n > MAX_ARGS)
		goto bad_cmd;
	if ((sp->argv = calloc(n + 1, sizeof(*sp->argv))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		goto fail;
	}
	json_array_foreach(cmd, i, v) {
		if (!json_is_string(v))
			goto bad_cmd;
		sp->argv[i] = json_string_value(v);
	}
	if (spec_cwd(c, json_object_get(body, "cwd"), sp) == -1 ||
	    spec_env(c, json_object_get(body, "env"), sp) == -1)
		goto fail;
	return 0;
bad_cmd:
	http_error(c, 400, "bad_request", "cmd: a non-empty array of strings");
fail:
	spec_free(sp);
	return -1;
}

/* A folder; by default /workspace when it exists, else pincer-init's. */
static int
spec_cwd(struct conn *c, json_t *cwd, struct spec *sp)
{
	struct stat	 st;

	if (cwd == NULL) {
		if (stat("/workspace", &st) == 0 && S_ISDIR(st.st_mode))
			sp->cwd = "/workspace";
		return 0;
	}
	if (!json_is_string(cwd) || json_string_value(cwd)[0] == '\0') {
		http_error(c, 400, "bad_request", "cwd: a path");
		return -1;
	}
	sp->cwd = json_string_value(cwd);
	if (stat(sp->cwd, &st) == -1) {
		http_error(c, 400, "bad_request", "cwd %s: %s", sp->cwd,
		    strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		http_error(c, 400, "bad_request", "cwd %s: not a folder",
		    sp->cwd);
		return -1;
	}
	return 0;
}

/* An object of strings into "K=V", one block: pointers, then strings. */
static int
spec_env(struct conn *c, json_t *env, struct spec *sp)
{
	const char	*k;
	json_t		*v;
	size_t		 i = 0, size = 0;
	char		*p;
	int		 n;

	if (env != NULL && (!json_is_object(env) || json_object_size(env) >
	    MAX_ARGS))
		goto bad;
	json_object_foreach(env, k, v) {
		if (!json_is_string(v) || *k == '\0' || strchr(k, '=') != NULL)
			goto bad;
		size += strlen(k) + json_string_length(v) + 2;
	}
	if ((sp->env = malloc((json_object_size(env) + 1) * sizeof(char *) +
	    size)) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return -1;
	}
	p = (char *)(sp->env + json_object_size(env) + 1);
	json_object_foreach(env, k, v) {
		sp->env[i++] = p;
		n = snprintf(p, size, "%s=%s", k, json_string_value(v));
		p += n + 1;
		size -= (size_t)n + 1;
	}
	sp->env[i] = NULL;
	return 0;
bad:
	http_error(c, 400, "bad_request", "env: an object of strings, names "
	    "without '='");
	return -1;
}

static void
spec_free(struct spec *sp)
{
	free(sp->argv);
	free(sp->env);
	json_decref(sp->body);
	memset(sp, 0, sizeof(*sp));
}

/*
 * Starts sp with stdout and stderr on pipes that fn reads, for an exec
 * or a proc (owner). Our ends are non-blocking; the command's are not.
 */
static pid_t
spawn_piped(struct spec *sp, int in, struct src src[2], void *owner,
    loop_fn fn)
{
	int	 fds[2][2] = { { -1, -1 }, { -1, -1 } }, i, saved;
	pid_t	 pid;

	for (i = 0; i < 2; i++)
		if (pipe2(fds[i], O_CLOEXEC) == -1 ||
		    fcntl(fds[i][0], F_SETFL, O_NONBLOCK) == -1)
			goto fail;
	if ((pid = init_spawn((char *const *)sp->argv, sp->cwd, sp->env, in,
	    fds[0][1], fds[1][1])) == -1)
		goto fail;
	for (i = 0; i < 2; i++) {
		close(fds[i][1]);
		src[i].owner = owner;
		src[i].idx = i;
		src[i].fd = fds[i][0];
		if (loop_add(src[i].fd, EPOLLIN, fn, &src[i]) == -1) {
			close(src[i].fd);
			src[i].fd = -1;
		}
	}
	return pid;
fail:
	saved = errno;
	for (i = 0; i < 4; i++)
		if (fds[i / 2][i % 2] != -1)
			close(fds[i / 2][i % 2]);
	errno = saved;
	return -1;
}

static void
src_close(struct src *s)
{
	if (s->fd == -1)
		return;
	loop_del(s->fd);
	close(s->fd);
	s->fd = -1;
}

static json_t *
text_json(const char *p, size_t n, bool b64)
{
	json_t	*j;
	char	*s;
	size_t	 len;

	if (!b64)
		return http_jstr(p != NULL ? p : "", n);
	if ((s = http_base64(p != NULL ? p : "", n, &len)) == NULL)
		return NULL;
	j = json_stringn_nocheck(s, len);
	free(s);
	return j;
}

/* "utf8" (or absent) or "base64"; -1 after answering. */
static int
encoding(struct conn *c, const char *name, bool *b64)
{
	*b64 = false;
	if (name == NULL || !strcmp(name, "utf8") || !strcmp(name, "utf-8"))
		return 0;
	if (!strcmp(name, "base64")) {
		*b64 = true;
		return 0;
	}
	http_error(c, 400, "bad_request", "encoding: utf8 or base64");
	return -1;
}
