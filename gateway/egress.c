/* SPDX-License-Identifier: MIT */
/*
 * egress.c: a sandbox's only way out (issue 10). pincer-init relays
 * 127.0.0.1:3128 inside the sandbox to its gateway.sock; the front door
 * sees a proxy request there (CONNECT, or a target in absolute form) and
 * hands the socket here with the sandbox's name, known by the socket.
 *
 * A thread per connection (there are few, and each mostly waits): it
 * reads the request head, asks the sandbox's policy about the host,
 * resolves the name with the system's resolver, asks again about each
 * address, and connects to an address it was allowed. The check comes
 * after resolution and the connection goes to the address checked, so a
 * name that resolves (or rebinds) to a private range gets nowhere.
 * CONNECT tunnels are relayed as bytes; a plain HTTP request goes out in
 * origin form with "Connection: close", one request per connection
 * (egress_dial.c). A tunnel to a host an inject rule may match is
 * intercepted instead (egress_tls.c): its requests are checked one by
 * one, and credentials set on the way out.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "pincer.h"
#include "egress.h"

#define HEAD_WAIT_MS	10000
#define STACK_SIZE	((size_t)256 << 10)

static void	*conn_main(void *);
static void	 conn_unlink(struct econn *);
static void	 conn_end(struct econn *);
static int	 read_head(struct econn *, struct ereq *);
static int	 parse_target(struct ereq *, char *, size_t);
static int	 decide(struct econn *, struct ereq *, struct eg_verdict *);
static int	 sni_check(struct econn *, const struct ereq *);
static void	 log_request(const struct econn *, const struct ereq *,
		    const char *, int, int, long long, long long, uint64_t);
static const char *status_text(int);

static pthread_mutex_t	 mu = PTHREAD_MUTEX_INITIALIZER;
static struct econn	*conns;		/* mu */
static long		 nconns;	/* mu */
static bool		 stopping;	/* mu */
static pthread_cond_t	 gone = PTHREAD_COND_INITIALIZER;
/* For /metrics: requests by outcome (enum eg_outcome), bytes up and
 * down. */
static const char *const act_name[] = { "allow", "deny", "error",
	"inject" };
static uint64_t		 counts[4];	/* atomic */
static uint64_t		 bytes[2];	/* atomic */

/* The policies from config; an error names what is wrong in one. */
int
egress_start(const struct config *c, char *err, size_t errsz)
{
	if (egress_conf_load(c, err, errsz) == -1)
		return -1;
	pthread_mutex_lock(&mu);
	stopping = false;
	pthread_mutex_unlock(&mu);
	return 0;
}

/* Every connection ended, their sockets shut first. */
void
egress_stop(void)
{
	struct econn	*e;
	struct timespec	 ts;

	pthread_mutex_lock(&mu);
	stopping = true;
	for (e = conns; e != NULL; e = e->next) {
		if (e->fd != -1)
			shutdown(e->fd, SHUT_RDWR);
		if (e->up != -1)
			shutdown(e->up, SHUT_RDWR);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	while (nconns > 0 && pthread_cond_timedwait(&gone, &mu, &ts) == 0)
		;
	pthread_mutex_unlock(&mu);
	egress_conf_free();
	egress_tls_free();
}

/* Is this head a proxy's request: CONNECT, or an absolute target? */
bool
egress_wants(const struct head *h)
{
	return !strcmp(h->method, "CONNECT") ||
	    !strncasecmp(h->path, "http://", 7) ||
	    !strncasecmp(h->path, "https://", 8);
}

/* The door's socket, from the sandbox box; -1: the door closes it. */
int
egress_adopt(int fd, const char *box)
{
	const struct config	*c = config_current();
	struct econn		*e;
	pthread_attr_t		 at;
	pthread_t		 th;
	int			 rc;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	e->fd = fd;
	e->up = -1;
	snprintf(e->box, sizeof(e->box), "%s", box);
	pthread_mutex_lock(&mu);
	if (stopping || nconns >= c->egress_max_connections) {
		pthread_mutex_unlock(&mu);
		egress_refuse(e, 503, "egress_busy", stopping ? "pincerd is "
		    "stopping" : "too many connections through the egress "
		    "proxy (egress.max_connections)", NULL);
		free(e);
		return -1;
	}
	e->next = conns;
	if (conns != NULL)
		conns->prev = e;
	conns = e;
	nconns++;
	pthread_mutex_unlock(&mu);
	/* The door's sockets are non-blocking; this thread waits. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, STACK_SIZE);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&th, &at, conn_main, e);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		conn_unlink(e);
		egress_refuse(e, 503, "egress_busy", "cannot start a thread", NULL);
		free(e);
		return -1;
	}
	return 0;
}

static void
conn_unlink(struct econn *e)
{
	pthread_mutex_lock(&mu);
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		conns = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	if (--nconns == 0)
		pthread_cond_broadcast(&gone);
	pthread_mutex_unlock(&mu);
}

/* The thread's end: sockets closed, and the door told. */
static void
conn_end(struct econn *e)
{
	/* Under mu: egress_stop must not shut a number reused meanwhile. */
	pthread_mutex_lock(&mu);
	close(e->fd);
	if (e->up != -1)
		close(e->up);
	e->fd = e->up = -1;
	pthread_mutex_unlock(&mu);
	/* A secret read for an inject rule opened this thread's. */
	store_thread_done();
	door_conn_closed();
	/* Last: egress_stop waits for this, and the store and the door
	 * may be gone once it returns. */
	conn_unlink(e);
	free(e);
}

static void *
conn_main(void *arg)
{
	struct econn		*e = arg;
	struct ereq		*r;
	struct eg_verdict	 v;
	char			 why[300];
	long long		 up = 0, down = 0;
	uint64_t		 t0 = now_ms();
	int			 status, act;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		conn_end(e);
		return NULL;
	}
	memset(&v, 0, sizeof(v));
	v.rule = -1;
	if (read_head(e, r) == -1 || parse_target(r, why, sizeof(why)) ==
	    -1) {
		if (r->head_len > 0)
			egress_refuse(e, 400, "bad_request", why, NULL);
		if (r->head_len > 0)
			egress_account(e, NULL, EO_ERROR, -1, 400, 0, 0, 0);
		free(r->path);
		free(r);
		conn_end(e);
		return NULL;
	}
	/* An inject rule may match a request inside: each is checked. */
	if (!strcmp(r->method, "CONNECT") &&
	    egress_conf_intercepts(e->box, r->host, r->port)) {
		if ((status = egress_dial(e, r, &v, true, why, sizeof(why))) ==
		    0)
			egress_tls_run(e, r);
		else
			egress_account(e, r, status == 403 ? EO_DENY :
			    EO_ERROR, v.rule, status, 0, 0, now_ms() - t0);
		goto out;
	}
	/* Refused by the policy, or failed (a name, a host): ours. */
	if ((status = decide(e, r, &v)) != 0 ||
	    (status = egress_dial(e, r, &v, false, why, sizeof(why))) != 0)
		act = status == 403 ? EO_DENY : EO_ERROR;
	else {
		act = EO_ALLOW;
		status = !strcmp(r->method, "CONNECT") ? 200 : 0;
		if (status == 200 && egress_write_all(e->fd, "HTTP/1.1 200 "
		    "Connection established\r\n\r\n", 39) == -1)
			act = EO_ERROR;
		else if (status == 200 && sni_check(e, r) == -1) {
			/* Logged as refused; the client sees the end. */
			act = EO_DENY;
			status = 403;
		} else if (status == 200 || egress_send_head(e, r, &up) == 0)
			egress_relay(e, &up, &down, status == 200 ? NULL :
			    &status);
	}
	egress_account(e, r, act, v.rule, status, up, down, now_ms() - t0);
out:
	json_decref(v.set_headers);
	json_decref(v.set_query);
	free(r->path);
	free(r);
	conn_end(e);
	return NULL;
}

/* The request head, and whatever came after it in the same reads. */
static int
read_head(struct econn *e, struct ereq *r)
{
	struct pollfd	 pfd = { .fd = e->fd, .events = POLLIN };
	uint64_t	 end = now_ms() + HEAD_WAIT_MS, now;
	char		*p;
	ssize_t		 n;

	for (;;) {
		r->buf[r->len] = '\0';
		if ((p = strstr(r->buf, "\r\n\r\n")) != NULL) {
			r->head_len = (size_t)(p + 4 - r->buf);
			return 0;
		}
		if (r->len >= EG_HEAD_MAX) {
			egress_refuse(e, 431, "header_too_large", "the proxy request's "
			    "head is larger than 16 KiB", NULL);
			return -1;
		}
		if ((now = now_ms()) >= end ||
		    poll(&pfd, 1, (int)(end - now)) != 1)
			return -1;
		n = recv(e->fd, r->buf + r->len, EG_HEAD_MAX - r->len, 0);
		if (n <= 0)
			return -1;
		r->len += (size_t)n;
	}
}

/*
 * The request line: CONNECT host:port (authority form), or a method
 * and an absolute http:// URL (RFC 9112 §3.2). why says what is wrong.
 */
static int
parse_target(struct ereq *r, char *why, size_t whysz)
{
	const char	*t, *sp, *a, *ae, *colon;
	size_t		 n;
	long		 port;
	char		*endp;
	bool		 tunnel;

	snprintf(why, whysz, "not a proxy request line");
	if ((sp = memchr(r->buf, ' ', 16)) == NULL)
		return -1;
	memcpy(r->method, r->buf, (size_t)(sp - r->buf));
	t = sp + 1;
	if ((sp = strchr(t, ' ')) == NULL || sp - r->buf > (long)r->head_len)
		return -1;
	tunnel = !strcmp(r->method, "CONNECT");
	if (!tunnel && !strncasecmp(t, "https://", 8)) {
		snprintf(why, whysz, "an https:// URL goes through CONNECT");
		return -1;
	}
	if (!tunnel && strncasecmp(t, "http://", 7) != 0)
		return -1;
	a = tunnel ? t : t + 7;
	for (ae = a; ae < sp && *ae != '/' && *ae != '?'; ae++)
		;
	if (tunnel && ae != sp)
		return -1;
	if (memchr(a, '@', (size_t)(ae - a)) != NULL) {
		snprintf(why, whysz, "a URL with credentials is refused");
		return -1;
	}
	if (*a == '[') {
		if ((colon = memchr(a, ']', (size_t)(ae - a))) == NULL)
			return -1;
		n = (size_t)(colon - a - 1);
		a++;
		colon = colon + 1 < ae && colon[1] == ':' ? colon + 1 : NULL;
	} else {
		colon = memchr(a, ':', (size_t)(ae - a));
		n = (size_t)((colon != NULL ? colon : ae) - a);
	}
	if (n == 0 || n >= sizeof(r->host))
		return -1;
	memcpy(r->host, a, n);
	r->host[n] = '\0';
	port = tunnel ? -1 : 80;
	if (colon != NULL) {
		port = strtol(colon + 1, &endp, 10);
		if (endp != ae || colon + 1 == ae)
			port = -1;
	}
	if (port < 1 || port > 65535) {
		snprintf(why, whysz, "the target needs a port from 1 to 65535");
		return -1;
	}
	r->port = (int)port;
	snprintf(r->port_s, sizeof(r->port_s), "%d", r->port);
	if (tunnel)
		return 0;
	n = (size_t)(sp - ae);
	/* "http://host?q" asks for "/?q" (RFC 9110 §4.2.1). */
	if ((r->path = malloc(n + 2)) == NULL)
		return -1;
	snprintf(r->path, n + 2, "%s%.*s", n == 0 || *ae == '?' ? "/" : "",
	    (int)n, ae);
	return 0;
}

/* The policy, by the name before resolution: 0 to go on, else a status. */
static int
decide(struct econn *e, struct ereq *r, struct eg_verdict *v)
{
	struct eg_req	 q = { r->host, r->port, r->method, r->path, NULL };

	egress_conf_check(e->box, &q, v, e->policy, sizeof(e->policy));
	if (v->action == EG_DENY) {
		egress_refuse(e, 403, "egress_denied", v->reason, v);
		return 403;
	}
	/* A credential goes out over TLS only, never in clear text; a
	 * CONNECT that gets here had no rule that could inject. */
	if (v->action == EG_INJECT) {
		egress_refuse(e, 403, "egress_denied", "this host has an inject "
		    "rule: its credential is sent over HTTPS only, not in "
		    "clear text (use https://)", v);
		return 403;
	}
	return 0;
}

static const char *
status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	default: return "Service Unavailable";
	}
}

/*
 * A tunnel's first bytes, peeked (the relay reads them after): a TLS
 * handshake for a name other than the CONNECT's is refused, since
 * behind a shared front that name, not the CONNECT line, picks the site.
 * Anything else (no name, not TLS) is relayed. -1: refused, logged.
 */
static int
sni_check(struct econn *e, const struct ereq *r)
{
	unsigned char	 b[16384];
	struct pollfd	 pfd = { .fd = e->fd, .events = POLLIN };
	char		 name[256];
	uint64_t	 end = now_ms() + HEAD_WAIT_MS, now;
	size_t		 hl = strlen(r->host), nl;
	ssize_t		 n;
	int		 rc = -2;

	while (rc == -2 && (now = now_ms()) < end) {
		if (poll(&pfd, 1, (int)(end - now)) != 1 ||
		    (n = recv(e->fd, b, sizeof(b), MSG_PEEK)) <= 0)
			return 0;
		if ((rc = eg_sni(b, (size_t)n, name, sizeof(name))) == -2) {
			if ((size_t)n == sizeof(b))
				return 0;
			/* The rest of the ClientHello is on its way. */
			usleep(1000);
		}
	}
	if (rc != 1)
		return 0;
	if (hl > 0 && r->host[hl - 1] == '.')
		hl--;
	nl = strlen(name);
	if (nl > 0 && name[nl - 1] == '.')
		nl--;
	if (nl == hl && !strncasecmp(name, r->host, hl))
		return 0;
	log_warn("egress: a tunnel's TLS names another host; closed",
	    "sandbox=%s connect=%s sni=%.100s", e->box, r->host, name);
	return -1;
}

/* An answer the agent can read: the status and a JSON error. */
int
egress_answer(struct buf *out, const struct econn *e, int status,
    const char *code, const char *msg, int rule)
{
	json_t	*o;
	char	*body;
	int	 rc;

	o = json_pack("{s:{s:s,s:s,s:s,s:i}}", "error", "code", code,
	    "message", msg, "policy", e->policy, "rule", rule);
	if (o == NULL || (body = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		return -1;
	}
	json_decref(o);
	rc = buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\nConnection: "
	    "close\r\n\r\n%s", status, status_text(status), strlen(body),
	    body);
	free(body);
	return rc;
}

void
egress_refuse(struct econn *e, int status, const char *code,
    const char *msg, const struct eg_verdict *v)
{
	struct buf	 b;

	buf_init(&b, 4096);
	if (egress_answer(&b, e, status, code, msg, v != NULL ? v->rule : -1)
	    == 0)
		(void)egress_write_all(e->fd, b.data, b.len);
	buf_free(&b);
}

/* Counted in /metrics; logged when there was a request to log. */
void
egress_account(const struct econn *e, const struct ereq *r,
    enum eg_outcome act, int rule, int status, long long up,
    long long down, uint64_t ms)
{
	__atomic_add_fetch(&counts[act], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&bytes[0], up, __ATOMIC_RELAXED);
	__atomic_add_fetch(&bytes[1], down, __ATOMIC_RELAXED);
	if (r != NULL)
		log_request(e, r, act_name[act], rule, status, up, down, ms);
}

int
egress_write_all(int fd, const void *p, size_t n)
{
	const char	*c = p;
	ssize_t		 w;

	while (n > 0) {
		if ((w = send(fd, c, n, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * One line per request, and a row in the store (egress_log.c); the query
 * is in neither (it can hold tokens).
 */
static void
log_request(const struct econn *e, const struct ereq *r, const char *action,
    int rule, int status, long long up, long long down, uint64_t ms)
{
	struct logline		 l;
	struct eg_logrec	 rec = {
		.ts_ms = now_wall_ms() - (long long)ms,
		.sandbox = e->box, .policy = e->policy, .method = r->method,
		.host = r->host, .port = r->port, .path = r->path,
		.action = action, .rule = rule, .status = status,
		.bytes_up = up, .bytes_down = down, .ms = (long long)ms,
		.intercepted = e->intercepted,
	};
	char			 path[256];
	size_t			 n;

	egress_log_add(&rec);
	if (!log_begin(&l, LOG_INFO, "egress"))
		return;
	log_str(&l, "sandbox", e->box);
	log_str(&l, "policy", e->policy);
	log_str(&l, "method", r->method);
	log_str(&l, "host", r->host);
	log_int(&l, "port", r->port);
	if (r->path != NULL) {
		n = strcspn(r->path, "?");
		snprintf(path, sizeof(path), "%.*s%s", (int)(n > 200 ? 200 : n),
		    r->path, r->path[n] != '\0' ? "?…" : "");
		log_str(&l, "path", path);
	}
	log_str(&l, "action", action);
	log_int(&l, "rule", rule);
	log_int(&l, "status", status);
	log_int(&l, "bytes_up", up);
	log_int(&l, "bytes_down", down);
	log_int(&l, "ms", (long long)ms);
	if (e->intercepted)
		log_str(&l, "intercepted", "yes");
	log_end(&l);
}

/* The proxy's lines of /metrics. */
void
egress_metrics(struct buf *b)
{
	size_t	 i;
	long	 open;

	pthread_mutex_lock(&mu);
	open = nconns;
	pthread_mutex_unlock(&mu);
	buf_puts(b, "# HELP pincer_egress_requests_total Requests and "
	    "tunnels through the egress proxy, by outcome (inject: a "
	    "request sent with the policy's credentials; deny: the policy; "
	    "error: a bad request, a name or host that failed).\n"
	    "# TYPE pincer_egress_requests_total counter\n");
	for (i = 0; i < 4; i++)
		buf_printf(b, "pincer_egress_requests_total{action=\"%s\"} "
		    "%llu\n", act_name[i], (unsigned long long)__atomic_load_n(
		    &counts[i], __ATOMIC_RELAXED));
	buf_printf(b, "# HELP pincer_egress_bytes_total Bytes relayed by the "
	    "egress proxy.\n"
	    "# TYPE pincer_egress_bytes_total counter\n"
	    "pincer_egress_bytes_total{direction=\"up\"} %llu\n"
	    "pincer_egress_bytes_total{direction=\"down\"} %llu\n"
	    "# HELP pincer_egress_connections Open egress connections.\n"
	    "# TYPE pincer_egress_connections gauge\n"
	    "pincer_egress_connections %ld\n",
	    (unsigned long long)__atomic_load_n(&bytes[0], __ATOMIC_RELAXED),
	    (unsigned long long)__atomic_load_n(&bytes[1], __ATOMIC_RELAXED),
	    open);
}
