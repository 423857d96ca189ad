/* SPDX-License-Identifier: MIT */
/*
 * init.h: pincer-init's one internal header, a section per file.
 * pincer-init is PID 1 of a sandbox: one thread, one epoll loop. Every
 * file descriptor it watches is registered with loop_add and a callback;
 * nothing blocks except the short writes of an answer's head.
 * The control API it serves is docs/sandbox-api.md.
 */
#ifndef INIT_H
#define INIT_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define INIT_PRINTF(f, a) __attribute__((format(printf, f, a)))

struct conn;

/* init.c: options, signals, reaping, the stop */
/* One line on stderr, "pincer-init: " first. */
void	 init_log(const char *fmt, ...) INIT_PRINTF(1, 2);
/*
 * Child exits: whoever spawns registers the pid; PID 1 reaps every child
 * and calls the owner's callback with the wait status. Orphans it reaps
 * silently.
 */
typedef void (*exit_fn)(void *arg, pid_t, int status);
void	 init_child_watch(pid_t, exit_fn, void *arg);
void	 init_child_unwatch(pid_t);

/* init_loop.c: the loop, its clock, timers */
typedef void (*loop_fn)(void *arg, uint32_t events);
int	 loop_init(void);
/* Runs the callbacks for ever; returns -1 only when epoll fails. */
int	 loop_run(void);
int	 loop_add(int fd, uint32_t events, loop_fn, void *arg);
int	 loop_mod(int fd, uint32_t events, loop_fn, void *arg);
void	 loop_del(int fd);		/* before close(fd) */
uint64_t loop_now_ms(void);		/* monotonic */
int64_t	 loop_wall_ms(void);		/* unix milliseconds */
/*
 * Timers: one-shot, in milliseconds; the id cancels. The callback gets
 * the arg. At most a few hundred live at once (exec deadlines, kills).
 */
typedef void (*timer_fn)(void *arg);
long	 loop_timer_add(uint64_t after_ms, timer_fn, void *arg);
void	 loop_timer_cancel(long id);
/*
 * After accept failed with err: out of fds, the listener (registered
 * with fn and the fd as arg) leaves the loop for a moment.
 */
void	 loop_accept_pause(int lfd, int err, loop_fn fn);

/* init_fwd.c: 127.0.0.1:8080, :9222, :3128 to the gateway's socket */
void	 fwd_start(void);

/* init_spawn.c: starting commands */
/*
 * Spawn argv (execvp) in a new process group with fds 0, 1, 2 set to
 * in, out, err (-1: /dev/null), cwd and extra env ("K=V", NULL-ended,
 * may be NULL) over the base environment. Returns the pid or -1 with
 * errno; an exec failure shows as exit status 127 (126: not executable)
 * with the reason written to err.
 */
pid_t	 spawn_cmd(char *const argv[], const char *cwd, char *const env[],
	    int in, int out, int err);
/* In a forked child: a login shell on the PTY slave; never returns. */
void	 spawn_shell(int slave) __attribute__((noreturn));
/* What a command is to run: argv and env's strings live in body. */
struct spawn_spec {
	json_t		*body;
	const char	**argv;		/* owned array */
	char		**env;		/* owned, one block */
	const char	*cwd;
};
/* One of a command's output pipes, registered with the loop. */
struct spawn_src {
	void		*owner;		/* struct exec or struct proc */
	int		 idx;		/* 0 stdout, 1 stderr */
	int		 fd;		/* -1 when closed */
};
/*
 * cmd (an array of strings), cwd and env of a request's body into sp.
 * Takes body; -1 after answering.
 */
int	 spawn_spec(struct conn *, json_t *body, struct spawn_spec *sp);
void	 spawn_spec_free(struct spawn_spec *);
/*
 * Starts sp with stdout and stderr on pipes that fn reads, src[i] its
 * arg; in is its stdin (-1: /dev/null). Returns the pid or -1.
 */
pid_t	 spawn_piped(struct spawn_spec *, int in, struct spawn_src src[2],
	    void *owner, loop_fn fn);
void	 spawn_src_close(struct spawn_src *);

/* init_text.c: bytes as text */
/* RFC 4648 base64 of n bytes; caller frees; *len gets its length. */
char	*text_base64(const void *, size_t n, size_t *len);
/* A JSON string of n bytes; invalid UTF-8 becomes U+FFFD. */
json_t	*text_jstr(const void *, size_t n);
/* n bytes as a JSON string, UTF-8 (as text_jstr) or base64. */
json_t	*text_json(const char *, size_t n, bool b64);
/* "utf8" (or NULL) or "base64" into *b64; -1 after answering 400. */
int	 text_encoding(struct conn *, const char *name, bool *b64);
/* How many trailing bytes begin a UTF-8 sequence that is cut off. */
size_t	 text_utf8_hold(const void *, size_t n);
/* Whether n bytes are strict UTF-8 (RFC 3629). */
bool	 text_utf8_ok(const uint8_t *, size_t n);
/* Percent-decodes s in place; -1 on %00 or a bad escape. */
int	 text_pct_decode(char *s, bool query);

/* init_http.c: one request per connection, answered then closed */
#define HTTP_HEAD_MAX	(16 * 1024)
#define HTTP_JSON_MAX	(1024 * 1024)
#define HTTP_OUT_MAX	(1024 * 1024)	/* a stream's queue */
#define HTTP_HDRS_MAX	64
#define HTTP_PARAMS_MAX	64
enum {
	HTTP_GET = 1, HTTP_HEAD = 2, HTTP_POST = 4, HTTP_PUT = 8,
	HTTP_DELETE = 16
};
struct req {
	const char	*method;
	const char	*path;		/* percent-decoded, no query */
	const char	*query;		/* raw, "" when none */
	const char	*body;		/* NUL-terminated; body_len bytes */
	size_t		 body_len;
};
const char *req_header(struct conn *, const char *name);
/* A query parameter, percent-decoded; the nth (0…) of that name. */
const char *req_query(struct conn *, const char *name, int nth);
void	 http_reply(struct conn *, int status, const char *type,
	    const void *body, size_t len);
void	 http_json(struct conn *, int status, json_t *);	/* steals */
void	 http_error(struct conn *, int status, const char *code,
	    const char *fmt, ...) INIT_PRINTF(4, 5);
/* The file's bytes as the answer, sent as the socket drains; steals fd. */
void	 http_reply_fd(struct conn *, int status, const char *type, int fd,
	    off_t size);
/*
 * The request's JSON body, an object; NULL after answering 411 (no
 * Content-Length) or 400. Caller decrefs.
 */
json_t	*http_body_json(struct conn *, const struct req *);
/*
 * A body taken as it arrives (PUT /files, up to http_file_limit): the
 * router calls the handler once the head is in, with req->body NULL and
 * req->body_len the Content-Length. The handler answers at once or calls
 * http_body_sink; fn then gets each piece, and (NULL, 0) at the end. fn
 * returns -1 when it has answered and wants no more.
 */
typedef int (*body_fn)(struct conn *, void *arg, const char *, size_t);
void	 http_body_sink(struct conn *, body_fn, void *arg);
void	 http_file_limit(size_t);
/* For init_conn.c: the socket is readable in CONN_HEAD, CONN_BODY. */
void	 http_read_head(struct conn *);
void	 http_read_body(struct conn *);
/* An answer's head into the queue; len -1: no Content-Length. */
void	 http_head(struct conn *, int status, const char *type,
	    long long len, const char *extra);

/* init_conn.c: connections, their output, SSE, the WebSocket upgrade */
typedef void (*conn_close_fn)(struct conn *, void *arg);
void	 conn_listen(int fd);
/*
 * Streams. sse_start sends the head; sse_event queues one event; the
 * output buffer is bounded (1 MiB): conn_backlog says how much is queued
 * so a producer can stop reading its source until it drains, and
 * conn_on_drain calls back when it has. conn_end flushes and closes.
 */
void	 sse_start(struct conn *);
int	 sse_event(struct conn *, const char *type, json_t *);	/* steals */
size_t	 conn_backlog(struct conn *);
void	 conn_on_drain(struct conn *, void (*)(struct conn *, void *),
	    void *);
void	 conn_end(struct conn *);
/*
 * Called once when the peer goes away or the connection ends (after
 * conn_end, or after an answer was sent), always from the loop, never
 * from inside a conn_ or http_ call; the conn is freed when it returns.
 * conn_on_close(c, NULL, NULL) drops it. conn_on_drain is called each
 * time the queue has emptied, until dropped the same way.
 */
void	 conn_on_close(struct conn *, conn_close_fn, void *arg);
/*
 * WebSocket upgrade: answers 101 (RFC 6455 §4.2.2) and hands the socket
 * over; the conn is gone after this. Returns the fd or -1 (an error
 * answer was sent).
 */
int	 conn_upgrade(struct conn *);
/* For init_http.c: the output queue and the connection's state. */
int	 conn_put(struct conn *, const void *, size_t n, size_t max);
void	 conn_flush(struct conn *);	/* never blocks, never frees */
void	 conn_arm(struct conn *);
void	 conn_discard(struct conn *, size_t left);
enum conn_state {
	CONN_HEAD,	/* reading the head */
	CONN_BODY,	/* reading the body (buffer or sink) */
	CONN_BUSY,	/* the handler works; the peer may only hang up */
	CONN_STREAM,	/* SSE */
	CONN_DONE,	/* answered: flush, then close */
	CONN_GONE	/* upgraded: the socket is someone else's */
};
struct http_param {
	const char	*name;
	const char	*value;
};
/* Its insides are init_conn.c's and init_http.c's alone. */
struct conn {
	LIST_ENTRY(conn) entry;
	int		 fd;
	enum conn_state	 state;
	uint32_t	 ev;		/* registered events */
	long		 timer;		/* read deadline, then linger */
	bool		 dead;		/* the socket failed: destroy */
	bool		 in_handler;
	/* The request; method, headers point into head. */
	char		*head;		/* HTTP_HEAD_MAX + 1, owned */
	size_t		 hlen;
	struct req	 req;
	unsigned	 method;
	const struct route *route;
	const char	*names[HTTP_HDRS_MAX], *values[HTTP_HDRS_MAX];
	int		 nhdrs;
	char		*path;		/* owned */
	char		*qbuf;		/* owned: decoded query pieces */
	struct http_param params[HTTP_PARAMS_MAX];
	int		 nparams;
	char		*body;		/* owned, NUL-terminated */
	size_t		 bgot, bwant;
	body_fn		 sink;
	void		*sink_arg;
	bool		 discard;	/* drop what the peer still sends */
	size_t		 dleft;
	bool		 wr_shut;
	/* The answer. */
	bool		 answered;
	char		*out;		/* owned: head, SSE events */
	size_t		 ooff, olen, ocap;
	char		*tail;		/* owned: a buffered body */
	size_t		 toff, tlen;
	int		 ffd;		/* a file body, or -1 */
	off_t		 fleft;
	bool		 drain_armed;
	uint64_t	 last_write;	/* the last progress of the answer */
	conn_close_fn	 on_close;
	void		*close_arg;
	void		(*on_drain)(struct conn *, void *);
	void		*drain_arg;
};

/* init_exec.c: POST /exec */
#define EXEC_READ_CHUNK	(16 * 1024)
#define EXEC_STREAM_HIGH (256 * 1024)	/* backlog: stop reading above */
#define EXEC_GRACE_MS	200		/* output held open after the exit */
#define EXEC_TIMEOUT_MAX 3600000
void	 exec_handle(struct conn *, const struct req *);
/* exit_code, and signal when a signal ended it (as a shell: 128 + N). */
void	 exec_exit_fields(json_t *, int status);

/* init_proc.c: /processes, background processes */
/* The last RING_MAX bytes of a stream; grows until then, then wraps. */
struct plog_ring {
	char		*buf;		/* owned */
	size_t		 cap;
	uint64_t	 total;		/* bytes ever written */
};
/* Shared by init_proc.c, init_plog.c (followers), init_pwait.c (waiters). */
struct proc {
	LIST_ENTRY(proc) entry;
	char		 id[65];
	json_t		*cmd;
	pid_t		 pid;
	bool		 running;	/* until exited and output drained */
	bool		 exited;
	int		 status;
	int64_t		 started_ms, ended_ms;
	struct spawn_src src[2];
	struct plog_ring ring[2];
	long		 grace, kill_timer;
	LIST_HEAD(, plog_follower) followers;
	LIST_HEAD(, pwait) waiters;
};
void	 proc_handle(struct conn *, const struct req *);
void	 proc_kill_all(int sig);
int	 proc_count(void);		/* running background processes */

/* init_plog.c: a background process's output, GET …/logs */
void	 plog_logs(struct conn *, struct proc *);
int	 plog_put(struct proc *, int i, const char *, size_t);
void	 plog_ended(struct proc *);
void	 plog_drop(struct proc *);
uint64_t plog_ring_low(const struct plog_ring *);  /* the oldest kept */
void	 plog_ring_copy(const struct plog_ring *, uint64_t from, char *,
	    size_t n);

/* init_pwait.c: POST …/wait, and a DELETE's wait for the end */
void	 pwait_handle(struct conn *, const struct req *, struct proc *);
int	 pwait_exit(struct conn *, struct proc *);
void	 pwait_output(struct proc *);
bool	 pwait_ended(struct proc *);
void	 pwait_drop(struct proc *);

/* init_files.c */
void	 files_handle(struct conn *, const struct req *);

/* init_watch.c */
void	 watch_handle(struct conn *, const struct req *);

/* init_wpath.c: a watch stream's paths */
struct wpath_ent {
	int		 wd;		/* 0: an empty slot */
	char		*rel;		/* owned; "" is the root */
};
/* Folders by inotify wd: open addressing, linear probing. */
struct wpath_tab {
	struct wpath_ent *ent;		/* owned */
	size_t		 cap, count;
};
struct wpath_ent *wpath_find(struct wpath_tab *, int wd);
int	 wpath_put(struct wpath_tab *, int wd, const char *rel);
void	 wpath_del(struct wpath_tab *, int wd);
void	 wpath_clear(struct wpath_tab *);
/* Folders to scan, breadth first; each one already has its watch. */
struct wpath_queue {
	char		**v;		/* owned, and each string */
	size_t		 head, n, cap;
};
int	 wpath_push(struct wpath_queue *, const char *rel);
/* parent/name into out (PATH_MAX); -1 when too long. */
int	 wpath_join(char *out, const char *parent, const char *name);
bool	 wpath_match(char *const *pats, size_t n, const char *rel);

/* init_term.c: GET /terminal, /terminals */
void	 term_handle(struct conn *, const struct req *);
void	 terms_handle(struct conn *, const struct req *); /* /terminals */

/* init_pty.c: terminals, a shell on a PTY each */
#define PTY_ID_MAX	64
#define PTY_DIM_MAX	1000		/* cols, rows */
struct pty;
struct ws;
struct pty *pty_new(const char *id, unsigned short cols,
	    unsigned short rows);
struct pty *pty_find(const char *id);
struct pty *pty_next(struct pty *);
int	 pty_count(void);		/* live terminals, for /health */
void	 pty_kill_all(int sig);
struct ws *pty_ws_new(int fd);
void	 pty_attach(struct pty *, struct ws *);
void	 pty_resize(struct pty *, long cols, long rows);	/* 0: keep */
void	 pty_hangup(struct pty *);
void	 pty_delete(struct conn *, struct pty *);
json_t	*pty_json(const struct pty *);

/* init_ws.c: WebSocket (RFC 6455) framing */
#define WS_MSG_MAX	(1024 * 1024)	/* a frame or message: else 1009 */
/* A byte queue with a hard maximum set at creation. */
struct ws_buf {
	char		*b;		/* owned */
	size_t		 off, len;	/* pending: b[off .. off+len) */
	size_t		 cap, max;
};
void	 ws_buf_init(struct ws_buf *, size_t max);
int	 ws_buf_put(struct ws_buf *, const void *, size_t);
void	 ws_buf_eat(struct ws_buf *, size_t);
void	 ws_buf_free(struct ws_buf *);
/*
 * What a ws tells its owner, with the arg it was attached with: a whole
 * message (text: checked UTF-8); whether the owner takes no input now
 * (reading stops until ws_resume); that output was written (there may be
 * room); that the ws is gone (freed, after its peer left or closed).
 */
struct ws_owner {
	void	(*message)(void *, struct ws *, const char *, size_t,
		    bool text);
	bool	(*stalled)(void *);
	void	(*flushed)(void *);
	void	(*detached)(void *);
};
/* The ws frees itself, from its own callbacks only. */
struct ws *ws_new(int fd, size_t out_max);
void	 ws_attach(struct ws *, const struct ws_owner *, void *arg);
void	 ws_resume(struct ws *);
void	 ws_binary(struct ws *, const void *, size_t);
void	 ws_text(struct ws *, json_t *);			/* steals */
void	 ws_close(struct ws *, int code, const char *reason);
void	 ws_fail(struct ws *, int code, const char *why);
void	 ws_update(struct ws *);
size_t	 ws_backlog(const struct ws *);

#endif
