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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define INIT_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* init.c: the loop, signals, reaping, forwarders */
typedef void (*loop_fn)(void *arg, uint32_t events);
int	 loop_add(int fd, uint32_t events, loop_fn, void *arg);
int	 loop_mod(int fd, uint32_t events, loop_fn, void *arg);
void	 loop_del(int fd);		/* before close(fd) */
uint64_t init_now_ms(void);		/* monotonic */
int64_t	 init_wall_ms(void);		/* unix milliseconds */
/*
 * Timers: one-shot, in milliseconds; the id cancels. The callback gets
 * the arg. At most a few hundred live at once (exec deadlines, kills).
 */
typedef void (*timer_fn)(void *arg);
long	 timer_add(uint64_t after_ms, timer_fn, void *arg);
void	 timer_cancel(long id);
/*
 * Child exits: whoever spawns registers the pid; PID 1 reaps every child
 * and calls the owner's callback with the wait status. Orphans it reaps
 * silently.
 */
typedef void (*exit_fn)(void *arg, pid_t, int status);
void	 child_watch(pid_t, exit_fn, void *arg);
void	 child_unwatch(pid_t);
/*
 * Spawn argv (execvp) in a new process group with fds 0, 1, 2 set to
 * in, out, err (-1: /dev/null), cwd and extra env ("K=V", NULL-ended,
 * may be NULL) over the base environment. Returns the pid or -1 with
 * errno; an exec failure shows as exit status 127 (126: not executable)
 * with the reason written to err.
 */
pid_t	 init_spawn(char *const argv[], const char *cwd, char *const env[],
	    int in, int out, int err);
void	 init_base_env(char ***out);	/* caller frees with free() */
/* One line on stderr, "pincer-init: " first. */
void	 init_log(const char *fmt, ...) INIT_PRINTF(1, 2);
/*
 * After accept failed with err: out of fds, the listener (registered
 * with fn and the fd as arg) leaves the loop for a moment.
 */
void	 init_accept_pause(int lfd, int err, loop_fn fn);

/* init_http.c: one request per connection, answered then closed */
#define HTTP_HEAD_MAX	(16 * 1024)
#define HTTP_JSON_MAX	(1024 * 1024)
#define HTTP_OUT_MAX	(1024 * 1024)	/* a stream's queue */
struct conn;
typedef void (*conn_close_fn)(struct conn *, void *arg);
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
 * conn_body_sink; fn then gets each piece, and (NULL, 0) at the end. fn
 * returns -1 when it has answered and wants no more.
 */
typedef int (*body_fn)(struct conn *, void *arg, const char *, size_t);
void	 conn_body_sink(struct conn *, body_fn, void *arg);
void	 http_file_limit(size_t);
/* RFC 4648 base64 of n bytes; caller frees; *len gets its length. */
char	*http_base64(const void *, size_t n, size_t *len);
/* A JSON string of n bytes; invalid UTF-8 becomes U+FFFD. */
json_t	*http_jstr(const void *, size_t n);
/* How many trailing bytes begin a UTF-8 sequence that is cut off. */
size_t	 http_utf8_hold(const void *, size_t n);
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
int	 http_upgrade(struct conn *);
void	 http_listen(int fd);

/* init_exec.c: exec, background processes */
void	 exec_handle(struct conn *, const struct req *);
void	 proc_handle(struct conn *, const struct req *);
void	 proc_kill_all(int sig);
int	 proc_count(void);		/* running background processes */

/* init_files.c */
void	 files_handle(struct conn *, const struct req *);

/* init_watch.c */
void	 watch_handle(struct conn *, const struct req *);

/* init_term.c: PTY terminals over WebSocket */
void	 term_handle(struct conn *, const struct req *);
void	 terms_handle(struct conn *, const struct req *); /* /terminals */
void	 term_kill_all(int sig);
/* Live terminals, for /health; weak: 0 until init_term.c has it. */
int	 term_count(void) __attribute__((weak));

#endif
