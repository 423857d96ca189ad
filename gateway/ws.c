/* SPDX-License-Identifier: MIT */
/*
 * ws.c: WebSocket sessions on libwebsockets. The front door hands over a
 * socket whose upgrade request is still unread; libwebsockets does the
 * handshake (RFC 6455 §4.2) and framing on its own service thread. Route
 * handlers see whole messages; a message over ws.max_message_bytes closes
 * the socket with 1009 (RFC 6455 §7.4.1).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "pincer.h"

struct ws_msg {
	struct ws_msg	*next;
	size_t		 len;
	bool		 binary;
	unsigned char	 data[];	/* LWS_PRE bytes, then the payload */
};

struct ws_session {
	struct lws		*wsi;
	const struct route	*route;
	struct buf		 in;		/* the message being assembled */
	bool			 in_binary;
	struct ws_msg		*out_head;	/* owned */
	struct ws_msg		*out_tail;
	bool			 closing;
	struct ws_session	*prev;
	struct ws_session	*next;
};

static int	ws_callback(struct lws *, enum lws_callback_reasons, void *,
		    void *, size_t);
static void	ws_take_adoptions(void);
static void	ws_rx(struct ws_session *, const void *, size_t);
static int	ws_tx(struct ws_session *);
static void	*ws_main(void *);
static void	ws_log(int, const char *);
static void	echo_message(struct ws_session *, const void *, size_t, bool);

const struct ws_ops ws_echo_ops = { .on_message = echo_message };

static const struct lws_protocols protocols[] = {
	{ "pincer", ws_callback, sizeof(struct ws_session), 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static struct lws_context	*ctx;
static struct lws_vhost		*vhost;
static pthread_t		 ws_thread;
static bool			 ws_running;
static bool			 ws_goingaway;	/* atomic */
static bool			 ws_quit;	/* atomic */
static long			 nsessions;	/* atomic */
static struct ws_session	*sessions;	/* service thread only */
static pthread_mutex_t		 adopt_lock = PTHREAD_MUTEX_INITIALIZER;
static int			*adopt_fds;	/* guarded by adopt_lock */
static size_t			 nadopt;

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
	 */
	info.fd_limit_per_thread = (unsigned int)c->max_connections + 64;
	if ((ctx = lws_create_context(&info)) == NULL) {
		log_error("cannot start the WebSocket server", NULL);
		return -1;
	}
	vhost = lws_get_vhost_by_name(ctx, "default");
	if (vhost == NULL ||
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
	lws_context_destroy(ctx);
	ctx = NULL;
	ws_running = false;
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

/* Queue a message; service thread only (handlers run there). */
int
ws_send(struct ws_session *s, const void *p, size_t n, bool binary)
{
	struct ws_msg	*m;

	if (s->closing || (m = malloc(sizeof(*m) + LWS_PRE + n)) == NULL)
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
	lws_callback_on_writable(s->wsi);
	return 0;
}

static void *
ws_main(void *arg)
{
	while (!__atomic_load_n(&ws_quit, __ATOMIC_ACQUIRE))
		if (lws_service(ctx, 0) < 0)
			break;
	return NULL;
}

static int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct ws_session	*s = user;
	const struct config	*c = config_current();
	struct logline		 l;
	char			 uri[512];

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		ws_take_adoptions();
		if (!__atomic_load_n(&ws_goingaway, __ATOMIC_ACQUIRE))
			return 0;
		for (s = sessions; s != NULL; s = s->next) {
			if (s->closing)
				continue;
			lws_close_reason(s->wsi, LWS_CLOSE_STATUS_GOINGAWAY,
			    (unsigned char *)"shutdown", 8);
			s->closing = true;
			lws_callback_on_writable(s->wsi);
		}
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/*
		 * The door routed by path already; check again here. Only
		 * public WebSocket routes exist so far (ws-echo): one that
		 * needs an identity would also need the Origin check against
		 * cross-site WebSocket hijacking, which comes with the first
		 * such route (the sandbox terminal). Until then, fail closed.
		 */
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0
		    || route_find_ws(uri) == NULL ||
		    route_find_ws(uri)->auth != AUTH_PUBLIC)
			return -1;
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		memset(s, 0, sizeof(*s));
		s->wsi = wsi;
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) > 0)
			s->route = route_find_ws(uri);
		buf_init(&s->in, (size_t)c->ws_max_message_bytes);
		s->next = sessions;
		if (sessions != NULL)
			sessions->prev = s;
		sessions = s;
		__atomic_add_fetch(&nsessions, 1, __ATOMIC_RELAXED);
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
		    (int)c->idle_timeout_s);
		metrics_request(s->route != NULL ? route_index(s->route) :
		    ROUTE_IDX_NONE, 101, 0);
		if (log_begin(&l, LOG_INFO, "websocket open")) {
			log_str(&l, "path", uri);
			log_end(&l);
		}
		return s->route == NULL ? -1 : 0;
	case LWS_CALLBACK_RECEIVE:
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
		    (int)c->idle_timeout_s);
		ws_rx(s, in, len);
		return s->closing && s->out_head == NULL ? -1 : 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ws_tx(s);
	case LWS_CALLBACK_CLOSED:
		while (s->out_head != NULL) {
			struct ws_msg *m = s->out_head;

			s->out_head = m->next;
			free(m);
		}
		buf_free(&s->in);
		if (s->prev != NULL)
			s->prev->next = s->next;
		else
			sessions = s->next;
		if (s->next != NULL)
			s->next->prev = s->prev;
		__atomic_sub_fetch(&nsessions, 1, __ATOMIC_RELAXED);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		/* Every adopted socket ends here, upgraded or not. */
		door_conn_closed();
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
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

/* Assemble fragments (RFC 6455 §5.4) into one message for the handler. */
static void
ws_rx(struct ws_session *s, const void *p, size_t n)
{
	if (s->closing)
		return;
	if (s->in.len == 0)
		s->in_binary = lws_frame_is_binary(s->wsi);
	if (buf_append(&s->in, p, n) == -1) {
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
		    (unsigned char *)"message too large", 17);
		s->closing = true;
		buf_free(&s->in);
		return;
	}
	if (!lws_is_final_fragment(s->wsi) ||
	    lws_remaining_packet_payload(s->wsi) > 0)
		return;
	if (s->route != NULL && s->route->ws->on_message != NULL)
		s->route->ws->on_message(s, s->in.data != NULL ? s->in.data :
		    "", s->in.len, s->in_binary);
	buf_reset(&s->in);
}

static int
ws_tx(struct ws_session *s)
{
	struct ws_msg	*m = s->out_head;

	if (m == NULL)
		return s->closing ? -1 : 0;
	if (lws_write(s->wsi, m->data + LWS_PRE, m->len, m->binary ?
	    LWS_WRITE_BINARY : LWS_WRITE_TEXT) < (int)m->len)
		return -1;
	s->out_head = m->next;
	if (s->out_head == NULL)
		s->out_tail = NULL;
	free(m);
	if (s->out_head != NULL || s->closing)
		lws_callback_on_writable(s->wsi);
	return 0;
}

static void
ws_log(int level, const char *line)
{
	char	 msg[512];
	size_t	 n;

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
