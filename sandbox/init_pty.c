/* SPDX-License-Identifier: MIT */
/*
 * init_pty.c: the terminals themselves. Each is a shell on a PTY that
 * outlives its client and keeps the last 256 KiB of its output for the
 * next one; the client, one at a time, is a WebSocket (init_ws.c) whose
 * messages are keys for the shell or a resize.
 */
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "init.h"

#define PTY_RING	(256 * 1024)	/* output kept for a re-attach */
#define PTY_READ	(16 * 1024)	/* one read of the PTY */
#define PTY_KILL_MS	2000		/* SIGHUP, then SIGKILL */
#define PTY_OUT_HIGH	(256 * 1024)	/* queued: stop reading the PTY */
/* The most ever queued: HIGH, one read, then a drain at exit (a ring). */
#define PTY_OUT_MAX	(PTY_OUT_HIGH + PTY_READ + PTY_RING + 1024)
#define PTY_KEYS_HIGH	(64 * 1024)	/* keys for the PTY: stop parsing */
#define PTY_KEYS_MAX	(PTY_KEYS_HIGH + WS_MSG_MAX)

struct pty_waiter {			/* a DELETE answered at exit */
	struct conn	*c;
	struct pty	*t;
	struct pty_waiter *next;
};

struct pty {
	struct pty	*next;
	char		 id[PTY_ID_MAX + 1];
	pid_t		 pid;
	pid_t		 fg;		/* foreground group at SIGHUP */
	int		 master;	/* the PTY, non-blocking */
	uint32_t	 ev;		/* registered events, 0: out of loop */
	bool		 eof;		/* the PTY hung up: read no more */
	unsigned short	 cols, rows;
	char		*ring;		/* PTY_RING bytes, owned */
	size_t		 rhead, rlen;	/* next write; bytes kept */
	bool		 wrapped;	/* older output was lost */
	struct ws_buf	 keys;		/* for the PTY, not yet written */
	struct ws	*ws;		/* the attached client, or NULL */
	long		 kill_timer;
	struct pty_waiter *waiters;
};

static int	pty_open(struct pty *, char *, size_t);
static void	pty_free(struct pty *);
static void	pty_exited(void *, pid_t, int);
static void	pty_io(void *, uint32_t);
static void	pty_read(struct pty *);
static void	pty_write(struct pty *);
static void	pty_output(struct pty *, const char *, size_t);
static void	pty_update(struct pty *);
static void	pty_replay(struct pty *, struct ws *);
static void	pty_kill(void *);
static void	pty_answer(struct pty *, int);
static void	waiter_gone(struct conn *, void *);
static void	pty_ws_message(void *, struct ws *, const char *, size_t,
		    bool);
static void	pty_keys(struct pty *, struct ws *, const char *, size_t);
static bool	pty_ws_stalled(void *);
static void	pty_ws_flushed(void *);
static void	pty_ws_detached(void *);

static const struct ws_owner pty_ws_owner = {
	.message = pty_ws_message,
	.stalled = pty_ws_stalled,
	.flushed = pty_ws_flushed,
	.detached = pty_ws_detached,
};

static struct pty	*ptys;		/* every live terminal */
static int		 nptys;

struct pty *
pty_new(const char *id, unsigned short cols, unsigned short rows)
{
	struct pty	*t;
	char		 name[128];
	int		 slave = -1, saved;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->master = -1;
	memcpy(t->id, id, strlen(id) + 1);
	t->cols = cols;
	t->rows = rows;
	ws_buf_init(&t->keys, PTY_KEYS_MAX);
	if ((t->ring = malloc(PTY_RING)) == NULL ||
	    (slave = pty_open(t, name, sizeof(name))) == -1)
		goto fail;
	if ((t->pid = fork()) == -1)
		goto fail;
	if (t->pid == 0)
		spawn_shell(slave);
	close(slave);
	slave = -1;
	init_child_watch(t->pid, pty_exited, t);
	t->next = ptys;
	ptys = t;
	nptys++;
	pty_update(t);
	return t;
fail:
	saved = errno;
	if (slave != -1)
		close(slave);
	pty_free(t);
	errno = saved;
	return NULL;
}

struct pty *
pty_find(const char *id)
{
	struct pty	*t;

	for (t = ptys; t != NULL; t = t->next)
		if (!strcmp(t->id, id))
			return t;
	return NULL;
}

/* The terminal after t, the first with NULL; NULL after the last. */
struct pty *
pty_next(struct pty *t)
{
	return t == NULL ? ptys : t->next;
}

int
pty_count(void)
{
	return nptys;
}

/*
 * Run on a host (tests), init.c signals what we started. An interactive
 * shell ignores SIGTERM, so a SIGTERM also brings a SIGHUP, which is
 * what a shell takes as "your terminal is gone".
 */
void
pty_kill_all(int sig)
{
	struct pty	*t;

	for (t = ptys; t != NULL; t = t->next) {
		if (sig == SIGTERM) {
			(void)kill(-t->pid, SIGHUP);
			(void)kill(t->pid, SIGHUP);
		}
		(void)kill(-t->pid, sig);
		(void)kill(t->pid, sig);
	}
}

/* A WebSocket on fd with room for what a terminal may queue. */
struct ws *
pty_ws_new(int fd)
{
	return ws_new(fd, PTY_OUT_MAX);
}

/*
 * One client per terminal: a new attach takes over, and the old one is
 * closed with 1000 and the reason "attached elsewhere" (1000: nothing
 * went wrong, so a client does not reconnect in a fight over it).
 */
void
pty_attach(struct pty *t, struct ws *w)
{
	struct ws	*old = t->ws;

	if (old != NULL) {
		ws_attach(old, NULL, NULL);
		ws_close(old, 1000, "attached elsewhere");
		ws_update(old);
	}
	t->ws = w;
	ws_attach(w, &pty_ws_owner, t);
	ws_text(w, json_pack("{s:s,s:s,s:I,s:i,s:i}", "type", "ready", "id",
	    t->id, "pid", (json_int_t)t->pid, "cols", t->cols, "rows",
	    t->rows));
	pty_replay(t, w);
	ws_update(w);
	pty_update(t);
}

/* 0 keeps a size; the kernel tells the foreground group (SIGWINCH). */
void
pty_resize(struct pty *t, long cols, long rows)
{
	struct winsize	 wsz;

	if (cols > 0)
		t->cols = (unsigned short)cols;
	if (rows > 0)
		t->rows = (unsigned short)rows;
	memset(&wsz, 0, sizeof(wsz));
	wsz.ws_col = t->cols;
	wsz.ws_row = t->rows;
	if (t->master != -1)
		(void)ioctl(t->master, TIOCSWINSZ, &wsz);
}

/*
 * SIGHUP is a terminal's "you are gone": to the shell (a session and
 * group leader), and to the job in the foreground, which is a group of
 * its own under job control. SIGKILL follows unless it ends in time.
 */
void
pty_hangup(struct pty *t)
{
	pid_t	 fg;

	if (t->kill_timer != 0)
		return;
	if (t->master != -1 && (fg = tcgetpgrp(t->master)) > 1 &&
	    fg != t->pid)
		t->fg = fg;
	(void)kill(-t->pid, SIGHUP);
	(void)kill(t->pid, SIGHUP);
	if (t->fg > 1)
		(void)kill(-t->fg, SIGHUP);
	if ((t->kill_timer = loop_timer_add(PTY_KILL_MS, pty_kill, t)) == -1) {
		t->kill_timer = 0;
		pty_kill(t);
	}
}

/* DELETE: answered once the shell is gone, as DELETE /processes is. */
void
pty_delete(struct conn *c, struct pty *t)
{
	struct pty_waiter	*wt;

	if ((wt = calloc(1, sizeof(*wt))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	wt->c = c;
	wt->t = t;
	wt->next = t->waiters;
	t->waiters = wt;
	conn_on_close(c, waiter_gone, wt);
	pty_hangup(t);
}

json_t *
pty_json(const struct pty *t)
{
	return json_pack("{s:s,s:I,s:i,s:i,s:b}", "id", t->id, "pid",
	    (json_int_t)t->pid, "cols", t->cols, "rows", t->rows, "attached",
	    t->ws != NULL);
}

/* --- the shell and its PTY -------------------------------------------- */

/*
 * The PTY pair. PID 1 opens the slave too (O_NOCTTY: it must never get
 * a controlling terminal) so that the master cannot see a hang-up before
 * the shell holds it; the parent's copy closes right after fork, and the
 * master's EIO then means every holder of the slave is gone.
 */
static int
pty_open(struct pty *t, char *name, size_t len)
{
	struct winsize	 wsz;

	if ((t->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1 ||
	    grantpt(t->master) == -1 || unlockpt(t->master) == -1 ||
	    ptsname_r(t->master, name, len) != 0 ||
	    fcntl(t->master, F_SETFL, O_NONBLOCK) == -1)
		return -1;
	memset(&wsz, 0, sizeof(wsz));
	wsz.ws_col = t->cols;
	wsz.ws_row = t->rows;
	if (ioctl(t->master, TIOCSWINSZ, &wsz) == -1)
		return -1;
	return open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

static void
pty_free(struct pty *t)
{
	struct pty	**pp;

	for (pp = &ptys; *pp != NULL; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			nptys--;
			break;
		}
	if (t->ws != NULL)
		ws_attach(t->ws, NULL, NULL);
	loop_timer_cancel(t->kill_timer);
	if (t->master != -1) {
		loop_del(t->master);
		close(t->master);
	}
	ws_buf_free(&t->keys);
	free(t->ring);
	free(t);
}

/*
 * The shell is gone. What it wrote last is still in the PTY: read it
 * (bounded by a ring's worth), then the client gets the exit frame and a
 * close (1000). The id is free again at once: a new attach starts anew.
 */
static void
pty_exited(void *arg, pid_t pid, int st)
{
	struct pty	*t = arg;
	struct ws	*w;
	size_t		 got = 0;
	ssize_t		 n;
	char		 buf[PTY_READ];
	int		 code;

	(void)pid;
	code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	while (!t->eof && got < PTY_RING && (n = read(t->master, buf,
	    PTY_RING - got < sizeof(buf) ? PTY_RING - got :
	    sizeof(buf))) > 0) {
		pty_output(t, buf, (size_t)n);
		got += (size_t)n;
	}
	if ((w = t->ws) != NULL) {
		ws_text(w, json_pack("{s:s,s:i}", "type", "exit", "code",
		    code));
		ws_close(w, 1000, "");
		ws_update(w);
	}
	pty_answer(t, st);
	pty_free(t);
}

static void
pty_io(void *arg, uint32_t events)
{
	struct pty	*t = arg;

	if (events & EPOLLOUT)
		pty_write(t);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		pty_read(t);
	/* Keys drained: the client's parser and reads may go on. */
	if (t->ws != NULL && t->keys.len <= PTY_KEYS_HIGH)
		ws_resume(t->ws);
	pty_update(t);
}

/* EIO (or 0): every holder of the slave is gone, the shell's exit next. */
static void
pty_read(struct pty *t)
{
	char	 buf[PTY_READ];
	ssize_t	 n;

	if (t->eof)
		return;
	n = read(t->master, buf, sizeof(buf));
	if (n > 0)
		pty_output(t, buf, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		t->eof = true;
}

static void
pty_write(struct pty *t)
{
	ssize_t	 n;

	while (t->keys.len > 0 && !t->eof) {
		n = write(t->master, t->keys.b + t->keys.off, t->keys.len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			t->eof = true;
			break;
		}
		ws_buf_eat(&t->keys, (size_t)n);
	}
	if (t->eof)
		ws_buf_eat(&t->keys, t->keys.len);
}

/* Kept in the ring; sent as one binary frame to the client, if any. */
static void
pty_output(struct pty *t, const char *p, size_t n)
{
	size_t	 m = n, first;

	if (t->ws != NULL)
		ws_binary(t->ws, p, n);
	if (m > PTY_RING) {
		p += m - PTY_RING;
		m = PTY_RING;
	}
	first = PTY_RING - t->rhead < m ? PTY_RING - t->rhead : m;
	memcpy(t->ring + t->rhead, p, first);
	memcpy(t->ring, p + first, m - first);
	t->rhead = (t->rhead + m) % PTY_RING;
	if (t->rlen + m > PTY_RING)
		t->wrapped = true;
	t->rlen = t->rlen + m > PTY_RING ? PTY_RING : t->rlen + m;
}

/*
 * Back-pressure: the PTY is read only while the client's queue is under
 * PTY_OUT_HIGH; a stalled shell then blocks in write(2) as on a slow
 * line. With no client it is always read (into the ring). A PTY with
 * nothing wanted leaves the loop: a hung-up master is always "ready".
 */
static void
pty_update(struct pty *t)
{
	uint32_t	 ev = 0;

	if (t->master == -1)
		return;
	if (!t->eof && (t->ws == NULL || ws_backlog(t->ws) < PTY_OUT_HIGH))
		ev |= EPOLLIN;
	if (!t->eof && t->keys.len > 0)
		ev |= EPOLLOUT;
	if (ev == t->ev)
		return;
	if (ev == 0)
		loop_del(t->master);
	else if ((t->ev == 0 ? loop_add(t->master, ev, pty_io, t) :
	    loop_mod(t->master, ev, pty_io, t)) == -1) {
		init_log("terminal %s: loop: %s", t->id, strerror(errno));
		t->eof = true;
		ev = 0;
		loop_del(t->master);
	}
	t->ev = ev;
}

/*
 * The ring, oldest first. When older output was lost the ring may begin
 * inside an escape sequence or a UTF-8 character; starting after its
 * first newline (when one is near) spares the client the garbage.
 */
static void
pty_replay(struct pty *t, struct ws *w)
{
	size_t	 start, n = t->rlen, i, first;

	start = (t->rhead + PTY_RING - t->rlen) % PTY_RING;
	if (t->wrapped)
		for (i = 0; i < 4096 && i < n; i++)
			if (t->ring[(start + i) % PTY_RING] == '\n') {
				start = (start + i + 1) % PTY_RING;
				n -= i + 1;
				break;
			}
	first = PTY_RING - start < n ? PTY_RING - start : n;
	if (first > 0)
		ws_binary(w, t->ring + start, first);
	if (n > first)
		ws_binary(w, t->ring, n - first);
}

static void
pty_kill(void *arg)
{
	struct pty	*t = arg;

	t->kill_timer = 0;
	(void)kill(-t->pid, SIGKILL);
	(void)kill(t->pid, SIGKILL);
	if (t->fg > 1)
		(void)kill(-t->fg, SIGKILL);
}

static void
waiter_gone(struct conn *c, void *arg)
{
	struct pty_waiter	*wt = arg, **pp;

	(void)c;
	for (pp = &wt->t->waiters; *pp != NULL; pp = &(*pp)->next)
		if (*pp == wt) {
			*pp = wt->next;
			break;
		}
	free(wt);
}

static void
pty_answer(struct pty *t, int st)
{
	struct pty_waiter	*wt;
	json_t			*j;

	while ((wt = t->waiters) != NULL) {
		t->waiters = wt->next;
		conn_on_close(wt->c, NULL, NULL);
		j = json_pack("{s:s,s:I,s:s,s:i}", "id", t->id, "pid",
		    (json_int_t)t->pid, "status", "exited", "exit_code",
		    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		if (j != NULL && WIFSIGNALED(st))
			json_object_set_new(j, "signal",
			    json_integer(WTERMSIG(st)));
		http_json(wt->c, 200, j);
		free(wt);
	}
}

/* --- the client's side -------------------------------------------------- */

/*
 * Keys, except a text message that is a JSON object with a "type": a
 * control message. "resize" resizes; other types are ignored so that
 * newer clients do not type JSON into the shell.
 */
static void
pty_ws_message(void *arg, struct ws *w, const char *m, size_t len,
    bool text)
{
	struct pty	*t = arg;
	const char	*type;
	json_t		*j;
	json_int_t	 cols, rows;

	if (!text || len == 0 || m[0] != '{' || (j = json_loadb(m, len,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL) {
		pty_keys(t, w, m, len);
		return;
	}
	if (!json_is_object(j) || (type = json_string_value(json_object_get(j,
	    "type"))) == NULL) {
		json_decref(j);
		pty_keys(t, w, m, len);
		return;
	}
	cols = json_integer_value(json_object_get(j, "cols"));
	rows = json_integer_value(json_object_get(j, "rows"));
	if (!strcmp(type, "resize") && cols >= 1 && cols <= PTY_DIM_MAX &&
	    rows >= 1 && rows <= PTY_DIM_MAX)
		pty_resize(t, (long)cols, (long)rows);
	json_decref(j);
}

static void
pty_keys(struct pty *t, struct ws *w, const char *p, size_t n)
{
	if (n == 0 || t->eof)
		return;
	/* Room is certain: parsing stops while keys pass PTY_KEYS_HIGH. */
	if (ws_buf_put(&t->keys, p, n) == -1) {
		ws_fail(w, 1011, "out of memory");
		return;
	}
	pty_write(t);
	pty_update(t);
}

static bool
pty_ws_stalled(void *arg)
{
	struct pty	*t = arg;

	return t->keys.len > PTY_KEYS_HIGH;
}

/* Room again: the PTY may be read (pty_update is idempotent). */
static void
pty_ws_flushed(void *arg)
{
	pty_update(arg);
}

/* The shell lives on; its output goes to the ring alone. */
static void
pty_ws_detached(void *arg)
{
	struct pty	*t = arg;

	t->ws = NULL;
	pty_update(t);
}
