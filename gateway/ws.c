/* SPDX-License-Identifier: MIT */
/*
 * ws.c: WebSocket sessions on libwebsockets. The front door hands over a
 * socket whose upgrade request is still unread; libwebsockets does the
 * handshake (RFC 6455 §4.2) and framing on its own service thread. Route
 * handlers see whole messages; a message over ws.max_message_bytes closes
 * the socket with 1009 (RFC 6455 §7.4.1). The same thread also opens
 * WebSocket connections of its own over Unix sockets (ws_connect), which
 * a route uses to relay a session to a sandbox.
 */
#include <ctype.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/rand.h>

#include "pincer.h"

#define REASON_MAX	123	/* a close frame's payload is ≤ 125 bytes */
/*
 * What our own connections accept in one message. Their peer is ours
 * too (pincer-init sends at most 1 MiB at once), so this does not
 * follow ws.max_message_bytes, which is about what clients send.
 */
#define CLIENT_MSG_MAX	((size_t)2 << 20)
#define IN_KEEP_MAX	((size_t)64 << 10)
#define TX_BURST	64	/* writes per writable callback */
/*
 * Queued messages go out as one write of up to this many bytes, and
 * lws sends up to as much at once (its default, 4 KiB a send(2), left a
 * screenshot of megabytes to thousands of trips round the event loop).
 */
#define TX_COALESCE	((size_t)64 << 10)
/* A relay's upstream reads this much at once; few such sessions exist. */
#define CLIENT_RX	((size_t)64 << 10)
#define HDR_SLOTS	8
#define HDR_MAX		4096
/* Debian's (ca-certificates) */
#define CA_BUNDLE	"/etc/ssl/certs/ca-certificates.crt"

struct ws_msg {
	struct ws_msg	*next;
	size_t		 len;
	bool		 binary;
	unsigned char	 data[];	/* LWS_PRE bytes, then the payload */
};

struct ws_session {
	struct lws		*wsi;
	const struct route	*route;		/* adopted sessions */
	const struct ws_ops	*ops;
	void			*user;		/* the handler's */
	struct buf		 in;		/* a message being assembled */
	bool			 in_binary;
	struct ws_msg		*out_head;	/* owned */
	struct ws_msg		*out_tail;
	size_t			 out_bytes;
	bool			 client;	/* opened by ws_connect */
	bool			 open;		/* handshake done */
	bool			 live;		/* on_close is owed */
	bool			 closing;
	bool			 paused;
	bool			 ping_due;
	bool			 connecting;	/* inside lws's connect call */
	bool			 destroyed;	/* lws freed it meanwhile */
	int			 close_code;	/* ours, or the peer's */
	char			 close_reason[REASON_MAX + 1];
	struct identity		 id;
	char			 ip[64];
	char			 path[512];
	char			 query[1024];
	char			*auth;		/* Authorization; owned, wiped */
	struct ws_session	*prev;
	struct ws_session	*next;
	struct ws_session	*fprev;		/* on flushq */
	struct ws_session	*fnext;
	bool			 flushq;
};

/* Request headers for auth.c, copied out of lws on demand. */
struct ws_hdrs {
	struct lws	*wsi;
	int		 n;
	char		 name[HDR_SLOTS][64];
	char		 val[HDR_SLOTS][HDR_MAX];
};

static int	ws_callback(struct lws *, enum lws_callback_reasons, void *,
		    void *, size_t);
static int	ws_client_callback(struct lws *, enum lws_callback_reasons,
		    void *, void *, size_t);
static void	ws_service_wakeup(void);
static void	ws_take_adoptions(void);
static void	ws_run_jobs(void);
static int	ws_filter(struct lws *, struct ws_session *);
static bool	ws_admit(struct lws *, struct ws_session *, struct ws_hdrs *,
		    struct ws_refusal *);
static bool	ws_authorize(struct ws_session *, struct ws_hdrs *, int,
		    struct ws_refusal *);
static bool	ws_origin_ok(struct ws_hdrs *);
static const char *ws_header(void *, const char *);
static int	ws_query_copy(struct lws *, char *, size_t);
static int	ws_encode(char *, size_t, size_t *, const char *, size_t);
static int	ws_put(char *, size_t, size_t *, char);
static void	ws_client_ip(struct lws *, struct ws_hdrs *, char *, size_t);
static void	ws_established(struct ws_session *);
static void	ws_peer_close(struct ws_session *, const unsigned char *,
		    size_t);
static void	ws_ended(struct ws_session *);
static void	ws_link(struct ws_session **, struct ws_session *);
static void	ws_unlink(struct ws_session **, struct ws_session *);
static void	ws_rx(struct ws_session *, const void *, size_t);
static int	ws_tx(struct ws_session *);
static void	ws_flush_later(struct ws_session *);
static void	ws_flush_drop(struct ws_session *);
static void	ws_flush_all(void);
static void	ws_written(struct ws_session *);
static void	ws_dequeue(struct ws_session *);
static int	ws_write_out(struct ws_session *);
static int	ws_mask(unsigned char [4]);
static void	ws_keepalive(struct ws_session *);
static void	*ws_main(void *);
static struct ws_session *ws_client_open(struct lws_client_connect_info *,
		    const char *, const char *, const struct ws_ops *, void *);
static void	ws_free(struct ws_session *);
static struct lws_vhost *ws_tls_vhost(void);
static void	ws_log(int, const char *);
static void	echo_message(struct ws_session *, const void *, size_t, bool);

const struct ws_ops ws_echo_ops = { .on_message = echo_message };

static const struct lws_protocols protocols[] = {
	{ "pincer", ws_callback, sizeof(struct ws_session), 4096, 0, NULL,
	    TX_COALESCE },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};
/*
 * Our own connections live on a vhost of their own: no adopted socket
 * can ask for this protocol by name (Sec-WebSocket-Protocol), and lws
 * tells a vhost's first protocol when a connection is destroyed, which
 * here frees the session and is not the front door's bookkeeping.
 */
static const struct lws_protocols client_protocols[] = {
	{ "pincer-relay", ws_client_callback, 0, CLIENT_RX, 0, NULL,
	    TX_COALESCE },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static struct lws_context	*ctx;
static struct lws_vhost		*vhost;
static struct lws_vhost		*client_vhost;
static struct lws_vhost		*tls_vhost;	/* made when needed */
static pthread_t		 ws_thread;
static bool			 ws_running;
static bool			 ws_destroying;	/* context going; no new I/O */
static bool			 ws_goingaway;	/* atomic */
static bool			 ws_quit;	/* atomic */
static uint64_t		 spin_until;	/* ws_spin: service thread only */
static long			 nsessions;	/* atomic */
static struct ws_session	*sessions;	/* service thread only */
static struct ws_session	*flushq;	/* service thread only */
static unsigned char		 txbuf[LWS_PRE + TX_COALESCE];
static unsigned char		 masks[4096];	/* ws_mask's pool */
static size_t			 nmasks;	/* bytes left in it */
static pthread_mutex_t		 adopt_lock = PTHREAD_MUTEX_INITIALIZER;
static int			*adopt_fds;	/* guarded by adopt_lock */
static size_t			 nadopt;
static struct ws_job		*jobs;		/* guarded by adopt_lock */
static bool			 jobs_closed;	/* guarded by adopt_lock */

int
ws_start(const struct config *c)
{
	struct lws_context_creation_info info;

	lws_set_log_level(LLL_ERR | LLL_WARN, ws_log);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	info.timeout_secs = (unsigned int)c->header_timeout_s;
	info.max_http_header_data = (unsigned short)(c->max_header_bytes >
	    65535 ? 65535 : c->max_header_bytes);
	/*
	 * lws keeps a lookup table sized by its fd limit, by default the
	 * process's; bound it by our own connection limit to keep it small.
	 * Thrice: the door lets in twice the limit counting Unix sockets,
	 * and each relayed session holds an upstream socket as well.
	 */
	info.fd_limit_per_thread = (unsigned int)c->max_connections * 3 + 64;
	/* The one read buffer: CLIENT_RX at once for relay upstreams. */
	info.pt_serv_buf_size = (unsigned int)CLIENT_RX;
	if ((ctx = lws_create_context(&info)) == NULL) {
		log_error("cannot start the WebSocket server", NULL);
		return -1;
	}
	vhost = lws_get_vhost_by_name(ctx, "default");
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = client_protocols;
	info.vhost_name = "relay";
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	if (vhost == NULL ||
	    (client_vhost = lws_create_vhost(ctx, &info)) == NULL ||
	    pthread_create(&ws_thread, NULL, ws_main, NULL) != 0) {
		lws_context_destroy(ctx);
		ctx = NULL;
		return -1;
	}
	ws_running = true;
	return 0;
}

/*
 * lws may only be driven from its service thread: queue the socket, wake
 * the thread, and let it adopt.
 */
int
ws_adopt(int fd)
{
	int	*p;

	if (!ws_running)
		return -1;
	pthread_mutex_lock(&adopt_lock);
	p = realloc(adopt_fds, (nadopt + 1) * sizeof(*p));
	if (p == NULL) {
		pthread_mutex_unlock(&adopt_lock);
		return -1;
	}
	adopt_fds = p;
	adopt_fds[nadopt++] = fd;
	pthread_mutex_unlock(&adopt_lock);
	lws_cancel_service(ctx);
	return 0;
}

/*
 * Run job->fn(job->arg) on the service thread, from any thread. Once the
 * service has stopped it runs at once on the caller's thread: no session
 * is left then for it to touch.
 */
void
ws_post(struct ws_job *job)
{
	struct ws_job	**jp;

	job->next = NULL;
	pthread_mutex_lock(&adopt_lock);
	if (jobs_closed) {
		pthread_mutex_unlock(&adopt_lock);
		job->fn(job->arg);
		return;
	}
	for (jp = &jobs; *jp != NULL; jp = &(*jp)->next)
		;
	*jp = job;
	pthread_mutex_unlock(&adopt_lock);
	lws_cancel_service(ctx);
}

void
ws_stop(void)
{
	size_t	 i;

	uint64_t end = now_ms() + 1000;

	if (!ws_running)
		return;
	/* Say goodbye (1001) first, and give peers a moment to answer. */
	__atomic_store_n(&ws_goingaway, true, __ATOMIC_RELEASE);
	lws_cancel_service(ctx);
	while (ws_sessions() > 0 && now_ms() < end)
		usleep(10000);
	__atomic_store_n(&ws_quit, true, __ATOMIC_RELEASE);
	lws_cancel_service(ctx);
	pthread_join(ws_thread, NULL);
	/* Handlers told of a close from here on run on this thread. */
	ws_destroying = true;
	lws_context_destroy(ctx);
	ctx = NULL;
	tls_vhost = NULL;
	ws_running = false;
	pthread_mutex_lock(&adopt_lock);
	jobs_closed = true;
	pthread_mutex_unlock(&adopt_lock);
	ws_run_jobs();
	for (i = 0; i < nadopt; i++) {
		close(adopt_fds[i]);
		door_conn_closed();
	}
	free(adopt_fds);
	adopt_fds = NULL;
	nadopt = 0;
}

long
ws_sessions(void)
{
	return __atomic_load_n(&nsessions, __ATOMIC_RELAXED);
}

/*
 * Queue a message; service thread only (handlers run there). A client
 * session still connecting keeps it until its handshake is done.
 */
int
ws_send(struct ws_session *s, const void *p, size_t n, bool binary)
{
	struct ws_msg	*m;

	if (s->closing || ws_destroying ||
	    (m = malloc(sizeof(*m) + LWS_PRE + n)) == NULL)
		return -1;
	m->next = NULL;
	m->len = n;
	m->binary = binary;
	memcpy(m->data + LWS_PRE, p, n);
	if (s->out_tail != NULL)
		s->out_tail->next = m;
	else
		s->out_head = m;
	s->out_tail = m;
	s->out_bytes += n;
	if (s->open)
		ws_flush_later(s);
	return 0;
}

/*
 * Written when this pass of the event loop is over (ws_main), not after
 * another trip round it (a relay's latency), and together with whatever
 * else the same pass queued for the session (a relay's throughput).
 */
static void
ws_flush_later(struct ws_session *s)
{
	if (s->flushq)
		return;
	s->flushq = true;
	s->fprev = NULL;
	s->fnext = flushq;
	if (flushq != NULL)
		flushq->fprev = s;
	flushq = s;
}

static void
ws_flush_drop(struct ws_session *s)
{
	if (!s->flushq)
		return;
	if (s->fprev != NULL)
		s->fprev->fnext = s->fnext;
	else
		flushq = s->fnext;
	if (s->fnext != NULL)
		s->fnext->fprev = s->fprev;
	s->flushq = false;
	s->fprev = s->fnext = NULL;
}

/* After each lws_service: the sessions written to in that pass. */
static void
ws_flush_all(void)
{
	struct ws_session	*s;

	while ((s = flushq) != NULL) {
		ws_flush_drop(s);
		if (s->ping_due || s->closing)
			lws_callback_on_writable(s->wsi);
		else if (ws_write_out(s) == -1) {
			/* lws keeps the socket until it is told. */
			s->closing = true;
			lws_set_timeout(s->wsi,
			    PENDING_TIMEOUT_KILLED_BY_PARENT,
			    LWS_TO_KILL_ASYNC);
		} else
			ws_written(s);
	}
}

/* After a write: the rest when writable, or the handler told. */
static void
ws_written(struct ws_session *s)
{
	if (s->out_head != NULL || s->closing)
		lws_callback_on_writable(s->wsi);
	else if (s->ops->on_drain != NULL)
		s->ops->on_drain(s);
}

static void
ws_dequeue(struct ws_session *s)
{
	struct ws_msg	*m = s->out_head;

	s->out_head = m->next;
	if (s->out_head == NULL)
		s->out_tail = NULL;
	s->out_bytes -= m->len;
	free(m);
}

/*
 * A client frame's masking key (RFC 6455 §5.3: unpredictable), from a
 * pool drawn from OpenSSL's generator: RAND_bytes asks the kernel for
 * the process id on every call (its fork check), which per frame was
 * as many system calls as the relay made to move the frames.
 */
static int
ws_mask(unsigned char key[4])
{
	if (nmasks < 4) {
		if (RAND_bytes(masks, sizeof(masks)) != 1)
			return -1;
		nmasks = sizeof(masks);
	}
	nmasks -= 4;
	memcpy(key, masks + nmasks, 4);
	explicit_bzero(masks + nmasks, 4);
	return 0;
}

/*
 * What is queued, while the socket takes it: frames composed here, up
 * to TX_COALESCE bytes a write (ws_frame.c); a message too large for
 * that on its own, framed by lws, which keeps what the socket did not
 * take and writes it before anything else (the socket then counts as
 * choked).
 */
static int
ws_write_out(struct ws_session *s)
{
	struct ws_msg	*m;
	unsigned char	 key[4];
	size_t		 n;
	int		 i;

	for (i = 0; s->out_head != NULL && i < TX_BURST; i++) {
		if (lws_send_pipe_choked(s->wsi))
			break;
		m = s->out_head;
		if (ws_frame_len(m->len, s->client) > TX_COALESCE) {
			if (lws_write(s->wsi, m->data + LWS_PRE, m->len,
			    m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) <
			    (int)m->len)
				return -1;
			ws_dequeue(s);
			continue;
		}
		for (n = 0; (m = s->out_head) != NULL &&
		    n + ws_frame_len(m->len, s->client) <= TX_COALESCE;
		    ws_dequeue(s)) {
			if (s->client && ws_mask(key) == -1)
				return -1;
			n += ws_frame_put(txbuf + LWS_PRE + n,
			    m->data + LWS_PRE, m->len, m->binary,
			    s->client ? key : NULL);
		}
		if (lws_write(s->wsi, txbuf + LWS_PRE, n, LWS_WRITE_RAW) <
		    (int)n)
			return -1;
	}
	return 0;
}

/* Bytes queued and not yet written: a relay's measure of back-pressure. */
size_t
ws_queued(const struct ws_session *s)
{
	return s->out_bytes;
}

/*
 * Stop (or resume) reading from the peer: lws takes the socket out of
 * its poll set, so TCP flow control pushes back on the sender. Called
 * from another session's callback too, hence PROCESS_NOW (lws-misc.h).
 * A peer we do not read cannot show it is there (its pongs wait unread):
 * its idle clock stops meanwhile.
 */
void
ws_pause(struct ws_session *s, bool on)
{
	if (s->paused == on || ws_destroying)
		return;
	s->paused = on;
	lws_rx_flow_control(s->wsi, (on ? 0 : 1) |
	    LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
	if (!s->client)
		lws_set_timeout(s->wsi, on ? NO_PENDING_TIMEOUT :
		    PENDING_TIMEOUT_USER_OK, on ? 0 :
		    (int)config_current()->idle_timeout_s);
}

/*
 * Close with code and reason (RFC 6455 §5.5.1) once what is queued has
 * been written. A client session still connecting is dropped at once.
 */
void
ws_close(struct ws_session *s, int code, const char *reason)
{
	if (s->closing || ws_destroying)
		return;
	s->closing = true;
	s->close_code = code;
	snprintf(s->close_reason, sizeof(s->close_reason), "%s",
	    reason != NULL ? reason : "");
	if (s->open)
		lws_callback_on_writable(s->wsi);
	else
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
		    LWS_TO_KILL_ASYNC);
}

/*
 * Open a WebSocket to uri (path and query, encoded) on a Unix socket,
 * as pincerd's own client (RFC 6455 §4.1). NULL if it cannot even start;
 * after that, on_open or on_close tells how it went.
 */
struct ws_session *
ws_connect(const char *unix_path, const char *uri, const struct ws_ops *ops,
    void *user)
{
	struct lws_client_connect_info	 cci;
	char				 addr[512];

	if ((size_t)snprintf(addr, sizeof(addr), "+%s", unix_path) >=
	    sizeof(addr))
		return NULL;
	memset(&cci, 0, sizeof(cci));
	cci.vhost = client_vhost;
	cci.address = addr;		/* "+path": a Unix socket */
	cci.path = uri;
	cci.host = "localhost";
	return ws_client_open(&cci, "unix", NULL, ops, user);
}

/*
 * The same to a ws:// or wss:// URL: a chat platform's socket (Slack
 * Socket Mode, Discord's Gateway). wss is checked against the system's
 * CA bundle on a vhost of its own, made the first time one is needed.
 */
struct ws_session *
ws_connect_url(const char *url, const struct ws_ops *ops, void *user)
{
	return ws_dial_url(url, NULL, ops, user);
}

/*
 * ws_connect_url with options: a larger message limit, no Origin (which
 * Chromium's debugging port refuses with 403 unless told otherwise).
 */
struct ws_session *
ws_dial_url(const char *url, const struct ws_dial *d,
    const struct ws_ops *ops, void *user)
{
	struct ws_session		*s;
	struct lws_client_connect_info	 cci;
	const char			*proto, *host, *path;
	char				 copy[2048], full[2050];
	char				 hosthdr[300];
	int				 port;
	bool				 tls;

	if (strlen(url) >= sizeof(copy))
		return NULL;
	memcpy(copy, url, strlen(url) + 1);
	if (lws_parse_uri(copy, &proto, &host, &port, &path) != 0)
		return NULL;
	tls = !strcmp(proto, "wss") || !strcmp(proto, "https");
	if (!tls && strcmp(proto, "ws") != 0 && strcmp(proto, "http") != 0)
		return NULL;
	if (tls && tls_vhost == NULL && (tls_vhost = ws_tls_vhost()) == NULL)
		return NULL;
	/* lws_parse_uri drops the path's leading '/'. */
	snprintf(full, sizeof(full), "/%s", path);
	/* Host carries the port unless it is the scheme's (RFC 6455 §4.1). */
	if (port != (tls ? 443 : 80))
		snprintf(hosthdr, sizeof(hosthdr), "%s:%d", host, port);
	else
		snprintf(hosthdr, sizeof(hosthdr), "%s", host);
	memset(&cci, 0, sizeof(cci));
	cci.vhost = tls ? tls_vhost : client_vhost;
	cci.address = host;
	cci.port = port;
	cci.path = full;
	cci.host = hosthdr;
	cci.origin = d != NULL && d->no_origin ? NULL : hosthdr;
	cci.ssl_connection = tls ? LCCSCF_USE_SSL : 0;
	if ((s = ws_client_open(&cci, host, d != NULL ? d->auth : NULL, ops,
	    user)) != NULL &&
	    d != NULL && d->msg_max > 0)
		s->in.max = d->msg_max;
	return s;
}

/* The session's memory, its credential wiped first. */
static void
ws_free(struct ws_session *s)
{
	if (s->auth != NULL) {
		explicit_bzero(s->auth, strlen(s->auth));
		free(s->auth);
	}
	free(s);
}

/* A connect of ws_connect or ws_connect_url, on the service thread. */
static struct ws_session *
ws_client_open(struct lws_client_connect_info *cci, const char *peer,
    const char *auth, const struct ws_ops *ops, void *user)
{
	struct ws_session	*s;
	struct lws		*wsi;

	if (ws_destroying || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (auth != NULL && (s->auth = strdup(auth)) == NULL) {
		free(s);
		return NULL;
	}
	s->client = true;
	s->ops = ops;
	s->user = user;
	s->connecting = true;
	buf_init(&s->in, CLIENT_MSG_MAX);
	snprintf(s->ip, sizeof(s->ip), "%s", peer);
	cci->context = ctx;
	cci->ietf_version_or_minus_one = -1;
	cci->local_protocol_name = client_protocols[0].name;
	cci->userdata = s;
	wsi = lws_client_connect_via_info(cci);
	s->connecting = false;
	/* On failure lws may have destroyed the wsi already; it is gone. */
	if (wsi == NULL || s->destroyed) {
		buf_free(&s->in);
		ws_free(s);
		return NULL;
	}
	s->wsi = wsi;
	s->live = true;
	return s;
}

/* The vhost of wss:// connections, with the system's CAs. */
static struct lws_vhost *
ws_tls_vhost(void)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = client_protocols;
	info.vhost_name = "tls-client";
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	if (access(CA_BUNDLE, R_OK) == 0)
		info.client_ssl_ca_filepath = CA_BUNDLE;
	return lws_create_vhost(ctx, &info);
}

void *
ws_user(const struct ws_session *s)
{
	return s->user;
}

void
ws_set_user(struct ws_session *s, void *user)
{
	s->user = user;
}

const char *
ws_path(const struct ws_session *s)
{
	return s->path;
}

const char *
ws_query(const struct ws_session *s)
{
	return s->query;
}

const char *
ws_ip(const struct ws_session *s)
{
	return s->ip;
}

const struct identity *
ws_identity(const struct ws_session *s)
{
	return &s->id;
}

static uint64_t
mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * From the service thread: poll without sleeping for the next us
 * microseconds. A thread woken from poll(2) costs tens of microseconds
 * on a virtual machine, twice per relayed round trip; a relay that
 * expects the next message soon (a CDP answer, a client's next command)
 * saves that by looking again at once, for a bounded time.
 */
void
ws_spin(unsigned us)
{
	uint64_t	 until = mono_us() + us;

	if (us > 0 && until > spin_until)
		spin_until = until;
}

static void *
ws_main(void *arg)
{
	/* lws 4.1: a negative timeout polls without waiting. */
	while (!__atomic_load_n(&ws_quit, __ATOMIC_ACQUIRE)) {
		if (lws_service(ctx, spin_until > mono_us() ? -1 : 0) < 0)
			break;
		ws_flush_all();
	}
	return NULL;
}

static int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct ws_session	*s = user;
	const struct config	*c = config_current();

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		ws_service_wakeup();
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return ws_filter(wsi, s);
	case LWS_CALLBACK_ESTABLISHED:
		ws_established(s);
		if (s->ops->on_open != NULL && s->ops->on_open(s) == -1) {
			s->live = false;
			ws_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
			    "cannot open the session");
		}
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (!s->paused)
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
			    (int)c->idle_timeout_s);
		ws_rx(s, in, len);
		return s->closing && s->out_head == NULL ? ws_tx(s) : 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		/* A pong answers our ping: the peer is there (§5.5.3). */
		if (s->ops->keepalive)
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
			    (int)c->idle_timeout_s);
		return 0;
	case LWS_CALLBACK_TIMER:
		ws_keepalive(s);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ws_tx(s);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		ws_peer_close(s, in, len);
		return 0;
	case LWS_CALLBACK_CLOSED:
		/* Also for an upgrade refused after lws took it as a ws. */
		ws_ended(s);
		if (s->open) {
			ws_unlink(&sessions, s);
			__atomic_sub_fetch(&nsessions, 1, __ATOMIC_RELAXED);
			s->open = false;
		}
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		/* Every adopted socket ends here, upgraded or not. */
		door_conn_closed();
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* Our own connections (ws_connect); user is the session, set by us. */
static int
ws_client_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct ws_session	*s = user;

	if (s == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		s->open = true;
		if (s->closing || s->out_head != NULL)
			lws_callback_on_writable(wsi);
		if (s->ops->on_open != NULL && s->ops->on_open(s) == -1) {
			s->live = false;
			ws_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
			    "cannot open the session");
		}
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		ws_rx(s, in, len);
		return s->closing && s->out_head == NULL ? ws_tx(s) : 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return ws_tx(s);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		ws_peer_close(s, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		/* lws says why in a string, and the status if one came. */
		s->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
		if (lws_http_client_http_response(wsi) != 0)
			snprintf(s->close_reason, sizeof(s->close_reason),
			    "HTTP %u instead of 101",
			    lws_http_client_http_response(wsi));
		else
			snprintf(s->close_reason, sizeof(s->close_reason),
			    "%.*s", (int)(in != NULL ? len : 0), in != NULL ?
			    (char *)in : "");
		ws_ended(s);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		ws_ended(s);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (s->connecting) {
			s->destroyed = true;
			return 0;
		}
		ws_ended(s);
		ws_free(s);
		return 0;
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		/* A hosted browser's token: in a header, never the URL. */
		if (s->auth != NULL && lws_add_http_header_by_name(wsi,
		    (const unsigned char *)"authorization:",
		    (const unsigned char *)s->auth, (int)strlen(s->auth),
		    (unsigned char **)in, *(unsigned char **)in + len) != 0)
			return -1;
		return 0;
	default:
		return 0;
	}
}

/* Woken by lws_cancel_service: adoptions, jobs, and a shutdown. */
static void
ws_service_wakeup(void)
{
	struct ws_session	*s;

	ws_take_adoptions();
	ws_run_jobs();
	if (!__atomic_load_n(&ws_goingaway, __ATOMIC_ACQUIRE))
		return;
	for (s = sessions; s != NULL; s = s->next)
		ws_close(s, LWS_CLOSE_STATUS_GOINGAWAY, "shutdown");
}

static void
ws_take_adoptions(void)
{
	int	*fds;
	size_t	 n, i;

	pthread_mutex_lock(&adopt_lock);
	fds = adopt_fds;
	n = nadopt;
	adopt_fds = NULL;
	nadopt = 0;
	pthread_mutex_unlock(&adopt_lock);
	for (i = 0; i < n; i++)
		/* On failure lws has already closed the socket. */
		if (lws_adopt_socket_vhost(vhost, fds[i]) == NULL)
			door_conn_closed();
	free(fds);
}

static void
ws_run_jobs(void)
{
	struct ws_job	*j, *next;

	pthread_mutex_lock(&adopt_lock);
	j = jobs;
	jobs = NULL;
	pthread_mutex_unlock(&adopt_lock);
	for (; j != NULL; j = next) {
		next = j->next;	/* fn may free j */
		j->fn(j->arg);
	}
}

/*
 * The upgrade request is read; nothing is answered yet. Refuse it here
 * with the usual JSON error, written by the door's writer (lws itself
 * would only drop the connection), or let lws answer 101. The session
 * memory exists already and is zeroed.
 */
static int
ws_filter(struct lws *wsi, struct ws_session *s)
{
	struct ws_hdrs		*h;
	struct ws_refusal	 no = { .status = 500, .code = "internal" };
	struct logline		 l;
	char			 rid[17];
	bool			 ok;

	/* A few header values of up to 4 KiB each: not on the stack. */
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -1;
	h->wsi = wsi;
	snprintf(no.msg, sizeof(no.msg), "out of memory");
	ok = ws_admit(wsi, s, h, &no);
	free(h);
	if (ok)
		return 0;
	http_request_id(rid);
	if (log_begin(&l, LOG_INFO, "websocket refused")) {
		log_str(&l, "rid", rid);
		log_int(&l, "status", no.status);
		log_str(&l, "code", no.code);
		log_str(&l, "path", s->path);
		log_str(&l, "ip", s->ip);
		log_end(&l);
	}
	door_reject(lws_get_socket_fd(wsi), rid, no.status, no.code, no.msg);
	return -1;
}

/*
 * The route, then who is calling (the socket first: pincerd.sock is the
 * owner, a sandbox's gateway.sock that sandbox; on TCP the credentials),
 * then whether the route lets them, then the route's own check.
 */
static bool
ws_admit(struct lws *wsi, struct ws_session *s, struct ws_hdrs *h,
    struct ws_refusal *no)
{
	const struct route	*rt;
	int			 by_socket;

	s->wsi = wsi;
	if (lws_hdr_copy(wsi, s->path, sizeof(s->path),
	    WSI_TOKEN_GET_URI) <= 0 || (rt = route_find_ws(s->path)) ==
	    NULL) {
		*no = (struct ws_refusal){ .status = 404, .code = "not_found" };
		snprintf(no->msg, sizeof(no->msg), "no WebSocket route here");
		return false;
	}
	s->route = rt;
	s->ops = rt->ws;
	if (ws_query_copy(wsi, s->query, sizeof(s->query)) == -1) {
		*no = (struct ws_refusal){ .status = 414,
		    .code = "uri_too_long" };
		snprintf(no->msg, sizeof(no->msg), "the query is too long");
		return false;
	}
	by_socket = auth_socket_identity(lws_get_socket_fd(wsi), &s->id);
	if (by_socket == 1)
		snprintf(s->ip, sizeof(s->ip), "unix");
	else
		ws_client_ip(wsi, h, s->ip, sizeof(s->ip));
	if (by_socket == -1) {
		*no = (struct ws_refusal){ .status = 403, .code = "forbidden" };
		snprintf(no->msg, sizeof(no->msg), "this socket no longer "
		    "belongs to anyone");
		return false;
	}
	if (rt->auth != AUTH_PUBLIC &&
	    !ws_authorize(s, h, by_socket, no)) {
		memset(&s->id, 0, sizeof(s->id));
		return false;
	}
	return s->ops->on_upgrade == NULL || s->ops->on_upgrade(s, no);
}

/*
 * auth_route_allowed's checks, for an upgrade: a credential that holds,
 * the route's scopes and role. There is no CSRF token on a WebSocket
 * handshake, and browsers send cookies with one from any site, so a
 * credential the browser carries by itself (our session cookie, a
 * zero-trust proxy's identity) must come with our own Origin (RFC 6455
 * §10.2: the server checks Origin against cross-site WebSocket
 * hijacking). A bearer token is sent only by code that holds it, and a
 * Unix socket caller is no browser: neither needs one.
 */
static bool
ws_authorize(struct ws_session *s, struct ws_hdrs *h, int by_socket,
    struct ws_refusal *no)
{
	struct auth_in		 in = { .header = ws_header, .ctx = h,
				    .ip = s->ip };

	switch (auth_route_check(s->route, &in, by_socket == 1, &s->id)) {
	case AUTH_NEED:
		*no = (struct ws_refusal){ .status = 401,
		    .code = "unauthenticated" };
		snprintf(no->msg, sizeof(no->msg), "log in, or send an API "
		    "token as Authorization: Bearer");
		return false;
	case AUTH_INVALID:
		*no = (struct ws_refusal){ .status = 401,
		    .code = "invalid_credentials" };
		snprintf(no->msg, sizeof(no->msg), "the session or token is "
		    "not valid (expired, revoked or unknown)");
		return false;
	case AUTH_FORBIDDEN:
		*no = (struct ws_refusal){ .status = 403, .code = "forbidden" };
		snprintf(no->msg, sizeof(no->msg), "this credential may not "
		    "do that");
		return false;
	case AUTH_OK:
		break;
	}
	if ((s->id.kind == ID_SESSION || s->id.kind == ID_EXTERNAL) &&
	    !ws_origin_ok(h)) {
		*no = (struct ws_refusal){ .status = 403,
		    .code = "bad_origin" };
		snprintf(no->msg, sizeof(no->msg), "cross-site WebSocket "
		    "refused: Origin must be this gateway's own");
		return false;
	}
	return true;
}

/*
 * Origin (RFC 6454 §7) must be present and be public_url when that is
 * set, else the scheme and Host the browser used. pincerd itself speaks
 * plain HTTP, so behind a TLS proxy without public_url it is https.
 */
static bool
ws_origin_ok(struct ws_hdrs *h)
{
	const struct config	*c = config_current();
	const char		*origin, *host;
	char			 want[512];
	size_t			 n;

	if ((origin = ws_header(h, "Origin")) == NULL)
		return false;
	if (*c->public_url != '\0') {
		snprintf(want, sizeof(want), "%s", c->public_url);
		n = strlen(want);
		while (n > 0 && want[n - 1] == '/')
			want[--n] = '\0';
		return strcasecmp(origin, want) == 0;
	}
	if ((host = ws_header(h, "Host")) == NULL)
		return false;
	if (!strncasecmp(origin, "http://", 7))
		origin += 7;
	else if (!strncasecmp(origin, "https://", 8))
		origin += 8;
	else
		return false;
	return strcasecmp(origin, host) == 0;
}

/*
 * auth_in's header reader. lws keeps the headers it knows by token and
 * the rest by lower-case name with its colon (LWS_WITH_CUSTOM_HEADERS).
 * Values live in h until the upgrade is decided.
 */
static const char *
ws_header(void *arg, const char *name)
{
	struct ws_hdrs	*h = arg;
	char		 key[64], *v;
	const char	*t;
	size_t		 i, len = strlen(name);
	int		 tok, n = -1;

	for (i = 0; i < (size_t)h->n; i++)
		if (!strcasecmp(h->name[i], name))
			return h->val[i][0] != '\0' ? h->val[i] : NULL;
	if (h->n == HDR_SLOTS || len + 2 > sizeof(key))
		return NULL;
	for (i = 0; i < len; i++)
		key[i] = (char)tolower((unsigned char)name[i]);
	key[len++] = ':';
	key[len] = '\0';
	v = h->val[h->n];
	for (tok = 0; tok < WSI_TOKEN_COUNT; tok++)
		if ((t = (const char *)lws_token_to_string(tok)) != NULL &&
		    !strcmp(t, key))
			break;
	if (tok < WSI_TOKEN_COUNT)
		n = lws_hdr_copy(h->wsi, v, HDR_MAX, tok);
	else
		n = lws_hdr_custom_copy(h->wsi, v, HDR_MAX, key, (int)len);
	if (n <= 0)
		v[0] = '\0';
	snprintf(h->name[h->n++], sizeof(h->name[0]), "%s", name);
	for (i = 0; v[i] == ' ' || v[i] == '\t'; i++)
		;
	memmove(v, v + i, strlen(v + i) + 1);
	return *v != '\0' ? v : NULL;
}

/*
 * The query as lws parsed it (split at '&', percent-decoded), encoded
 * again for a request of our own: a value holding '&' or '%' passes
 * through intact. -1 if it does not fit.
 */
static int
ws_query_copy(struct lws *wsi, char *out, size_t outsz)
{
	char	 arg[1024];
	size_t	 n = 0;
	int	 i, len;
	char	*eq;

	out[0] = '\0';
	/* lws says -1 both at the end and for a fragment too long. */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) >=
	    (int)sizeof(arg))
		return -1;
	for (i = 0; (len = lws_hdr_copy_fragment(wsi, arg, sizeof(arg),
	    WSI_TOKEN_HTTP_URI_ARGS, i)) >= 0; i++) {
		if (len == 0)
			continue;
		if (n > 0 && ws_put(out, outsz, &n, '&') == -1)
			return -1;
		eq = strchr(arg, '=');
		if (ws_encode(out, outsz, &n, arg, eq != NULL ?
		    (size_t)(eq - arg) : strlen(arg)) == -1)
			return -1;
		if (eq != NULL && (ws_put(out, outsz, &n, '=') == -1 ||
		    ws_encode(out, outsz, &n, eq + 1, strlen(eq + 1)) == -1))
			return -1;
	}
	return 0;
}

/* RFC 3986 §2.3: unreserved bytes pass, the rest as %XX. */
static int
ws_encode(char *out, size_t outsz, size_t *n, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t		 i;
	unsigned char	 c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (isalnum(c) || (c != '\0' && strchr("-._~", c) != NULL)) {
			if (ws_put(out, outsz, n, (char)c) == -1)
				return -1;
		} else if (ws_put(out, outsz, n, '%') == -1 ||
		    ws_put(out, outsz, n, hex[c >> 4]) == -1 ||
		    ws_put(out, outsz, n, hex[c & 15]) == -1)
			return -1;
	}
	return 0;
}

static int
ws_put(char *out, size_t outsz, size_t *n, char c)
{
	if (*n + 1 >= outsz)
		return -1;
	out[(*n)++] = c;
	out[*n] = '\0';
	return 0;
}

/* The peer's address, or a trusted proxy's right-most X-Forwarded-For. */
static void
ws_client_ip(struct lws *wsi, struct ws_hdrs *h, char *out, size_t outsz)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	struct ipaddr		 ip;
	const char		*fwd, *comma;

	out[0] = '\0';
	memset(&ss, 0, sizeof(ss));
	if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&ss,
	    &len) == -1)
		return;
	if ((fwd = ws_header(h, "X-Forwarded-For")) != NULL &&
	    (comma = strrchr(fwd, ',')) != NULL)
		for (fwd = comma + 1; *fwd == ' '; fwd++)
			;
	net_client_ip((struct sockaddr *)&ss, fwd, &ip);
	net_ipaddr_str(&ip, out, outsz);
}

/* The handshake is done: the session is counted and its timers set. */
static void
ws_established(struct ws_session *s)
{
	const struct config	*c = config_current();
	struct logline		 l;

	s->open = true;
	s->live = true;
	buf_init(&s->in, s->route->body_max == ROUTE_BODY_BROWSER ?
	    (size_t)c->browser_max_message : (size_t)c->ws_max_message_bytes);
	ws_link(&sessions, s);
	__atomic_add_fetch(&nsessions, 1, __ATOMIC_RELAXED);
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
	    (int)c->idle_timeout_s);
	if (s->ops->keepalive)
		lws_set_timer_usecs(s->wsi, (lws_usec_t)(c->idle_timeout_s *
		    LWS_US_PER_SEC / 2));
	metrics_request(route_index(s->route), 101, 0);
	if (log_begin(&l, LOG_INFO, "websocket open")) {
		log_str(&l, "path", s->path);
		log_str(&l, "ip", s->ip);
		if (s->id.user[0] != '\0')
			log_str(&l, "user", s->id.user);
		log_end(&l);
	}
}

/* A close frame came: its code and reason (RFC 6455 §5.5.1). */
static void
ws_peer_close(struct ws_session *s, const unsigned char *p, size_t n)
{
	if (s->closing)
		return;
	s->close_code = n >= 2 ? p[0] << 8 | p[1] :
	    LWS_CLOSE_STATUS_NO_STATUS;
	snprintf(s->close_reason, sizeof(s->close_reason), "%.*s",
	    n > 2 ? (int)(n - 2 > REASON_MAX ? REASON_MAX : n - 2) : 0,
	    n > 2 ? (const char *)p + 2 : "");
}

/* The session is over: tell the handler once, drop what is queued. */
static void
ws_ended(struct ws_session *s)
{
	if (s->live) {
		s->live = false;
		if (s->close_code == 0)
			s->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
		if (s->ops->on_close != NULL)
			s->ops->on_close(s, s->close_code, s->close_reason);
	}
	ws_flush_drop(s);
	while (s->out_head != NULL)
		ws_dequeue(s);
	buf_free(&s->in);
}

static void
ws_link(struct ws_session **list, struct ws_session *s)
{
	s->prev = NULL;
	s->next = *list;
	if (*list != NULL)
		(*list)->prev = s;
	*list = s;
}

static void
ws_unlink(struct ws_session **list, struct ws_session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else if (*list == s)
		*list = s->next;
	else
		return;		/* never linked */
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

/* Assemble fragments (RFC 6455 §5.4) into one message for the handler. */
static void
ws_rx(struct ws_session *s, const void *p, size_t n)
{
	if (s->closing)
		return;
	if (s->in.len == 0)
		s->in_binary = lws_frame_is_binary(s->wsi);
	if (buf_append(&s->in, p, n) == -1) {
		ws_close(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
		    "message too large");
		buf_free(&s->in);
		return;
	}
	if (!lws_is_final_fragment(s->wsi) ||
	    lws_remaining_packet_payload(s->wsi) > 0)
		return;
	if (s->ops->on_message != NULL)
		s->ops->on_message(s, s->in.data != NULL ? s->in.data : "",
		    s->in.len, s->in_binary);
	/* A large message's room is not kept for the next small one. */
	if (s->in.cap > IN_KEEP_MAX)
		buf_free(&s->in);
	else
		buf_reset(&s->in);
}

/*
 * Writable: a ping if one is due, else the next message, else (closing,
 * all written) the close frame, by returning -1 with the reason set.
 */
static int
ws_tx(struct ws_session *s)
{
	struct ws_msg	*m = s->out_head;
	unsigned char	 ping[LWS_PRE + 4];

	if (s->ping_due && !s->closing) {
		/* With data: lws 4.1 drops an empty pong without a callback. */
		s->ping_due = false;
		memcpy(ping + LWS_PRE, "ping", 4);
		if (lws_write(s->wsi, ping + LWS_PRE, 4, LWS_WRITE_PING) < 4)
			return -1;
		if (m != NULL)
			lws_callback_on_writable(s->wsi);
		return 0;
	}
	if (m == NULL) {
		if (!s->closing)
			return 0;
		lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
		    (unsigned char *)s->close_reason, strlen(s->close_reason));
		return -1;
	}
	ws_flush_drop(s);
	if (ws_write_out(s) == -1)
		return -1;
	ws_written(s);
	return 0;
}

/*
 * Keepalive sessions are pinged at half the idle timeout (RFC 6455
 * §5.5.2); a peer that answers stays, one that is gone is closed when
 * the idle timeout runs out.
 */
static void
ws_keepalive(struct ws_session *s)
{
	const struct config	*c = config_current();

	if (s->closing)
		return;
	s->ping_due = true;
	lws_callback_on_writable(s->wsi);
	lws_set_timer_usecs(s->wsi, (lws_usec_t)(c->idle_timeout_s *
	    LWS_US_PER_SEC / 2));
}

static void
ws_log(int level, const char *line)
{
	char	 msg[512];
	size_t	 n;

	/* A refused upgrade: ws_filter logged it with the reason. */
	if (strstr(line, "User code denied connection") != NULL)
		return;
	snprintf(msg, sizeof(msg), "%s", line);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_msg(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "libwebsockets",
	    "%s", msg);
}

static void
echo_message(struct ws_session *s, const void *p, size_t n, bool binary)
{
	ws_send(s, p, n, binary);
}
