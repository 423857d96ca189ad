/* SPDX-License-Identifier: MIT */
/*
 * init_term.c: terminals. GET /terminal upgrades to a WebSocket (RFC
 * 6455, framed here) joined to a shell on a PTY; the shell outlives its
 * client and keeps the last 256 KiB of its output for the next one.
 * GET /terminals lists them, DELETE /terminals/{id} ends one.
 */
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "init.h"

#define TERM_MAX	64		/* live terminals */
#define TERM_ID_MAX	64
#define TERM_RING	(256 * 1024)	/* output kept for a re-attach */
#define TERM_READ	(16 * 1024)	/* one read of the PTY */
#define TERM_KILL_MS	2000		/* SIGHUP, then SIGKILL */
#define TERM_DIM_MAX	1000		/* cols, rows */
#define WS_MSG_MAX	(1024 * 1024)	/* a frame or message: else 1009 */
#define WS_IN_BUF	(64 * 1024)	/* read from the socket, unparsed */
#define WS_OUT_HIGH	(256 * 1024)	/* queued: stop reading the PTY */
/* The most ever queued: HIGH, one read, then a drain at exit (a ring). */
#define WS_OUT_MAX	(WS_OUT_HIGH + TERM_READ + TERM_RING + 1024)
#define WS_KEYS_HIGH	(64 * 1024)	/* keys for the PTY: stop parsing */
#define WS_KEYS_MAX	(WS_KEYS_HIGH + WS_MSG_MAX)
#define WS_CLOSE_MS	2000		/* wait for the peer's close frame */

/* RFC 6455 §5.2 opcodes */
#define OP_CONT		0x0
#define OP_TEXT		0x1
#define OP_BIN		0x2
#define OP_CLOSE	0x8
#define OP_PING		0x9
#define OP_PONG		0xa

/* A byte queue with a hard maximum set at creation. */
struct buf {
	char		*b;		/* owned */
	size_t		 off, len;	/* pending: b[off .. off+len) */
	size_t		 cap, max;
};

struct ws;

struct waiter {				/* a DELETE answered at exit */
	struct conn	*c;
	struct term	*t;
	struct waiter	*next;
};

struct term {
	struct term	*next;
	char		 id[TERM_ID_MAX + 1];
	pid_t		 pid;
	pid_t		 fg;		/* foreground group at SIGHUP */
	int		 master;	/* the PTY, non-blocking */
	uint32_t	 ev;		/* registered events, 0: out of loop */
	bool		 eof;		/* the PTY hung up: read no more */
	unsigned short	 cols, rows;
	char		*ring;		/* TERM_RING bytes, owned */
	size_t		 rhead, rlen;	/* next write; bytes kept */
	bool		 wrapped;	/* older output was lost */
	struct buf	 keys;		/* for the PTY, not yet written */
	struct ws	*ws;		/* the attached client, or NULL */
	long		 kill_timer;
	struct waiter	*waiters;
};

struct ws {
	int		 fd;
	struct term	*t;		/* NULL once detached */
	struct buf	 out;		/* frames not yet written */
	uint8_t		 in[WS_IN_BUF];	/* read, not yet parsed */
	size_t		 inlen;
	/* the frame being read, RFC 6455 §5.2 */
	bool		 in_frame;
	uint8_t		 op;
	bool		 fin;
	uint64_t	 left;		/* payload bytes still to come */
	uint8_t		 key[4];
	size_t		 kpos;
	/* the message being put together, §5.4 */
	uint8_t		 mop;		/* OP_TEXT, OP_BIN, or 0: none */
	struct buf	 msg;
	uint8_t		 ctl[125];	/* a control frame's payload, §5.5 */
	size_t		 ctllen;
	bool		 close_sent, close_rcvd;
	bool		 failed;	/* a protocol error: input discarded */
	bool		 gone;		/* the peer hung up, or a write broke */
	uint32_t	 ev;		/* registered events */
	long		 timer;
};

static struct term	*term_new(const char *, unsigned short,
			    unsigned short);
static int	term_pty(struct term *, char *, size_t);
static void	term_child(int) __attribute__((noreturn));
static void	term_free(struct term *);
static void	term_exited(void *, pid_t, int);
static void	term_io(void *, uint32_t);
static void	term_read(struct term *);
static void	term_write(struct term *);
static void	term_output(struct term *, const char *, size_t);
static void	term_update(struct term *);
static void	term_attach(struct term *, struct ws *);
static void	term_replay(struct term *, struct ws *);
static void	term_resize(struct term *, long, long);
static void	term_hangup(struct term *);
static void	term_kill(void *);
static void	term_answer(struct term *, int);
static void	term_list(struct conn *);
static void	term_end(struct conn *, struct term *);
static void	waiter_gone(struct conn *, void *);
static json_t	*term_json(const struct term *);
static struct term *term_find(const char *);
static int	term_make_id(char *);
static bool	term_id_ok(const char *);
static long	term_dim(struct conn *, const char *);
static struct ws *ws_new(int);
static void	ws_free(struct ws *);
static void	ws_io(void *, uint32_t);
static void	ws_read(struct ws *);
static void	ws_parse(struct ws *);
static size_t	ws_header(struct ws *, const uint8_t *, size_t);
static void	ws_payload(struct ws *, uint8_t *, size_t);
static void	ws_frame_done(struct ws *);
static void	ws_control(struct ws *);
static void	ws_message(struct ws *);
static void	ws_keys(struct ws *, const char *, size_t);
static bool	ws_stalled(const struct ws *);
static void	ws_send(struct ws *, int, const void *, size_t);
static void	ws_text(struct ws *, json_t *);
static void	ws_close(struct ws *, int, const char *);
static void	ws_fail(struct ws *, int, const char *);
static void	ws_flush(struct ws *);
static bool	ws_done(const struct ws *);
static void	ws_update(struct ws *);
static void	ws_timeout(void *);
static bool	ws_close_code_ok(unsigned);
static bool	utf8_ok(const uint8_t *, size_t);
static void	buf_init(struct buf *, size_t);
static int	buf_put(struct buf *, const void *, size_t);
static void	buf_eat(struct buf *, size_t);
static void	buf_free(struct buf *);

static struct term	*terms;		/* every live terminal */
static int		 nterms;
static unsigned		 term_seq;	/* for ids made up */

void
term_handle(struct conn *c, const struct req *r)
{
	const char	*id = req_query(c, "id", 0);
	char		 made[TERM_ID_MAX + 1];
	struct term	*t;
	struct ws	*w;
	long		 cols, rows;
	bool		 fresh = false;
	int		 fd;

	(void)r;
	if (id == NULL && term_make_id(made) == 0)
		id = made;
	if (id == NULL || !term_id_ok(id)) {
		http_error(c, 400, "bad_request", "id: [A-Za-z0-9_.-]{1,64}");
		return;
	}
	if ((cols = term_dim(c, "cols")) == -1 ||
	    (rows = term_dim(c, "rows")) == -1)
		return;
	/* Not an upgrade at all: refused (400) before a shell is made. */
	if (req_header(c, "Sec-WebSocket-Key") == NULL) {
		(void)http_upgrade(c);
		return;
	}
	if ((t = term_find(id)) == NULL) {
		if (nterms >= TERM_MAX) {
			http_error(c, 409, "conflict", "at most %d terminals",
			    TERM_MAX);
			return;
		}
		if ((t = term_new(id, cols ? (unsigned short)cols : 80,
		    rows ? (unsigned short)rows : 24)) == NULL) {
			http_error(c, 500, "internal", "terminal: %s",
			    strerror(errno));
			return;
		}
		fresh = true;
	}
	/* A shell nobody could attach to would be left behind: end it. */
	if ((fd = http_upgrade(c)) == -1 || (w = ws_new(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		if (fresh)
			term_hangup(t);
		return;
	}
	if (!fresh)
		term_resize(t, cols, rows);
	term_attach(t, w);
}

void
terms_handle(struct conn *c, const struct req *r)
{
	struct term	*t;
	const char	*id;

	if (!strcmp(r->path, "/terminals") || !strcmp(r->path,
	    "/terminals/")) {
		if (strcmp(r->method, "GET") != 0)
			http_error(c, 405, "method_not_allowed", "GET only");
		else
			term_list(c);
		return;
	}
	id = r->path + strlen("/terminals/");
	if (strncmp(r->path, "/terminals/", 11) != 0 || !term_id_ok(id) ||
	    (t = term_find(id)) == NULL) {
		http_error(c, 404, "not_found", "no such terminal");
		return;
	}
	if (!strcmp(r->method, "GET"))
		http_json(c, 200, term_json(t));
	else if (!strcmp(r->method, "DELETE"))
		term_end(c, t);
	else
		http_error(c, 405, "method_not_allowed", "GET or DELETE");
}

/*
 * Run on a host (tests), init.c signals what we started. An interactive
 * shell ignores SIGTERM, so a SIGTERM also brings a SIGHUP, which is
 * what a shell takes as "your terminal is gone".
 */
void
term_kill_all(int sig)
{
	struct term	*t;

	for (t = terms; t != NULL; t = t->next) {
		if (sig == SIGTERM) {
			(void)kill(-t->pid, SIGHUP);
			(void)kill(t->pid, SIGHUP);
		}
		(void)kill(-t->pid, sig);
		(void)kill(t->pid, sig);
	}
}

int
term_count(void)
{
	return nterms;
}

/* --- terminals ---------------------------------------------------------- */

static struct term *
term_new(const char *id, unsigned short cols, unsigned short rows)
{
	struct term	*t;
	char		 name[128];
	int		 slave = -1, saved;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->master = -1;
	memcpy(t->id, id, strlen(id) + 1);
	t->cols = cols;
	t->rows = rows;
	buf_init(&t->keys, WS_KEYS_MAX);
	if ((t->ring = malloc(TERM_RING)) == NULL ||
	    (slave = term_pty(t, name, sizeof(name))) == -1)
		goto fail;
	if ((t->pid = fork()) == -1)
		goto fail;
	if (t->pid == 0)
		term_child(slave);
	close(slave);
	slave = -1;
	child_watch(t->pid, term_exited, t);
	t->next = terms;
	terms = t;
	nterms++;
	term_update(t);
	return t;
fail:
	saved = errno;
	if (slave != -1)
		close(slave);
	term_free(t);
	errno = saved;
	return NULL;
}

/*
 * The PTY pair. PID 1 opens the slave too (O_NOCTTY: it must never get
 * a controlling terminal) so that the master cannot see a hang-up before
 * the shell holds it; the parent's copy closes right after fork, and the
 * master's EIO then means every holder of the slave is gone.
 */
static int
term_pty(struct term *t, char *name, size_t len)
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

/*
 * In the child: a session of its own with the PTY as its controlling
 * terminal (setsid, TIOCSCTTY), so job control and ^C work and a hang-up
 * reaches it; then only fds 0-2, default signals, and the shell.
 */
static void
term_child(int slave)
{
	static const char *const bash[] = { "/bin/bash", "-l", NULL };
	static const char *const sh[] = { "/bin/sh", NULL };
	const char *const	*argv;
	char			**base, **env;
	const char		*cwd = "/";
	struct stat		 st;
	sigset_t		 none;
	size_t			 n = 0;

	if (setsid() == -1 || ioctl(slave, TIOCSCTTY, 0) == -1 ||
	    dup2(slave, 0) == -1 || dup2(slave, 1) == -1 ||
	    dup2(slave, 2) == -1)
		_exit(126);
	(void)syscall(SYS_close_range, 3U, ~0U, 0U);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	argv = access(bash[0], X_OK) == 0 ? bash : sh;
	init_base_env(&base);
	while (base != NULL && base[n] != NULL)
		n++;
	if ((env = calloc(n + 3, sizeof(*env))) == NULL)
		_exit(126);
	if (n > 0)
		memcpy(env, base, n * sizeof(*env));
	env[n] = "TERM=xterm-256color";
	env[n + 1] = argv == bash ? "SHELL=/bin/bash" : "SHELL=/bin/sh";
	if (stat("/workspace", &st) == 0 && S_ISDIR(st.st_mode))
		cwd = "/workspace";
	if (chdir(cwd) == -1)
		(void)chdir("/");
	execve(argv[0], (char *const *)argv, env);
	dprintf(2, "pincer-init: %s: %s\r\n", argv[0], strerror(errno));
	_exit(127);
}

static void
term_free(struct term *t)
{
	struct term	**pp;

	for (pp = &terms; *pp != NULL; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			nterms--;
			break;
		}
	if (t->ws != NULL)
		t->ws->t = NULL;
	timer_cancel(t->kill_timer);
	if (t->master != -1) {
		loop_del(t->master);
		close(t->master);
	}
	buf_free(&t->keys);
	free(t->ring);
	free(t);
}

/*
 * The shell is gone. What it wrote last is still in the PTY: read it
 * (bounded by a ring's worth), then the client gets the exit frame and a
 * close (1000). The id is free again at once: a new attach starts anew.
 */
static void
term_exited(void *arg, pid_t pid, int st)
{
	struct term	*t = arg;
	struct ws	*w;
	size_t		 got = 0;
	ssize_t		 n;
	char		 buf[TERM_READ];
	int		 code;

	(void)pid;
	code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	while (!t->eof && got < TERM_RING && (n = read(t->master, buf,
	    TERM_RING - got < sizeof(buf) ? TERM_RING - got :
	    sizeof(buf))) > 0) {
		term_output(t, buf, (size_t)n);
		got += (size_t)n;
	}
	if ((w = t->ws) != NULL) {
		ws_text(w, json_pack("{s:s,s:i}", "type", "exit", "code",
		    code));
		ws_close(w, 1000, "");
		ws_update(w);
	}
	term_answer(t, st);
	term_free(t);
}

static void
term_io(void *arg, uint32_t events)
{
	struct term	*t = arg;

	if (events & EPOLLOUT)
		term_write(t);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		term_read(t);
	/* Keys drained: the client's parser and reads may go on. */
	if (t->ws != NULL && t->keys.len <= WS_KEYS_HIGH) {
		if (t->ws->inlen > 0)
			ws_parse(t->ws);
		if (t->ws != NULL)
			ws_update(t->ws);
	}
	term_update(t);
}

/* EIO (or 0): every holder of the slave is gone, the shell's exit next. */
static void
term_read(struct term *t)
{
	char	 buf[TERM_READ];
	ssize_t	 n;

	if (t->eof)
		return;
	n = read(t->master, buf, sizeof(buf));
	if (n > 0)
		term_output(t, buf, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		t->eof = true;
}

static void
term_write(struct term *t)
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
		buf_eat(&t->keys, (size_t)n);
	}
	if (t->eof)
		buf_eat(&t->keys, t->keys.len);
}

/* Kept in the ring; sent as one binary frame to the client, if any. */
static void
term_output(struct term *t, const char *p, size_t n)
{
	size_t	 m = n, first;

	if (t->ws != NULL)
		ws_send(t->ws, OP_BIN, p, n);
	if (m > TERM_RING) {
		p += m - TERM_RING;
		m = TERM_RING;
	}
	first = TERM_RING - t->rhead < m ? TERM_RING - t->rhead : m;
	memcpy(t->ring + t->rhead, p, first);
	memcpy(t->ring, p + first, m - first);
	t->rhead = (t->rhead + m) % TERM_RING;
	if (t->rlen + m > TERM_RING)
		t->wrapped = true;
	t->rlen = t->rlen + m > TERM_RING ? TERM_RING : t->rlen + m;
}

/*
 * Back-pressure: the PTY is read only while the client's queue is under
 * WS_OUT_HIGH; a stalled shell then blocks in write(2) as on a slow
 * line. With no client it is always read (into the ring). A PTY with
 * nothing wanted leaves the loop: a hung-up master is always "ready".
 */
static void
term_update(struct term *t)
{
	uint32_t	 ev = 0;

	if (t->master == -1)
		return;
	if (!t->eof && (t->ws == NULL || t->ws->out.len < WS_OUT_HIGH))
		ev |= EPOLLIN;
	if (!t->eof && t->keys.len > 0)
		ev |= EPOLLOUT;
	if (ev == t->ev)
		return;
	if (ev == 0)
		loop_del(t->master);
	else if ((t->ev == 0 ? loop_add(t->master, ev, term_io, t) :
	    loop_mod(t->master, ev, term_io, t)) == -1) {
		init_log("terminal %s: loop: %s", t->id, strerror(errno));
		t->eof = true;
		ev = 0;
		loop_del(t->master);
	}
	t->ev = ev;
}

/*
 * One client per terminal: a new attach takes over, and the old one is
 * closed with 1000 and the reason "attached elsewhere" (1000: nothing
 * went wrong, so a client does not reconnect in a fight over it).
 */
static void
term_attach(struct term *t, struct ws *w)
{
	struct ws	*old = t->ws;

	if (old != NULL) {
		old->t = NULL;
		ws_close(old, 1000, "attached elsewhere");
		ws_update(old);
	}
	t->ws = w;
	w->t = t;
	ws_text(w, json_pack("{s:s,s:s,s:I,s:i,s:i}", "type", "ready", "id",
	    t->id, "pid", (json_int_t)t->pid, "cols", t->cols, "rows",
	    t->rows));
	term_replay(t, w);
	ws_update(w);
	term_update(t);
}

/*
 * The ring, oldest first. When older output was lost the ring may begin
 * inside an escape sequence or a UTF-8 character; starting after its
 * first newline (when one is near) spares the client the garbage.
 */
static void
term_replay(struct term *t, struct ws *w)
{
	size_t	 start, n = t->rlen, i, first;

	start = (t->rhead + TERM_RING - t->rlen) % TERM_RING;
	if (t->wrapped)
		for (i = 0; i < 4096 && i < n; i++)
			if (t->ring[(start + i) % TERM_RING] == '\n') {
				start = (start + i + 1) % TERM_RING;
				n -= i + 1;
				break;
			}
	first = TERM_RING - start < n ? TERM_RING - start : n;
	if (first > 0)
		ws_send(w, OP_BIN, t->ring + start, first);
	if (n > first)
		ws_send(w, OP_BIN, t->ring, n - first);
}

/* 0 keeps a size; the kernel tells the foreground group (SIGWINCH). */
static void
term_resize(struct term *t, long cols, long rows)
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
static void
term_hangup(struct term *t)
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
	if ((t->kill_timer = timer_add(TERM_KILL_MS, term_kill, t)) == -1) {
		t->kill_timer = 0;
		term_kill(t);
	}
}

static void
term_kill(void *arg)
{
	struct term	*t = arg;

	t->kill_timer = 0;
	(void)kill(-t->pid, SIGKILL);
	(void)kill(t->pid, SIGKILL);
	if (t->fg > 1)
		(void)kill(-t->fg, SIGKILL);
}

/* --- the HTTP side ------------------------------------------------------ */

static void
term_list(struct conn *c)
{
	struct term	*t;
	json_t		*a;

	if ((a = json_array()) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	for (t = terms; t != NULL; t = t->next)
		json_array_append_new(a, term_json(t));
	http_json(c, 200, json_pack("{s:o}", "terminals", a));
}

/* DELETE: answered once the shell is gone, as DELETE /processes is. */
static void
term_end(struct conn *c, struct term *t)
{
	struct waiter	*wt;

	if ((wt = calloc(1, sizeof(*wt))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	wt->c = c;
	wt->t = t;
	wt->next = t->waiters;
	t->waiters = wt;
	conn_on_close(c, waiter_gone, wt);
	term_hangup(t);
}

static void
waiter_gone(struct conn *c, void *arg)
{
	struct waiter	*wt = arg, **pp;

	(void)c;
	for (pp = &wt->t->waiters; *pp != NULL; pp = &(*pp)->next)
		if (*pp == wt) {
			*pp = wt->next;
			break;
		}
	free(wt);
}

static void
term_answer(struct term *t, int st)
{
	struct waiter	*wt;
	json_t		*j;

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

static json_t *
term_json(const struct term *t)
{
	return json_pack("{s:s,s:I,s:i,s:i,s:b}", "id", t->id, "pid",
	    (json_int_t)t->pid, "cols", t->cols, "rows", t->rows, "attached",
	    t->ws != NULL);
}

static struct term *
term_find(const char *id)
{
	struct term	*t;

	for (t = terms; t != NULL; t = t->next)
		if (!strcmp(t->id, id))
			return t;
	return NULL;
}

/* No id given: "t1", "t2", … whichever is free. */
static int
term_make_id(char *out)
{
	int	 i;

	for (i = 0; i <= TERM_MAX; i++) {
		(void)snprintf(out, TERM_ID_MAX + 1, "t%u", ++term_seq);
		if (term_find(out) == NULL)
			return 0;
	}
	return -1;
}

static bool
term_id_ok(const char *id)
{
	size_t	 n = strlen(id);

	return n >= 1 && n <= TERM_ID_MAX && strspn(id,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_.-") == n;
}

/* cols or rows: 0 when absent, -1 after answering 400. */
static long
term_dim(struct conn *c, const char *name)
{
	const char	*s = req_query(c, name, 0);
	char		*end;
	long		 v;

	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > TERM_DIM_MAX) {
		http_error(c, 400, "bad_request", "%s: 1 to %d", name,
		    TERM_DIM_MAX);
		return -1;
	}
	return v;
}

/* --- WebSocket, RFC 6455 ------------------------------------------------ */

static struct ws *
ws_new(int fd)
{
	struct ws	*w;
	int		 fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    (w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->fd = fd;
	buf_init(&w->out, WS_OUT_MAX);
	buf_init(&w->msg, WS_MSG_MAX);
	w->ev = EPOLLIN | EPOLLRDHUP;
	if (loop_add(fd, w->ev, ws_io, w) == -1) {
		free(w);
		return NULL;
	}
	return w;
}

/* Only ever from the ws's own callbacks (its fd, its timer). */
static void
ws_free(struct ws *w)
{
	struct term	*t = w->t;

	loop_del(w->fd);
	close(w->fd);
	timer_cancel(w->timer);
	buf_free(&w->out);
	buf_free(&w->msg);
	free(w);
	if (t != NULL) {
		/* The shell lives on; its output goes to the ring alone. */
		t->ws = NULL;
		term_update(t);
	}
}

static void
ws_io(void *arg, uint32_t events)
{
	struct ws	*w = arg;

	if (events & EPOLLOUT)
		ws_flush(w);
	/*
	 * A peer that hangs up while its keys wait (the shell reads none)
	 * is gone: the socket cannot be read until they are taken.
	 */
	if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && ws_stalled(w))
		w->gone = true;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		ws_read(w);
	if (ws_done(w)) {
		ws_free(w);
		return;
	}
	ws_update(w);
}

/*
 * Reads while there is room and the shell takes its keys, a bounded
 * number of times so that one client cannot hold the loop.
 */
static void
ws_read(struct ws *w)
{
	ssize_t	 n;
	int	 reads;

	for (reads = 0; reads < 16 && !w->gone; reads++) {
		if (ws_stalled(w))
			return;
		n = read(w->fd, w->in + w->inlen, sizeof(w->in) - w->inlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			w->gone = true;
			return;
		}
		if (w->failed)
			continue;	/* after a protocol error: discarded */
		w->inlen += (size_t)n;
		ws_parse(w);
	}
}

/* Frames out of w->in, as far as they go; keeps a partial one. */
static void
ws_parse(struct ws *w)
{
	size_t	 off = 0, n;

	while (off < w->inlen && !w->failed && !w->close_rcvd &&
	    !ws_stalled(w)) {
		if (!w->in_frame) {
			if ((n = ws_header(w, w->in + off, w->inlen - off)) ==
			    0)
				break;
			off += n;
			if (w->in_frame && w->left == 0)
				ws_frame_done(w);
			continue;
		}
		n = w->inlen - off;
		if (n > w->left)
			n = (size_t)w->left;
		ws_payload(w, w->in + off, n);
		off += n;
		w->left -= n;
		if (w->left == 0)
			ws_frame_done(w);
	}
	if (w->failed || w->close_rcvd)
		off = w->inlen;		/* nothing after these counts */
	memmove(w->in, w->in + off, w->inlen - off);
	w->inlen -= off;
}

/*
 * RFC 6455 §5.2 base framing. Returns the header's length, 0 when it is
 * not all in yet or after failing the connection (§7.1.7).
 */
static size_t
ws_header(struct ws *w, const uint8_t *p, size_t n)
{
	const char	*why;
	size_t		 need = 2, i;
	uint64_t	 len;
	uint8_t		 op;
	int		 code = 1002;

	if (n < 2)
		return 0;
	len = p[1] & 0x7f;
	op = p[0] & 0x0f;
	/* §5.2: RSV1-3 must be 0 when no extension was negotiated. */
	if ((why = p[0] & 0x70 ? "reserved bits set" : NULL) != NULL)
		goto fail;
	/* §5.1: a server must close on a frame from a client not masked. */
	if ((why = !(p[1] & 0x80) ? "unmasked frame" : NULL) != NULL)
		goto fail;
	need += (len == 126 ? 2 : len == 127 ? 8 : 0) + 4;
	if (n < need)
		return 0;
	if (len == 126)
		len = (uint64_t)p[2] << 8 | p[3];
	else if (len == 127)
		for (len = 0, i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
	/* §5.2: the 64-bit length's most significant bit must be 0. */
	if ((why = len >> 63 ? "bad length" : NULL) != NULL)
		goto fail;
	if (op & 0x8) {
		/* §5.5: control frames are whole and at most 125 bytes. */
		if ((op != OP_CLOSE && op != OP_PING && op != OP_PONG) ||
		    !(p[0] & 0x80) || len > 125) {
			why = "bad control frame";
			goto fail;
		}
	} else if (op > OP_BIN || (op == OP_CONT) != (w->mop != 0)) {
		/* §5.4: a continuation continues, anything else starts. */
		why = "bad fragment";
		goto fail;
	} else if (len > WS_MSG_MAX - w->msg.len) {
		/* §7.4.1: 1009, a message too big to process. */
		why = "message too big";
		code = 1009;
		goto fail;
	}
	if (op == OP_TEXT || op == OP_BIN)
		w->mop = op;
	w->op = op;
	w->fin = (p[0] & 0x80) != 0;
	w->left = len;
	memcpy(w->key, p + need - 4, 4);
	w->kpos = 0;
	w->ctllen = 0;
	w->in_frame = true;
	return need;
fail:
	ws_fail(w, code, why);
	return 0;
}

/* §5.3: payload octet i is XORed with masking key octet i mod 4. */
static void
ws_payload(struct ws *w, uint8_t *p, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		p[i] ^= w->key[w->kpos++ & 3];
	if (w->op & 0x8) {
		memcpy(w->ctl + w->ctllen, p, n);	/* <= 125, checked */
		w->ctllen += n;
	} else if (buf_put(&w->msg, p, n) == -1)
		ws_fail(w, 1011, "out of memory");
}

static void
ws_frame_done(struct ws *w)
{
	w->in_frame = false;
	if (w->failed)
		return;
	if (w->op & 0x8)
		ws_control(w);
	else if (w->fin) {
		ws_message(w);
		w->mop = 0;
		buf_eat(&w->msg, w->msg.len);
	}
}

static void
ws_control(struct ws *w)
{
	unsigned	 code = 0;

	if (w->op == OP_PING) {
		/* §5.5.2: a Pong with the Ping's payload. */
		ws_send(w, OP_PONG, w->ctl, w->ctllen);
		return;
	}
	if (w->op != OP_CLOSE)
		return;			/* §5.5.3: an unasked Pong */
	/* §5.5.1: no body, or a 2-byte code then UTF-8 (§7.4). */
	if (w->ctllen >= 2)
		code = (unsigned)w->ctl[0] << 8 | w->ctl[1];
	if (w->ctllen == 1 || (w->ctllen >= 2 && !ws_close_code_ok(code))) {
		ws_fail(w, 1002, "bad close frame");
		return;
	}
	if (w->ctllen > 2 && !utf8_ok(w->ctl + 2, w->ctllen - 2)) {
		ws_fail(w, 1007, "close reason not UTF-8");
		return;
	}
	w->close_rcvd = true;
	/* §5.5.1: answer with a Close echoing the code (if any); we close. */
	ws_close(w, (int)code, "");
}

/*
 * Keys, except a text message that is a JSON object with a "type": a
 * control message. "resize" resizes; other types are ignored so that
 * newer clients do not type JSON into the shell.
 */
static void
ws_message(struct ws *w)
{
	const char	*m = w->msg.b + w->msg.off, *type;
	json_t		*j;
	json_int_t	 cols, rows;

	/* §8.1: a text message that is not UTF-8 fails the connection. */
	if (w->mop == OP_TEXT && !utf8_ok((const uint8_t *)m, w->msg.len)) {
		ws_fail(w, 1007, "text not UTF-8");
		return;
	}
	if (w->mop == OP_BIN || w->msg.len == 0 || m[0] != '{' ||
	    (j = json_loadb(m, w->msg.len, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL) {
		ws_keys(w, m, w->msg.len);
		return;
	}
	if (!json_is_object(j) || (type = json_string_value(json_object_get(j,
	    "type"))) == NULL) {
		json_decref(j);
		ws_keys(w, m, w->msg.len);
		return;
	}
	cols = json_integer_value(json_object_get(j, "cols"));
	rows = json_integer_value(json_object_get(j, "rows"));
	if (!strcmp(type, "resize") && w->t != NULL && cols >= 1 &&
	    cols <= TERM_DIM_MAX && rows >= 1 && rows <= TERM_DIM_MAX)
		term_resize(w->t, (long)cols, (long)rows);
	json_decref(j);
}

static void
ws_keys(struct ws *w, const char *p, size_t n)
{
	struct term	*t = w->t;

	if (t == NULL || n == 0 || t->eof)
		return;
	/* Room is certain: parsing stops while keys pass WS_KEYS_HIGH. */
	if (buf_put(&t->keys, p, n) == -1) {
		ws_fail(w, 1011, "out of memory");
		return;
	}
	term_write(t);
	term_update(t);
}

static bool
ws_stalled(const struct ws *w)
{
	return w->t != NULL && w->t->keys.len > WS_KEYS_HIGH;
}

/* §5.2, §5.1: one whole frame (FIN), never masked from a server. */
static void
ws_send(struct ws *w, int op, const void *p, size_t n)
{
	uint8_t	 h[10];
	size_t	 hl, i;

	if (w->close_sent || w->gone)
		return;			/* §5.5.1: nothing after a Close */
	h[0] = (uint8_t)(0x80 | op);
	if (n < 126) {
		h[1] = (uint8_t)n;
		hl = 2;
	} else if (n <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hl = 4;
	} else {
		h[1] = 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	if (hl + n > w->out.max - w->out.len || buf_put(&w->out, h, hl) ==
	    -1 || buf_put(&w->out, p, n) == -1) {
		w->gone = true;		/* cannot happen by the sizes */
		return;
	}
	ws_flush(w);
}

static void
ws_text(struct ws *w, json_t *j)
{
	char	*s;

	if (j == NULL || (s = json_dumps(j, JSON_COMPACT)) == NULL) {
		json_decref(j);
		return;
	}
	ws_send(w, OP_TEXT, s, strlen(s));
	free(s);
	json_decref(j);
}

/*
 * §7.1.2: start the closing handshake (code 0: a Close with no body).
 * The peer's Close is awaited for WS_CLOSE_MS; then (or once it comes)
 * we close the TCP side first, as §7.1.1 wants of a server.
 */
static void
ws_close(struct ws *w, int code, const char *reason)
{
	uint8_t	 p[125];
	size_t	 n = strlen(reason);

	if (w->close_sent || w->gone)
		return;
	if (n > sizeof(p) - 2)
		n = sizeof(p) - 2;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	memcpy(p + 2, reason, n);
	ws_send(w, OP_CLOSE, p, code == 0 ? 0 : n + 2);
	w->close_sent = true;
	/* Bounded either way: a peer that reads nothing is dropped too. */
	if ((w->timer = timer_add(WS_CLOSE_MS, ws_timeout, w)) == -1) {
		w->timer = 0;
		w->gone = true;
	}
}

/* §7.1.7: fail the connection; later input is read and thrown away. */
static void
ws_fail(struct ws *w, int code, const char *why)
{
	if (w->failed)
		return;
	w->failed = true;
	w->in_frame = false;
	ws_close(w, code, why);
}

static void
ws_flush(struct ws *w)
{
	ssize_t	 n;

	while (w->out.len > 0 && !w->gone) {
		n = send(w->fd, w->out.b + w->out.off, w->out.len,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			w->gone = true;
			break;
		}
		buf_eat(&w->out, (size_t)n);
	}
	/* Room again: the PTY may be read (term_update is idempotent). */
	if (w->t != NULL)
		term_update(w->t);
	ws_update(w);
}

static bool
ws_done(const struct ws *w)
{
	return w->gone || (w->close_sent && w->close_rcvd && w->out.len == 0);
}

/*
 * Outside its own callbacks a ws is never freed; one that is done there
 * (a failed write, a Close answered) has its socket shut, so that the
 * loop calls ws_io, which frees it.
 */
static void
ws_update(struct ws *w)
{
	uint32_t	 ev = EPOLLRDHUP;

	if (ws_done(w)) {
		(void)shutdown(w->fd, SHUT_RDWR);
		return;
	}
	if (!ws_stalled(w) && w->inlen < sizeof(w->in))
		ev |= EPOLLIN;
	if (w->out.len > 0)
		ev |= EPOLLOUT;
	if (ev != w->ev && loop_mod(w->fd, ev, ws_io, w) == 0)
		w->ev = ev;
}

static void
ws_timeout(void *arg)
{
	struct ws	*w = arg;

	w->timer = 0;
	ws_free(w);
}

/* §7.4.1-2: codes a peer may send; 1005, 1006 and 1015 never are. */
static bool
ws_close_code_ok(unsigned code)
{
	if (code >= 3000 && code <= 4999)
		return true;
	return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 &&
	    code != 1006;
}

/* RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool
utf8_ok(const uint8_t *p, size_t n)
{
	size_t		 i = 0, len, k;
	uint32_t	 cp;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			len = 2;
		else if ((p[i] & 0xf0) == 0xe0)
			len = 3;
		else if (p[i] >= 0xf0 && p[i] <= 0xf4)
			len = 4;
		else
			return false;
		if (n - i < len)
			return false;
		cp = p[i] & (0x7f >> len);
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 &&
		    cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 ||
		    cp > 0x10ffff)))
			return false;
		i += len;
	}
	return true;
}

/* --- bounded byte queues ------------------------------------------------ */

static void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

static int
buf_put(struct buf *b, const void *p, size_t n)
{
	size_t	 want;
	char	*nb;

	if (n > b->max - b->len)
		return -1;
	if (b->off > 0 && b->off + b->len + n > b->cap) {
		memmove(b->b, b->b + b->off, b->len);
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		want = b->cap == 0 ? 4096 : b->cap;
		while (want < b->len + n)
			want *= 2;
		if (want > b->max)
			want = b->max;
		if ((nb = realloc(b->b, want)) == NULL)
			return -1;
		b->b = nb;
		b->cap = want;
	}
	if (n > 0)
		memcpy(b->b + b->off + b->len, p, n);
	b->len += n;
	return 0;
}

static void
buf_eat(struct buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		b->off = 0;
}

static void
buf_free(struct buf *b)
{
	free(b->b);
	memset(b, 0, sizeof(*b));
}
