/* SPDX-License-Identifier: MIT */
/*
 * init_ws.c: WebSocket (RFC 6455) on a socket that init_conn.c upgraded:
 * frames parsed and unmasked, messages put together, control frames
 * answered, the closing handshake, and a bounded output queue. Whole
 * messages go to the owner the ws is attached to (a terminal).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "init.h"

#define WS_IN_BUF	(64 * 1024)	/* read from the socket, unparsed */
#define WS_CLOSE_MS	2000		/* wait for the peer's close frame */

/* RFC 6455 §5.2 opcodes */
#define OP_CONT		0x0
#define OP_TEXT		0x1
#define OP_BIN		0x2
#define OP_CLOSE	0x8
#define OP_PING		0x9
#define OP_PONG		0xa

struct ws {
	int		 fd;
	const struct ws_owner *owner;	/* NULL once detached */
	void		*arg;		/* the owner's */
	struct ws_buf	 out;		/* frames not yet written */
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
	struct ws_buf	 msg;
	uint8_t		 ctl[125];	/* a control frame's payload, §5.5 */
	size_t		 ctllen;
	bool		 close_sent, close_rcvd;
	bool		 failed;	/* a protocol error: input discarded */
	bool		 gone;		/* the peer hung up, or a write broke */
	uint32_t	 ev;		/* registered events */
	long		 timer;
};

static void	ws_free(struct ws *);
static void	ws_io(void *, uint32_t);
static void	ws_read(struct ws *);
static void	ws_parse(struct ws *);
static size_t	ws_header(struct ws *, const uint8_t *, size_t);
static void	ws_payload(struct ws *, uint8_t *, size_t);
static void	ws_frame_done(struct ws *);
static void	ws_control(struct ws *);
static void	ws_message(struct ws *);
static bool	ws_stalled(const struct ws *);
static void	ws_send(struct ws *, int, const void *, size_t);
static void	ws_flush(struct ws *);
static bool	ws_done(const struct ws *);
static void	ws_timeout(void *);
static bool	ws_close_code_ok(unsigned);

struct ws *
ws_new(int fd, size_t out_max)
{
	struct ws	*w;
	int		 fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    (w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->fd = fd;
	ws_buf_init(&w->out, out_max);
	ws_buf_init(&w->msg, WS_MSG_MAX);
	w->ev = EPOLLIN | EPOLLRDHUP;
	if (loop_add(fd, w->ev, ws_io, w) == -1) {
		free(w);
		return NULL;
	}
	return w;
}

/* Messages go to owner's callbacks with arg; a NULL owner detaches. */
void
ws_attach(struct ws *w, const struct ws_owner *owner, void *arg)
{
	w->owner = owner;
	w->arg = owner != NULL ? arg : NULL;
}

/* The owner takes input again: parse what is held, read on. */
void
ws_resume(struct ws *w)
{
	if (w->inlen > 0)
		ws_parse(w);
	ws_update(w);
}

void
ws_binary(struct ws *w, const void *p, size_t n)
{
	ws_send(w, OP_BIN, p, n);
}

void
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
void
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
	if ((w->timer = loop_timer_add(WS_CLOSE_MS, ws_timeout, w)) == -1) {
		w->timer = 0;
		w->gone = true;
	}
}

/* §7.1.7: fail the connection; later input is read and thrown away. */
void
ws_fail(struct ws *w, int code, const char *why)
{
	if (w->failed)
		return;
	w->failed = true;
	w->in_frame = false;
	ws_close(w, code, why);
}

/*
 * Outside its own callbacks a ws is never freed; one that is done there
 * (a failed write, a Close answered) has its socket shut, so that the
 * loop calls ws_io, which frees it.
 */
void
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

size_t
ws_backlog(const struct ws *w)
{
	return w->out.len;
}

/* A bounded byte queue: its hard maximum is set here. */
void
ws_buf_init(struct ws_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

int
ws_buf_put(struct ws_buf *b, const void *p, size_t n)
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

void
ws_buf_eat(struct ws_buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		b->off = 0;
}

void
ws_buf_free(struct ws_buf *b)
{
	free(b->b);
	memset(b, 0, sizeof(*b));
}

/* --- frames in ---------------------------------------------------------- */

/* Only ever from the ws's own callbacks (its fd, its timer). */
static void
ws_free(struct ws *w)
{
	const struct ws_owner	*owner = w->owner;
	void			*arg = w->arg;

	loop_del(w->fd);
	close(w->fd);
	loop_timer_cancel(w->timer);
	ws_buf_free(&w->out);
	ws_buf_free(&w->msg);
	free(w);
	if (owner != NULL)
		owner->detached(arg);
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
	} else if (ws_buf_put(&w->msg, p, n) == -1)
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
		ws_buf_eat(&w->msg, w->msg.len);
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
	if (w->ctllen > 2 && !text_utf8_ok(w->ctl + 2, w->ctllen - 2)) {
		ws_fail(w, 1007, "close reason not UTF-8");
		return;
	}
	w->close_rcvd = true;
	/* §5.5.1: answer with a Close echoing the code (if any); we close. */
	ws_close(w, (int)code, "");
}

/*
 * A whole message. §8.1: a text message that is not UTF-8 fails the
 * connection; any other goes to the owner, if there is one.
 */
static void
ws_message(struct ws *w)
{
	const char	*m = w->msg.b + w->msg.off;

	if (w->mop == OP_TEXT && !text_utf8_ok((const uint8_t *)m,
	    w->msg.len)) {
		ws_fail(w, 1007, "text not UTF-8");
		return;
	}
	if (w->owner != NULL)
		w->owner->message(w->arg, w, m, w->msg.len, w->mop ==
		    OP_TEXT);
}

static bool
ws_stalled(const struct ws *w)
{
	return w->owner != NULL && w->owner->stalled(w->arg);
}

/* --- frames out --------------------------------------------------------- */

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
	if (hl + n > w->out.max - w->out.len || ws_buf_put(&w->out, h, hl) ==
	    -1 || ws_buf_put(&w->out, p, n) == -1) {
		w->gone = true;		/* cannot happen by the sizes */
		return;
	}
	ws_flush(w);
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
		ws_buf_eat(&w->out, (size_t)n);
	}
	/* Room again: the owner may produce more. */
	if (w->owner != NULL)
		w->owner->flushed(w->arg);
	ws_update(w);
}

static bool
ws_done(const struct ws *w)
{
	return w->gone || (w->close_sent && w->close_rcvd && w->out.len == 0);
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
