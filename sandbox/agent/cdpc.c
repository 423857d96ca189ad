/* SPDX-License-Identifier: MIT */
/*
 * cdpc.c: the agent's CDP client, to its sandbox's 127.0.0.1:9222 (the
 * bridge): one HTTP/1.1 request for /json/…, and a WebSocket (RFC 6455)
 * to a page, blocking, one call at a time. The far end is pincerd on
 * loopback, so this is a few hundred lines rather than libwebsockets and
 * its libraries in every turn's memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define CDP_PORT	9222
#define HEAD_MAX	8192
#define MSG_MAX		((size_t)64 << 20)	/* a full-page screenshot */

struct cdpc {
	int		 fd;
	long long	 next_id;
	char		 why[256];
};

static int	 dial(char *, size_t);
static int	 io_wait(int, short, long);
static int	 write_all(int, const void *, size_t, long);
static int	 read_full(int, void *, size_t, long);
static int	 read_head(int, char *, size_t, long);
static int	 send_frame(struct cdpc *, int, const void *, size_t);
static json_t	*recv_msg(struct cdpc *, long);
static int	 read_chunk(int, struct buf *, size_t, long);

/*
 * method PATH on 127.0.0.1:9222; the answer's body (JSON parsed, or a
 * JSON string of the text). NULL: no answer, why says so.
 */
json_t *
cdpc_http(const char *method, const char *path, int *status, char *why,
    size_t whysz)
{
	struct buf	 b;
	char		 head[HEAD_MAX], chunk[8192];
	const char	*body;
	ssize_t		 n;
	int		 fd;
	json_t		*j = NULL;

	if ((fd = dial(why, whysz)) == -1)
		return NULL;
	snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d"
	    "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, path,
	    CDP_PORT);
	buf_init(&b, (size_t)16 << 20);
	if (write_all(fd, head, strlen(head), 30) == -1) {
		snprintf(why, whysz, "cannot send to 127.0.0.1:9222");
		goto out;
	}
	while (io_wait(fd, POLLIN, 60) == 0 && (n = read(fd, chunk,
	    sizeof(chunk))) > 0)
		if (buf_append(&b, chunk, (size_t)n) == -1)
			break;
	if (b.data == NULL || sscanf(b.data, "HTTP/1.%*d %d", status) != 1 ||
	    (body = strstr(b.data, "\r\n\r\n")) == NULL) {
		snprintf(why, whysz, "no answer from the browser bridge "
		    "(127.0.0.1:9222)");
		goto out;
	}
	body += 4;
	if ((j = json_loads(body, 0, NULL)) == NULL)
		j = json_string(body);
out:
	close(fd);
	buf_free(&b);
	return j;
}

/* A WebSocket to PATH (/devtools/page/ID); NULL with why. */
struct cdpc *
cdpc_open(const char *path, char *why, size_t whysz)
{
	struct cdpc	*c;
	unsigned char	 nonce[16];
	char		 key[32], head[HEAD_MAX];
	int		 status = 0;
	size_t		 i;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->next_id = 1;
	if ((c->fd = dial(why, whysz)) == -1) {
		free(c);
		return NULL;
	}
	if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce))
		memset(nonce, 0x5a, sizeof(nonce));
	/* Standard base64 of 16 bytes (RFC 6455 §4.1): 22 characters
	 * and "==". */
	b64url_encode(nonce, sizeof(nonce), key);
	for (i = 0; key[i] != '\0'; i++)
		key[i] = key[i] == '-' ? '+' : key[i] == '_' ? '/' : key[i];
	snprintf(key + i, sizeof(key) - i, "==");
	snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d"
	    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
	    path, CDP_PORT, key);
	if (write_all(c->fd, head, strlen(head), 30) == -1 ||
	    read_head(c->fd, head, sizeof(head), 30) == -1 ||
	    sscanf(head, "HTTP/1.1 %d", &status) != 1 || status != 101) {
		snprintf(why, whysz, "the browser bridge refused the "
		    "connection (%s)", status != 0 ? head : "no answer");
		why[strcspn(why, "\r\n")] = '\0';
		cdpc_close(c);
		return NULL;
	}
	return c;
}

void
cdpc_close(struct cdpc *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0) {
		(void)send_frame(c, 0x8, "\x03\xe8", 2);
		close(c->fd);
	}
	free(c);
}

const char *
cdpc_error(const struct cdpc *c)
{
	return c->why;
}

/*
 * method with params (taken) on c; its result (caller frees), or NULL
 * with the error in cdpc_error. Events that come meanwhile go to ev.
 */
json_t *
cdpc_call(struct cdpc *c, const char *method, json_t *params, long secs,
    cdpc_event_fn ev, void *arg)
{
	json_t		*m, *r, *res = NULL;
	long long	 id = c->next_id++;
	char		*s;
	time_t		 end = time(NULL) + secs;

	m = json_pack("{s:I,s:s,s:o}", "id", (json_int_t)id, "method", method,
	    "params", params != NULL ? params : json_object());
	s = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;
	json_decref(m);
	if (s == NULL || send_frame(c, 0x1, s, strlen(s)) == -1) {
		free(s);
		if (c->why[0] == '\0')
			snprintf(c->why, sizeof(c->why), "cannot send %s",
			    method);
		return NULL;
	}
	free(s);
	while ((r = recv_msg(c, (long)(end - time(NULL)))) != NULL) {
		if (json_integer_value(json_object_get(r, "id")) == id) {
			if (json_object_get(r, "error") != NULL)
				snprintf(c->why, sizeof(c->why), "%s: %s", method,
				    json_string_value(json_object_get(
				    json_object_get(r, "error"), "message")));
			else
				res = json_incref(json_object_get(r, "result"));
			json_decref(r);
			return res;
		}
		if (ev != NULL && json_object_get(r, "method") != NULL)
			ev(arg, json_string_value(json_object_get(r, "method")),
			    json_object_get(r, "params"));
		json_decref(r);
	}
	return NULL;
}

/* Events for secs, each to ev, until ev returns true. */
bool
cdpc_wait(struct cdpc *c, long secs, cdpc_event_fn ev, void *arg)
{
	json_t	*r;
	time_t	 end = time(NULL) + secs;
	bool	 done = false;

	while (!done && time(NULL) < end && (r = recv_msg(c, (long)(end -
	    time(NULL)))) != NULL) {
		if (json_object_get(r, "method") != NULL)
			done = ev(arg, json_string_value(json_object_get(r,
			    "method")), json_object_get(r, "params"));
		json_decref(r);
	}
	return done;
}

static int
dial(char *why, size_t whysz)
{
	struct sockaddr_in	 sin = { .sin_family = AF_INET,
		.sin_port = htons(CDP_PORT) };
	int			 fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		snprintf(why, whysz, "the browser is not reachable at "
		    "127.0.0.1:9222: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int
io_wait(int fd, short ev, long secs)
{
	struct pollfd	 p = { .fd = fd, .events = ev };

	if (secs <= 0)
		secs = 1;
	return poll(&p, 1, (int)(secs * 1000)) == 1 ? 0 : -1;
}

static int
write_all(int fd, const void *p, size_t n, long secs)
{
	const char	*q = p;
	ssize_t		 k;

	while (n > 0) {
		if (io_wait(fd, POLLOUT, secs) == -1 || (k = write(fd, q,
		    n)) <= 0)
			return -1;
		q += k;
		n -= (size_t)k;
	}
	return 0;
}

static int
read_full(int fd, void *p, size_t n, long secs)
{
	char	*q = p;
	ssize_t	 k;

	while (n > 0) {
		if (io_wait(fd, POLLIN, secs) == -1 || (k = read(fd, q,
		    n)) <= 0)
			return -1;
		q += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The response head, byte by byte: nothing of the first frame is eaten. */
static int
read_head(int fd, char *out, size_t outsz, long secs)
{
	size_t	 n = 0;

	while (n + 1 < outsz) {
		if (read_full(fd, out + n, 1, secs) == -1)
			return -1;
		n++;
		out[n] = '\0';
		if (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0)
			return 0;
	}
	return -1;
}

/* One frame, FIN set, masked as a client's must be (RFC 6455 §5.3). */
static int
send_frame(struct cdpc *c, int op, const void *p, size_t n)
{
	unsigned char	 h[14], mask[4], *m;
	size_t		 hl = 2, i;
	int		 rc;

	h[0] = 0x80 | (unsigned char)op;
	if (n < 126)
		h[1] = 0x80 | (unsigned char)n;
	else if (n < 65536) {
		h[1] = 0x80 | 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		hl = 4;
	} else {
		h[1] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	if (getrandom(mask, sizeof(mask), 0) != sizeof(mask))
		memset(mask, 0x37, sizeof(mask));
	memcpy(h + hl, mask, 4);
	hl += 4;
	if ((m = malloc(n > 0 ? n : 1)) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		m[i] = ((const unsigned char *)p)[i] ^ mask[i & 3];
	rc = write_all(c->fd, h, hl, 30) == -1 || write_all(c->fd, m, n,
	    30) == -1 ? -1 : 0;
	free(m);
	if (rc == -1)
		snprintf(c->why, sizeof(c->why), "the browser connection "
		    "broke");
	return rc;
}

/*
 * The next whole message (continuations joined, pings answered), parsed;
 * NULL at a close, a timeout or a broken connection (why set).
 */
static json_t *
recv_msg(struct cdpc *c, long secs)
{
	unsigned char	 h[2], ext[8], ctl[125];
	struct buf	 msg;
	uint64_t	 len;
	int		 op, i, k;
	bool		 fin = false;
	json_t		*j = NULL;

	buf_init(&msg, MSG_MAX);
	while (!fin) {
		if (read_full(c->fd, h, 2, secs) == -1)
			goto broke;
		op = h[0] & 0x0f;
		len = h[1] & 0x7f;
		if (len >= 126) {
			k = len == 126 ? 2 : 8;
			if (read_full(c->fd, ext, (size_t)k, secs) == -1)
				goto broke;
			for (len = 0, i = 0; i < k; i++)
				len = len << 8 | ext[i];
		}
		if (op >= 0x8) {
			/* Control frames: at most 125 bytes, never split. */
			if (len > sizeof(ctl) || read_full(c->fd, ctl,
			    (size_t)len, secs) == -1 || op == 0x8)
				goto broke;
			if (op == 0x9 && send_frame(c, 0xa, ctl, (size_t)len) ==
			    -1)
				goto broke;
			continue;
		}
		fin = (h[0] & 0x80) != 0;
		if (len > MSG_MAX - msg.len)
			goto broke;
		if (read_chunk(c->fd, &msg, (size_t)len, secs) == -1)
			goto broke;
	}
	if ((j = json_loadb(msg.data != NULL ? msg.data : "", msg.len, 0,
	    NULL)) == NULL)
		snprintf(c->why, sizeof(c->why), "the browser sent a message "
		    "that is not JSON");
	buf_free(&msg);
	return j;
broke:
	snprintf(c->why, sizeof(c->why), "the browser connection closed or "
	    "timed out");
	buf_free(&msg);
	return NULL;
}

/* len more bytes of a frame onto b. */
static int
read_chunk(int fd, struct buf *b, size_t len, long secs)
{
	char	 chunk[16384];
	size_t	 k;

	while (len > 0) {
		k = len < sizeof(chunk) ? len : sizeof(chunk);
		if (read_full(fd, chunk, k, secs) == -1 ||
		    buf_append(b, chunk, k) == -1)
			return -1;
		len -= k;
	}
	return 0;
}
