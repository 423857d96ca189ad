/* SPDX-License-Identifier: MIT */
/*
 * http.c: plain HTTP on libmicrohttpd. One daemon per worker loop
 * (upcall.c runs it, in libmicrohttpd's external-polling mode, next to
 * the loop's outbound calls); the daemons have no socket of their own:
 * the front door hands each connection to a loop in turn. Per request:
 * rate limit, body limit, route, handler, one JSON error shape, metrics
 * and one log line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "pincer.h"

struct http_req {
	char			 id[17];
	struct MHD_Connection	*conn;
	const char		*url;		/* decoded path, MHD's */
	const char		*method;
	size_t			 route_idx;
	double			 start;
	int			 status;
	bool			 replied;
	bool			 too_large;
	bool			 via_proxy;	/* peer is a trusted proxy */
	bool			 close;		/* answer, then close */
	struct ipaddr		 ip;
	char			 ipstr[64];
	const char		*param;		/* the route's {x}, in url */
	struct identity		 who;
	char			*set_cookie;	/* owned; a secret: wiped */
	char			 csrf[64];
	struct buf		 body;
	bool			 by_socket;	/* who: from the socket */
	http_resume_fn		 resume;	/* suspended: called again */
	http_done_fn		 done;		/* at the end, in any case */
	void			 *defer_arg;
	/* http_req_fake: no connection; these instead. */
	const char *const	*fake_headers;	/* "Name: value" */
	const char *const	*fake_query;	/* "name=value" */
};

static enum MHD_Result on_request(void *, struct MHD_Connection *,
		    const char *, const char *, const char *, const char *,
		    size_t *, void **);
static void	on_completed(void *, struct MHD_Connection *, void **,
		    enum MHD_RequestTerminationCode);
static void	on_connection(void *, struct MHD_Connection *, void **,
		    enum MHD_ConnectionNotificationCode);
static size_t	unescape(void *, struct MHD_Connection *, char *);
static int	hexval(char);
static const char *fake_lookup(const char *const *, const char *, char);
static void	on_mhd_log(void *, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));
static bool	req_begin(struct http_req *);
static bool	req_begin_unix(struct http_req *, const struct sockaddr *);
static bool	req_length_ok(struct http_req *);
static void	req_dispatch(struct http_req *);
static void	req_log(struct http_req *, enum MHD_RequestTerminationCode);

/*
 * A keep-alive connection between two requests. The front door gives the
 * first head of a connection http.header_timeout_s; libmicrohttpd would
 * give the later ones only an idle timeout, which every trickled byte
 * resets. So the next complete head must also arrive within
 * header_timeout_s of the previous answer, or the watchdog shuts the
 * socket (libmicrohttpd then closes the connection itself).
 */
struct conn {
	int		 fd;
	bool		 waiting;	/* between requests */
	double		 since;
	struct conn	*prev;
	struct conn	*next;
};

static void	*watchdog(void *);
static struct conn *conn_state(struct MHD_Connection *);
static size_t	 head_size(struct MHD_Connection *, const char *,
		    const char *, const char *);
static enum MHD_Result add_size(void *, enum MHD_ValueKind, const char *,
		    const char *);

static void	 adopt(void *);

static struct MHD_Daemon **mhds;	/* one per worker loop */
static int		 nmhd;
static unsigned int	 next_loop;	/* atomic: round robin */
static pthread_mutex_t	 conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 conns_cond = PTHREAD_COND_INITIALIZER;
static struct conn	*conns;
static pthread_t	 watchdog_thread;
static bool		 watchdog_running;
static bool		 watchdog_quit;
static long	 in_flight;	/* atomic */
static bool	 draining;	/* atomic */

static const struct {
	int		 code;
	const char	*text;
} statuses[] = {
	{ 200, "OK" }, { 201, "Created" }, { 204, "No Content" },
	{ 301, "Moved Permanently" }, { 304, "Not Modified" },
	{ 400, "Bad Request" }, { 401, "Unauthorized" },
	{ 403, "Forbidden" }, { 404, "Not Found" },
	{ 405, "Method Not Allowed" }, { 408, "Request Timeout" },
	{ 413, "Content Too Large" }, { 426, "Upgrade Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" }, { 503, "Service Unavailable" },
};

int
http_start(const struct config *c)
{
	unsigned int	 flags = MHD_USE_NO_LISTEN_SOCKET | MHD_USE_EPOLL |
			    MHD_ALLOW_SUSPEND_RESUME;
	/* Room for the largest head plus MHD's own bookkeeping. */
	size_t		 mem = (size_t)c->max_header_bytes + 4096;
	int		 i, n = upcall_loops();

	if ((mhds = calloc((size_t)n, sizeof(*mhds))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		mhds[i] = MHD_start_daemon(flags, 0, NULL, NULL, on_request,
		    NULL,
		    MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned int)c->idle_timeout_s,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
		    /* The door enforces http.max_connections, which SIGHUP
		     * may raise: libmicrohttpd's own limit is a backstop. */
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)65536 + 64,
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		    MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
		    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		    MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		    MHD_OPTION_END);
		if (mhds[i] == NULL) {
			log_error("cannot start the HTTP server", NULL);
			return -1;
		}
		nmhd = i + 1;
		upcall_attach(i, mhds[i]);
	}
	if (pthread_create(&watchdog_thread, NULL, watchdog, NULL) != 0)
		return -1;
	watchdog_running = true;
	return 0;
}

struct adoption {
	int			 fd;
	int			 loop;
	socklen_t		 len;
	struct sockaddr_storage	 sa;
};

/*
 * The front door passes a socket whose first request is still unread.
 * A daemon polled from outside takes connections on its own thread.
 */
int
http_adopt(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct adoption	*a;

	if (nmhd == 0 || len > sizeof(a->sa) ||
	    (a = calloc(1, sizeof(*a))) == NULL) {
		close(fd);
		return -1;	/* the door counts it closed */
	}
	a->fd = fd;
	a->len = len;
	memcpy(&a->sa, sa, len);
	a->loop = (int)(__atomic_fetch_add(&next_loop, 1, __ATOMIC_RELAXED) %
	    (unsigned int)nmhd);
	upcall_post_on(a->loop, adopt, a);
	return 0;
}

static void
adopt(void *arg)
{
	struct adoption	*a = arg;

	/* libmicrohttpd closes the socket itself, even when it refuses it. */
	if (MHD_add_connection(mhds[a->loop], a->fd, (struct sockaddr *)&a->sa,
	    a->len) != MHD_YES) {
		log_warn("HTTP server refused a connection", "%s",
		    strerror(errno));
		door_conn_closed();
	} else
		upcall_mhd_wake(mhds[a->loop]);
	free(a);
}

/*
 * Wait, bounded, for requests in flight. Answers given meanwhile say
 * "Connection: close" so keep-alive clients move on.
 */
void
http_drain(long timeout_s)
{
	uint64_t	 end = now_ms() + (uint64_t)timeout_s * 1000;
	long		 n;

	__atomic_store_n(&draining, true, __ATOMIC_RELEASE);
	while ((n = http_in_flight()) > 0 && now_ms() < end)
		usleep(10000);
	if (n > 0)
		log_warn("shutdown timeout reached", "%ld requests cut off",
		    n);
}

void
http_stop(void)
{
	int	 i;

	if (watchdog_running) {
		pthread_mutex_lock(&conns_lock);
		watchdog_quit = true;
		pthread_cond_signal(&conns_cond);
		pthread_mutex_unlock(&conns_lock);
		pthread_join(watchdog_thread, NULL);
		watchdog_running = false;
	}
	for (i = 0; i < nmhd; i++)
		MHD_stop_daemon(mhds[i]);
	free(mhds);
	mhds = NULL;
	nmhd = 0;
}

bool
http_draining(void)
{
	return __atomic_load_n(&draining, __ATOMIC_ACQUIRE);
}

long
http_in_flight(void)
{
	return __atomic_load_n(&in_flight, __ATOMIC_ACQUIRE);
}

const char *
http_req_header(struct http_req *r, const char *name)
{
	if (r->conn == NULL)
		return fake_lookup(r->fake_headers, name, ':');
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
http_req_path(struct http_req *r)
{
	return r->url;
}

const char *
http_req_method(struct http_req *r)
{
	return r->method;
}

const char *
http_req_id(struct http_req *r)
{
	return r->id;
}

void
http_req_body(struct http_req *r, const char **p, size_t *n)
{
	*p = r->body.data != NULL ? r->body.data : "";
	*n = r->body.len;
}

struct identity *
http_req_identity(struct http_req *r)
{
	return &r->who;
}

/* For auth_in: headers of an HTTP request. */
const char *
http_req_header_cb(void *ctx, const char *name)
{
	return http_req_header(ctx, name);
}

const char *
http_req_ip(struct http_req *r)
{
	return r->ipstr;
}

const char *
http_req_param(struct http_req *r)
{
	return r->param != NULL ? r->param : "";
}

const char *
http_req_query(struct http_req *r, const char *name)
{
	if (r->conn == NULL)
		return fake_lookup(r->fake_query, name, '=');
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

static enum MHD_Result
query_part(void *arg, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct buf	*b = arg;

	(void)kind;
	if (buf_printf(b, "%s%s%s%s", b->len > 0 ? "&" : "", key,
	    value != NULL ? "=" : "", value != NULL ? value : "") == -1)
		return MHD_NO;
	return MHD_YES;
}

/*
 * The whole query, put together again from its decoded parts: for
 * routes whose query is one value, not key=value pairs (/json/new?URL).
 * Caller frees; NULL: none, or over max bytes.
 */
char *
http_req_query_string(struct http_req *r, size_t max)
{
	struct buf	 b;

	buf_init(&b, max);
	if (r->conn == NULL || MHD_get_connection_values(r->conn,
	    MHD_GET_ARGUMENT_KIND, query_part, &b) < 0 || b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/*
 * A request with no connection, for tests and fuzz targets that drive a
 * handler's parsing (a webhook's) directly. Only the accessors work;
 * nothing may be answered on it. The arrays must outlive it.
 */
struct http_req *
http_req_fake(const char *method, const char *url,
    const char *const *headers, const char *const *query, const void *body,
    size_t len)
{
	struct http_req	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->method = method;
	r->url = url;
	r->fake_headers = headers;
	r->fake_query = query;
	snprintf(r->ipstr, sizeof(r->ipstr), "fake");
	buf_init(&r->body, len + 1);
	if (buf_append(&r->body, body, len) == -1) {
		free(r);
		return NULL;
	}
	return r;
}

void
http_req_fake_free(struct http_req *r)
{
	if (r == NULL)
		return;
	buf_free(&r->body);
	free(r);
}

/* A fake request's header or query value (case-insensitive names). */
static const char *
fake_lookup(const char *const *list, const char *name, char sep)
{
	size_t	 n = strlen(name);

	for (; list != NULL && *list != NULL; list++)
		if (strncasecmp(*list, name, n) == 0 && (*list)[n] == sep)
			return *list + n + 1 + (sep == ':' && (*list)[n + 1] ==
			    ' ');
	return NULL;
}

/*
 * Reached over HTTPS: public_url says so, or a trusted proxy does with
 * X-Forwarded-Proto. pincerd itself speaks plain HTTP behind the proxy.
 */
bool
http_req_secure(struct http_req *r)
{
	const char	*xfp;

	if (!strncmp(config_current()->public_url, "https://", 8))
		return true;
	xfp = http_req_header(r, "X-Forwarded-Proto");
	return r->via_proxy && xfp != NULL && !strcasecmp(xfp, "https");
}

void
http_req_set_cookie(struct http_req *r, const char *cookie, const char *csrf)
{
	if (r->set_cookie != NULL) {
		explicit_bzero(r->set_cookie, strlen(r->set_cookie));
		free(r->set_cookie);
	}
	r->set_cookie = strdup(cookie);
	snprintf(r->csrf, sizeof(r->csrf), "%s", csrf != NULL ? csrf : "");
}

const char *
http_req_csrf(struct http_req *r)
{
	return r->csrf;
}

/* Every answer goes out here: request id, drain, and the status kept. */
/*
 * Park the request: no thread waits for it. fn runs (on an HTTP thread)
 * after http_resume; done runs when the request ends, answered or not.
 */
void
http_suspend(struct http_req *r, http_resume_fn fn, http_done_fn done,
    void *arg)
{
	r->resume = fn;
	r->done = done;
	r->defer_arg = arg;
	MHD_suspend_connection(r->conn);
}

/* Any thread; only for a request parked by http_suspend. */
void
http_resume(struct http_req *r)
{
	http_conn_resume(r->conn);
}

/* Any thread: resume a parked connection and wake the loop that runs it. */
void
http_conn_resume(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo	*ci;

	MHD_resume_connection(c);
	if ((ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON)) !=
	    NULL)
		upcall_mhd_wake(ci->daemon);
}

struct MHD_Connection *
http_req_conn(struct http_req *r)
{
	return r->conn;
}

bool
http_req_by_socket(struct http_req *r)
{
	return r->by_socket;
}

void
http_reply(struct http_req *r, int status, struct MHD_Response *resp)
{
	if (resp == NULL) {
		resp = MHD_create_response_from_buffer(0, (void *)"",
		    MHD_RESPMEM_PERSISTENT);
		status = 500;
	}
	MHD_add_response_header(resp, "X-Request-Id", r->id);
	if (r->set_cookie != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE,
		    r->set_cookie);
	if (http_draining() || r->close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
		    "close");
	if (MHD_queue_response(r->conn, (unsigned int)status, resp) ==
	    MHD_YES) {
		r->status = status;
		r->replied = true;
	}
	MHD_destroy_response(resp);
}

void
http_json(struct http_req *r, int status, const char *json)
{
	struct MHD_Response	*resp;

	resp = MHD_create_response_from_buffer(strlen(json), (void *)json,
	    MHD_RESPMEM_MUST_COPY);
	if (resp != NULL) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    "application/json");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
		    "no-store");
	}
	http_reply(r, status, resp);
}

/* A plain-text answer (what Chromium's /json/close says, say). */
void
http_text(struct http_req *r, int status, const char *text)
{
	struct MHD_Response	*resp;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
	    MHD_RESPMEM_MUST_COPY);
	if (resp != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    "text/plain; charset=utf-8");
	http_reply(r, status, resp);
}

/*
 * A JSON object as the answer; takes the reference. The text is wiped
 * after: an answer may hold a token shown once.
 */
void
http_reply_json(struct http_req *r, int status, json_t *o)
{
	char	*s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	if (s == NULL)
		http_error(r, 500, "internal", "cannot encode the answer");
	else
		http_json(r, status, s);
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
	json_decref(o);
}

void
http_error(struct http_req *r, int status, const char *code,
    const char *fmt, ...)
{
	struct buf	 body;
	char		 msg[512];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_init(&body, 4096);
	http_error_body(&body, code, msg);
	http_json(r, status, body.data != NULL ? body.data : "{}");
	buf_free(&body);
}

/* 429 with Retry-After (RFC 9110 §10.2.3) and the JSON error. */
void
http_retry_later(struct http_req *r, long secs, const char *code,
    const char *msg)
{
	struct MHD_Response	*resp;
	struct buf		 body;
	char			 s[24];

	buf_init(&body, 4096);
	http_error_body(&body, code, msg);
	resp = MHD_create_response_from_buffer(body.len, body.data,
	    MHD_RESPMEM_MUST_COPY);
	buf_free(&body);
	if (resp != NULL) {
		snprintf(s, sizeof(s), "%ld", secs);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    "application/json");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, s);
	}
	http_reply(r, 429, resp);
}

/* {"error":{"code":"…","message":"…"}}, the one error shape. */
void
http_error_body(struct buf *b, const char *code, const char *msg)
{
	json_t	*o;
	char	*s;

	o = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
	s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	buf_puts(b, s != NULL ? s : "{\"error\":{\"code\":\"internal\"}}");
	free(s);
	json_decref(o);
}

const char *
http_status_text(int code)
{
	size_t	 i;

	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].code == code)
			return statuses[i].text;
	return "Unknown";
}

/* 64 random bits per request, from a per-thread generator. */
void
http_request_id(char out[17])
{
	static __thread uint64_t state;
	uint64_t	 x;

	if (state == 0 && (getrandom(&state, sizeof(state), 0) !=
	    sizeof(state) || state == 0))
		state = ((uint64_t)now_ms() ^ ((uint64_t)getpid() << 32)) | 1;
	/* xorshift64*: ids need to be unique and unguessable enough to
	 * correlate, not to authenticate. */
	x = state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	state = x;
	snprintf(out, 17, "%016llx",
	    (unsigned long long)(x * 0x2545F4914F6CDD1DULL));
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **ctx)
{
	struct http_req	*r = *ctx;

	if (r == NULL) {
		struct conn	*cs = conn_state(conn);

		if (cs != NULL) {
			pthread_mutex_lock(&conns_lock);
			cs->waiting = false;
			pthread_mutex_unlock(&conns_lock);
		}
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		__atomic_add_fetch(&in_flight, 1, __ATOMIC_ACQ_REL);
		*ctx = r;
		r->conn = conn;
		r->url = url;
		r->method = method;
		r->start = now_seconds();
		r->route_idx = ROUTE_IDX_NONE;
		http_request_id(r->id);
		buf_init(&r->body, (size_t)route_body_max(method, url));
		/* Later heads on a keep-alive connection: the door checked
		 * only the first. */
		if (head_size(conn, url, method, version) >
		    (size_t)config_current()->max_header_bytes) {
			r->close = true;
			http_error(r, 431, "header_too_large", "the request "
			    "head is larger than http.max_header_bytes");
			return MHD_YES;
		}
		req_begin(r);
		return MHD_YES;
	}
	if (r->resume != NULL && !r->replied) {
		http_resume_fn	 fn = r->resume;

		r->resume = NULL;
		fn(r, r->defer_arg);
		if (!r->replied && r->resume == NULL)
			http_error(r, 500, "internal", "the handler gave no "
			    "answer");
		return MHD_YES;
	}
	if (r->replied) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!r->too_large &&
		    buf_append(&r->body, upload, *upload_size) == -1) {
			/* Answer now: a body that never ends must not hold
			 * the connection. libmicrohttpd closes it after. */
			r->too_large = true;
			buf_free(&r->body);
			r->close = true;
			http_error(r, 413, "body_too_large", "the request body "
			    "is larger than this route takes (%zu bytes)",
			    r->body.max);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_large)
		http_error(r, 413, "body_too_large", "the request body is "
		    "larger than this route takes");
	else
		req_dispatch(r);
	return MHD_YES;
}

/*
 * Checks that need no body: the rate limit, and a declared length over the
 * limit (answered before the body is read; MHD then closes).
 */
static bool
req_begin(struct http_req *r)
{
	const struct config	*c = config_current();
	const union MHD_ConnectionInfo *ci;
	const char		*fwd, *comma;
	long			 wait;

	ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	fwd = http_req_header(r, "X-Forwarded-For");
	while (fwd != NULL && (comma = strchr(fwd, ',')) != NULL)
		fwd = comma + 1;
	while (fwd != NULL && *fwd == ' ')
		fwd++;
	if (ci != NULL && ci->client_addr != NULL &&
	    ci->client_addr->sa_family == AF_UNIX)
		return req_begin_unix(r, ci->client_addr);
	if (ci != NULL && ci->client_addr != NULL) {
		net_client_ip(ci->client_addr, fwd, &r->ip);
		r->via_proxy = net_trusted_proxy(ci->client_addr);
	}
	net_ipaddr_str(&r->ip, r->ipstr, sizeof(r->ipstr));
	if (c->rate_limit_rps > 0 &&
	    (wait = ratelimit_take(&r->ip, c->rate_limit_rps,
	    c->rate_limit_burst)) > 0) {
		http_retry_later(r, wait, "rate_limited", "too many requests "
		    "from this address; retry later");
		return false;
	}
	return req_length_ok(r);
}

/*
 * A caller on a Unix socket is known by the socket that accepted it (the
 * door kept the listener's path as the address): pincerd.sock is the
 * local owner, a gateway.sock its sandbox. It is not rate-limited by
 * address; a socket nobody owns any more is refused.
 */
static bool
req_begin_unix(struct http_req *r, const struct sockaddr *sa)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;

	snprintf(r->ipstr, sizeof(r->ipstr), "unix");
	if (auth_path_identity(sun->sun_path, &r->who) != 1) {
		http_error(r, 403, "forbidden", "this socket no longer "
		    "belongs to anyone");
		return false;
	}
	r->by_socket = true;
	return req_length_ok(r);
}

/* A declared length over the route's limit is answered before the body. */
static bool
req_length_ok(struct http_req *r)
{
	const char		*cl;
	char			*end;
	unsigned long long	 n;

	cl = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL) {
		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno == 0 && *end == '\0' &&
		    n > (unsigned long long)r->body.max) {
			http_error(r, 413, "body_too_large", "the request body "
			    "is larger than this route takes (%zu bytes)",
			    r->body.max);
			return false;
		}
	}
	return true;
}

static void
req_dispatch(struct http_req *r)
{
	const struct route	*rt;
	char			 allow[64];

	switch (route_find(r->method, r->url, &rt, &r->param)) {
	case ROUTE_FOUND:
		r->route_idx = route_index(rt);
		if (!route_allowed(rt, r))
			break;
		rt->handler(r);
		break;
	case ROUTE_NO_METHOD:
		r->route_idx = ROUTE_IDX_NONE;
		if (route_find_ws(r->url) != NULL) {
			http_error(r, 426, "upgrade_required", "this route "
			    "takes a WebSocket upgrade as the first request "
			    "on a new connection");
			break;
		}
		{
			struct MHD_Response	*resp;
			struct buf		 body;

			buf_init(&body, 4096);
			http_error_body(&body, "method_not_allowed",
			    "this route does not take that method");
			resp = MHD_create_response_from_buffer(body.len,
			    body.data, MHD_RESPMEM_MUST_COPY);
			buf_free(&body);
			MHD_add_response_header(resp, "Content-Type",
			    "application/json");
			MHD_add_response_header(resp, "Allow",
			    route_allow(r->url, allow, sizeof(allow)));
			http_reply(r, 405, resp);
		}
		break;
	case ROUTE_NONE:
		if ((!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"))
		    && strncmp(r->url, "/api/", 5) != 0) {
			r->route_idx = ROUTE_IDX_STATIC;
			static_serve(r, config_current()->admin_ui_dir);
		} else
			http_error(r, 404, "not_found", "no such route");
		break;
	}
	if (!r->replied && r->resume == NULL)
		http_error(r, 500, "internal", "the handler gave no answer");
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
    enum MHD_RequestTerminationCode toe)
{
	struct http_req	*r = *ctx;
	struct conn	*cs;

	if (r == NULL)
		return;
	if ((cs = conn_state(conn)) != NULL) {
		pthread_mutex_lock(&conns_lock);
		cs->waiting = true;
		cs->since = now_seconds();
		pthread_mutex_unlock(&conns_lock);
	}
	if (r->replied)
		metrics_request(r->route_idx, r->status,
		    now_seconds() - r->start);
	req_log(r, toe);
	if (r->done != NULL)
		r->done(r->defer_arg);
	if (r->set_cookie != NULL) {
		explicit_bzero(r->set_cookie, strlen(r->set_cookie));
		free(r->set_cookie);
	}
	if (r->body.data != NULL)	/* bodies may hold passwords */
		explicit_bzero(r->body.data, r->body.len);
	buf_free(&r->body);
	free(r);
	*ctx = NULL;
	__atomic_sub_fetch(&in_flight, 1, __ATOMIC_ACQ_REL);
}

/*
 * The path is logged, never the query string: a query may carry what a
 * careless client put there. Headers are never logged.
 */
static void
req_log(struct http_req *r, enum MHD_RequestTerminationCode toe)
{
	struct logline	 l;
	enum log_level	 lvl = LOG_INFO;

	if (!config_current()->log_requests && r->status < 500 &&
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		return;
	if (r->status >= 500 || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		lvl = LOG_WARN;
	if (!log_begin(&l, lvl, "request"))
		return;
	log_str(&l, "rid", r->id);
	log_str(&l, "method", r->method);
	log_str(&l, "path", r->url);
	log_int(&l, "status", r->status);
	log_int(&l, "us", (long long)((now_seconds() - r->start) * 1e6));
	log_str(&l, "ip", r->ipstr);
	if (r->who.kind != ID_NONE)
		log_str(&l, "user", r->who.user);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_str(&l, "end", toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
		    ? "timeout" : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN
		    ? "shutdown" : toe ==
		    MHD_REQUEST_TERMINATED_CLIENT_ABORT ? "client_abort" :
		    "error");
	log_end(&l);
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **sock_ctx,
    enum MHD_ConnectionNotificationCode what)
{
	const union MHD_ConnectionInfo	*ci;
	struct conn			*cs = *sock_ctx;

	if (what == MHD_CONNECTION_NOTIFY_STARTED) {
		/* Idle timeout follows the live config, not the start one. */
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
		    (unsigned int)config_current()->idle_timeout_s);
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci == NULL || (cs = calloc(1, sizeof(*cs))) == NULL)
			return;
		cs->fd = ci->connect_fd;
		pthread_mutex_lock(&conns_lock);
		cs->next = conns;
		if (conns != NULL)
			conns->prev = cs;
		conns = cs;
		pthread_mutex_unlock(&conns_lock);
		*sock_ctx = cs;
	} else if (what == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (cs != NULL) {
			pthread_mutex_lock(&conns_lock);
			if (cs->prev != NULL)
				cs->prev->next = cs->next;
			else
				conns = cs->next;
			if (cs->next != NULL)
				cs->next->prev = cs->prev;
			pthread_mutex_unlock(&conns_lock);
			free(cs);
			*sock_ctx = NULL;
		}
		door_conn_closed();
	}
}

static struct conn *
conn_state(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

/* Shut keep-alive connections whose next head is overdue. */
static void *
watchdog(void *arg)
{
	struct timespec	 ts;
	struct conn	*cs;
	double		 now, limit;

	pthread_mutex_lock(&conns_lock);
	while (!watchdog_quit) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&conns_cond, &conns_lock, &ts);
		now = now_seconds();
		limit = (double)config_current()->header_timeout_s;
		for (cs = conns; cs != NULL; cs = cs->next)
			if (cs->waiting && now - cs->since > limit) {
				shutdown(cs->fd, SHUT_RDWR);
				cs->waiting = false;
			}
	}
	pthread_mutex_unlock(&conns_lock);
	return NULL;
}

/* Request line and headers, as they came: the bytes of the head. */
static size_t
head_size(struct MHD_Connection *c, const char *url, const char *method,
    const char *version)
{
	size_t	 n = strlen(method) + strlen(url) + strlen(version) + 4;

	MHD_get_connection_values(c, MHD_HEADER_KIND, add_size, &n);
	return n;
}

static enum MHD_Result
add_size(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	*(size_t *)cls += strlen(k) + (v != NULL ? strlen(v) : 0) + 4;
	return MHD_YES;
}

/*
 * Percent-decoding (RFC 3986 §2.1) in place, except %00: a NUL would end
 * the C string early, so /index.html%00.js would be served and logged as
 * /index.html. Left encoded, it matches no route and no file.
 */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char	*r = s, *w = s;
	int	 hi, lo;

	while (*r) {
		if (r[0] == '%' && (hi = hexval(r[1])) >= 0 &&
		    (lo = hexval(r[2])) >= 0 && (hi | lo) != 0) {
			*w++ = (char)(hi << 4 | lo);
			r += 3;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char	 line[512];
	size_t	 n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("libmicrohttpd", "%s", line);
}
