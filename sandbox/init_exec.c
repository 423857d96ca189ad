/* SPDX-License-Identifier: MIT */
/*
 * init_exec.c: POST /exec runs one command and answers with its output,
 * buffered or as SSE, and kills it when its client goes away. Its exit
 * fields are shared with the background processes of init_proc.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

#define OUT_MAX		(4 << 20)	/* buffered exec, per stream */
#define TIMEOUT_DEF	60000

struct sbuf {
	char		*d;		/* owned */
	size_t		 len, cap;
};

struct exec {
	struct conn	*conn;
	pid_t		 pid;
	struct spawn_src src[2];
	uint64_t	 t0, t1;	/* started, exited */
	long		 deadline, grace;
	bool		 stream, b64, exited, timed_out, truncated;
	bool		 paused, finish_on_drain;
	int		 status;
	struct sbuf	 out[2];	/* buffered */
	char		 carry[2][4];	/* streamed: a cut UTF-8 sequence */
	size_t		 ncarry[2];
};

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

void
exec_handle(struct conn *c, const struct req *r)
{
	struct spawn_spec	 sp;
	struct exec		*e;
	json_t			*body;
	json_int_t		 timeout = TIMEOUT_DEF;
	int			 infd = -1;

	if ((body = http_body_json(c, r)) == NULL)
		return;
	if (spawn_spec(c, body, &sp) == -1)
		return;
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		goto out;
	}
	if (exec_opts(c, body, e, &timeout, &infd) == -1)
		goto out;
	e->conn = c;
	e->t0 = loop_now_ms();
	if ((e->pid = spawn_piped(&sp, infd, e->src, e, exec_read)) == -1) {
		http_error(c, 500, "internal", "cannot start: %s",
		    strerror(errno));
		goto out;
	}
	init_child_watch(e->pid, exec_exited, e);
	conn_on_close(c, exec_gone, e);
	if ((e->deadline = loop_timer_add((uint64_t)timeout, exec_timeout,
	    e)) == -1) {
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
	spawn_spec_free(&sp);
}

/* exit_code, and signal when a signal ended it (as a shell: 128 + N). */
void
exec_exit_fields(json_t *j, int st)
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

/* --- helpers ---------------------------------------------------------- */

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
	    *timeout > EXEC_TIMEOUT_MAX)) {
		http_error(c, 400, "bad_request", "timeout_ms: 1 to %d",
		    EXEC_TIMEOUT_MAX);
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
	if (text_encoding(c, json_string_value(v), &e->b64) == -1)
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
	struct spawn_src	*s = arg;
	struct exec		*e = s->owner;
	char			 buf[EXEC_READ_CHUNK + 4];
	ssize_t			 n;

	(void)events;
	n = read(s->fd, buf + 4, EXEC_READ_CHUNK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		spawn_src_close(s);
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
 * does not become U+FFFD. Above EXEC_STREAM_HIGH queued, reading stops until
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
	if (!e->b64 && (hold = text_utf8_hold(buf, n)) > 0) {
		memcpy(e->carry[i], buf + n - hold, hold);
		e->ncarry[i] = hold;
		n -= hold;
	}
	if (n > 0)
		(void)sse_event(e->conn, i == 0 ? "stdout" : "stderr",
		    json_pack("{s:o}", "data", text_json(buf, n, e->b64)));
	if (conn_backlog(e->conn) > EXEC_STREAM_HIGH && !e->paused) {
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
			spawn_src_close(&e->src[i]);
	if (e->finish_on_drain) {
		e->finish_on_drain = false;
		e->grace = loop_timer_add(EXEC_GRACE_MS, exec_grace, e);
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
	e->t1 = loop_now_ms();
	loop_timer_cancel(e->deadline);
	e->deadline = 0;
	/*
	 * Something it started may hold its output open: take what comes
	 * for a moment, then answer anyway.
	 */
	if (e->src[0].fd != -1 || e->src[1].fd != -1)
		e->grace = loop_timer_add(EXEC_GRACE_MS, exec_grace, e);
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
	spawn_src_close(&e->src[0]);
	spawn_src_close(&e->src[1]);
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
		exec_exit_fields(j, e->status);
		(void)sse_event(c, "exit", j);
		conn_end(c);
	} else {
		j = json_pack("{s:o,s:o,s:I,s:b,s:b}",
		    "stdout", text_json(e->out[0].d, e->out[0].len, e->b64),
		    "stderr", text_json(e->out[1].d, e->out[1].len, e->b64),
		    "duration_ms", (json_int_t)(e->t1 - e->t0),
		    "timed_out", e->timed_out, "truncated", e->truncated);
		exec_exit_fields(j, e->status);
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
		init_child_unwatch(e->pid);	/* reaped as an orphan */
	}
	exec_free(e);
}

static void
exec_free(struct exec *e)
{
	spawn_src_close(&e->src[0]);
	spawn_src_close(&e->src[1]);
	loop_timer_cancel(e->deadline);
	loop_timer_cancel(e->grace);
	free(e->out[0].d);
	free(e->out[1].d);
	free(e);
}
