/* SPDX-License-Identifier: MIT */
/*
 * cli_shell.c: `pincer sandbox shell NAME [--id ID]`, a terminal in a
 * sandbox through the running pincerd: a WebSocket (libwebsockets) on
 * $state/pincerd.sock to /api/v1/sandboxes/NAME/terminal, which only the
 * account running pincerd can reach and which needs no token. With a tty
 * the local terminal goes raw and every key passes through as typed;
 * without one, stdin is fed to the shell as it comes (pipe mode).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "pincer.h"

#define IN_MAX		(64 * 1024)	/* stdin read ahead of the socket */
#define CHUNK		(16 * 1024)	/* bytes per binary frame */
#define CTL_MAX		(64 * 1024)	/* a JSON control message */

/* One terminal per process: the state lws callbacks and threads share. */
struct shell {
	struct lws_context	*ctx;
	struct lws		*wsi;
	bool			 up;		/* handshake done */
	bool			 done;
	int			 rc;
	int			 exit_code;	/* from the exit frame; -1 */
	int			 close_code;
	char			 why[256];
	struct buf		 ctl;		/* a text message */
	bool			 tty;
	bool			 raw;
	struct termios		 saved;
	bool			 last_nl;	/* last byte sent was '\n' */
	bool			 eof_sent;
	pthread_mutex_t		 lock;
	pthread_cond_t		 room;
	unsigned char		 in[IN_MAX];	/* lock */
	size_t			 in_len;	/* lock */
	bool			 in_eof;	/* lock */
	bool			 resize;	/* lock */
	int			 quit_sig;	/* lock */
	bool			 ctx_gone;	/* lock */
};

static int	 shell_callback(struct lws *, enum lws_callback_reasons, void *,
		    void *, size_t);
static int	 shell_connect(const char *, const char *, const char *);
static void	 shell_path(char *, size_t, const char *, const char *);
static void	 shell_sigset(sigset_t *);
static int	 shell_socket(const char *, char *, size_t, int *);
static void	 shell_started(void);
static void	 shell_wakeup(void);
static int	 shell_write(struct lws *);
static void	 shell_receive(struct lws *, const void *, size_t);
static void	 shell_control(void);
static void	 shell_failed(struct lws *, const char *, size_t);
static void	 shell_closed(void);
static void	 shell_size(int *, int *);
static void	 shell_restore(void);
static void	*shell_stdin(void *);
static void	*shell_signals(void *);
static void	 shell_log(int, const char *);

static const struct lws_protocols shell_protocols[] = {
	{ "pincer-shell", shell_callback, 0, 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static struct shell	 sh = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.room = PTHREAD_COND_INITIALIZER,
	.exit_code = -1,
	.last_nl = true,
};

/*
 * argv[0] is NAME; exits with the shell's own exit code (CLI_USAGE: the
 * arguments are wrong, and the caller prints the usage).
 */
int
cli_shell(const char *state_dir, int argc, char **argv)
{
	const char	*id = "main";
	char		 sock[512];
	int		 i, dfd = -1, rc;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--id") && i + 1 < argc)
			id = argv[++i];
		else
			return CLI_USAGE;
	if (argc < 1 || !sbx_name_valid(argv[0]))
		return CLI_USAGE;
	if (*id == '\0' || strlen(id) > 64) {
		fprintf(stderr, "pincer sandbox shell: --id takes 1 to 64 "
		    "characters\n");
		return 2;
	}
	if (shell_socket(state_dir, sock, sizeof(sock), &dfd) == -1)
		return 1;
	rc = shell_connect(sock, argv[0], id);
	if (dfd != -1)
		close(dfd);
	return rc;
}

/*
 * Signals are taken by a thread of their own (sigwait) and handed to
 * the loop: a resize becomes a message, a request to end restores the
 * tty on the way out.
 */
static int
shell_connect(const char *sock, const char *name, const char *id)
{
	struct lws_context_creation_info info;
	struct lws_client_connect_info	 cci;
	char				 addr[600], path[512];
	sigset_t			 set;
	pthread_t			 th;

	sh.tty = isatty(STDIN_FILENO);
	snprintf(addr, sizeof(addr), "+%s", sock);
	shell_path(path, sizeof(path), name, id);
	signal(SIGPIPE, SIG_IGN);
	shell_sigset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	lws_set_log_level(LLL_ERR, shell_log);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = shell_protocols;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	buf_init(&sh.ctl, CTL_MAX);
	if ((sh.ctx = lws_create_context(&info)) == NULL) {
		fprintf(stderr, "pincer sandbox shell: cannot start "
		    "libwebsockets\n");
		return 1;
	}
	if (pthread_create(&th, NULL, shell_signals, NULL) == 0)
		pthread_detach(th);
	memset(&cci, 0, sizeof(cci));
	cci.context = sh.ctx;
	cci.address = addr;		/* "+path": a Unix socket */
	cci.path = path;
	cci.host = "localhost";
	cci.ietf_version_or_minus_one = -1;
	cci.local_protocol_name = shell_protocols[0].name;
	sh.rc = 1;
	if ((sh.wsi = lws_client_connect_via_info(&cci)) == NULL) {
		snprintf(sh.why, sizeof(sh.why), "cannot reach pincerd at "
		    "%.160s (is it running?)", sock);
		sh.done = true;
	}
	while (!sh.done)
		if (lws_service(sh.ctx, 0) < 0)
			break;
	shell_restore();
	/* The threads may still wake the loop: not once it is gone. */
	pthread_mutex_lock(&sh.lock);
	sh.ctx_gone = true;
	pthread_mutex_unlock(&sh.lock);
	lws_context_destroy(sh.ctx);
	buf_free(&sh.ctl);
	if (sh.why[0] != '\0')
		fprintf(stderr, "pincer sandbox shell: %s\n", sh.why);
	return sh.rc;
}

/* The terminal's URI: the id percent-encoded (RFC 3986 §2.1), the size. */
static void
shell_path(char *out, size_t outsz, const char *name, const char *id)
{
	char		 eid[3 * 64 + 1];
	size_t		 n = 0;
	unsigned char	 c;
	int		 cols, rows;

	for (; *id != '\0' && n + 4 <= sizeof(eid); id++) {
		c = (unsigned char)*id;
		if (isalnum(c) || strchr("-._~", c) != NULL)
			eid[n++] = (char)c;
		else
			n += (size_t)snprintf(eid + n, sizeof(eid) - n,
			    "%%%02X", c);
	}
	eid[n] = '\0';
	shell_size(&cols, &rows);
	snprintf(out, outsz, "/api/v1/sandboxes/%s/terminal?id=%s&cols=%d&"
	    "rows=%d", name, eid, cols, rows);
}

/* The signals the signal thread takes; blocked everywhere else. */
static void
shell_sigset(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGWINCH);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
}

/* pincerd.sock, through /proc/self/fd when the path is too long. */
static int
shell_socket(const char *state, char *out, size_t outsz, int *dfd)
{
	if ((size_t)snprintf(out, outsz, "%s/pincerd.sock", state) < 108)
		return 0;
	if ((*dfd = open(state, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "pincer sandbox shell: %s: %s\n", state,
		    strerror(errno));
		return -1;
	}
	snprintf(out, outsz, "/proc/self/fd/%d/pincerd.sock", *dfd);
	return 0;
}

static int
shell_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		shell_wakeup();
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		sh.up = true;
		shell_started();
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		shell_receive(wsi, in, len);
		return sh.done ? -1 : 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return shell_write(wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (len >= 2) {
			sh.close_code = ((unsigned char *)in)[0] << 8 |
			    ((unsigned char *)in)[1];
			snprintf(sh.why, sizeof(sh.why), "the terminal closed "
			    "(%d%s%.*s)", sh.close_code, len > 2 ? ": " : "",
			    (int)(len - 2), (char *)in + 2);
		}
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		shell_failed(wsi, in, in != NULL ? len : 0);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		shell_closed();
		return 0;
	default:
		return 0;
	}
}

/* Connected: the tty goes raw, and stdin starts to flow. */
static void
shell_started(void)
{
	struct termios	 raw;
	pthread_t	 th;

	if (sh.tty && tcgetattr(STDIN_FILENO, &sh.saved) == 0) {
		raw = sh.saved;
		cfmakeraw(&raw);
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			sh.raw = true;
	}
	if (pthread_create(&th, NULL, shell_stdin, NULL) != 0) {
		snprintf(sh.why, sizeof(sh.why), "cannot start a thread");
		sh.done = true;
		return;
	}
	pthread_detach(th);
}

/* Another thread has news: input, a resize, a signal to end. */
static void
shell_wakeup(void)
{
	bool	 more;

	pthread_mutex_lock(&sh.lock);
	if (sh.quit_sig != 0) {
		sh.rc = 128 + sh.quit_sig;
		sh.done = true;
	}
	more = sh.in_len > 0 || sh.in_eof || sh.resize;
	pthread_mutex_unlock(&sh.lock);
	if (more && sh.up && sh.wsi != NULL)
		lws_callback_on_writable(sh.wsi);
}

/*
 * One frame per writable: a resize first, then stdin's bytes. In pipe
 * mode the end of stdin is the end of the script: the shell is told
 * `exit`, which ends it with its last command's status. (A ^D would
 * too, but only once the shell reads the tty raw: sent earlier, the
 * line discipline turns it into a NUL byte.)
 */
static int
shell_write(struct lws *wsi)
{
	unsigned char	 frame[LWS_PRE + CHUNK];
	unsigned char	*p = frame + LWS_PRE;
	enum lws_write_protocol type = LWS_WRITE_BINARY;
	size_t		 n = 0;
	int		 cols, rows;
	bool		 more;

	pthread_mutex_lock(&sh.lock);
	if (sh.resize) {
		sh.resize = false;
		pthread_mutex_unlock(&sh.lock);
		shell_size(&cols, &rows);
		n = (size_t)snprintf((char *)p, CHUNK, "{\"type\":\"resize\","
		    "\"cols\":%d,\"rows\":%d}", cols, rows);
		type = LWS_WRITE_TEXT;
		pthread_mutex_lock(&sh.lock);
	} else if (sh.in_len > 0) {
		n = sh.in_len < CHUNK ? sh.in_len : CHUNK;
		memcpy(p, sh.in, n);
		memmove(sh.in, sh.in + n, sh.in_len - n);
		sh.in_len -= n;
		sh.last_nl = p[n - 1] == '\n';
		pthread_cond_signal(&sh.room);
	} else if (sh.in_eof && !sh.eof_sent) {
		sh.eof_sent = true;
		if (sh.raw) {
			/* The tty hung up: nothing more will come. */
			pthread_mutex_unlock(&sh.lock);
			snprintf(sh.why, sizeof(sh.why), "the terminal hung "
			    "up");
			sh.rc = 1;
			sh.done = true;
			return -1;
		}
		n = (size_t)snprintf((char *)p, CHUNK, "%sexit\n",
		    sh.last_nl ? "" : "\n");
	}
	more = sh.resize || sh.in_len > 0 || (sh.in_eof && !sh.eof_sent);
	pthread_mutex_unlock(&sh.lock);
	if (n > 0 && lws_write(wsi, p, n, type) < (int)n)
		return -1;
	if (more)
		lws_callback_on_writable(wsi);
	return 0;
}

/* Binary: the shell's output, written as it comes. Text: control. */
static void
shell_receive(struct lws *wsi, const void *p, size_t n)
{
	const char	*c = p;
	ssize_t		 w;

	if (lws_frame_is_binary(wsi)) {
		while (n > 0) {
			if ((w = write(STDOUT_FILENO, c, n)) == -1) {
				if (errno == EINTR)
					continue;
				snprintf(sh.why, sizeof(sh.why), "stdout: %s",
				    strerror(errno));
				sh.done = true;
				return;
			}
			c += w;
			n -= (size_t)w;
		}
		return;
	}
	if (buf_append(&sh.ctl, p, n) == -1) {
		buf_reset(&sh.ctl);
		return;
	}
	if (lws_is_final_fragment(wsi) &&
	    lws_remaining_packet_payload(wsi) == 0) {
		shell_control();
		buf_reset(&sh.ctl);
	}
}

/* {"type":"exit","code":N}: the code this command exits with. */
static void
shell_control(void)
{
	json_t		*m = json_loadb(sh.ctl.data != NULL ? sh.ctl.data : "",
			    sh.ctl.len, 0, NULL);
	const char	*type = json_string_value(json_object_get(m, "type"));
	json_int_t	 code;

	if (type != NULL && !strcmp(type, "exit")) {
		code = json_integer_value(json_object_get(m, "code"));
		sh.exit_code = code >= 0 && code <= 255 ? (int)code : 1;
	}
	json_decref(m);
}

/* The upgrade was refused or the socket could not be reached. */
static void
shell_failed(struct lws *wsi, const char *in, size_t len)
{
	unsigned	 status = lws_http_client_http_response(wsi);

	switch (status) {
	case 0:
		snprintf(sh.why, sizeof(sh.why), "cannot reach pincerd: %.*s "
		    "(is it running?)", (int)len, in != NULL ? in : "");
		break;
	case 404:
		snprintf(sh.why, sizeof(sh.why), "no such sandbox");
		break;
	case 401:
	case 403:
		snprintf(sh.why, sizeof(sh.why), "pincerd refused the "
		    "terminal (HTTP %u)", status);
		break;
	default:
		snprintf(sh.why, sizeof(sh.why), "pincerd could not open the "
		    "terminal (HTTP %u)", status);
		break;
	}
	sh.rc = 1;
	sh.done = true;
}

/* After the exit frame, the shell's code; else why it ended. */
static void
shell_closed(void)
{
	int	 sig;

	pthread_mutex_lock(&sh.lock);
	sig = sh.quit_sig;
	pthread_mutex_unlock(&sh.lock);
	if (sh.exit_code >= 0) {
		sh.rc = sh.exit_code;
		sh.why[0] = '\0';
	} else if (sig == 0) {
		sh.rc = 1;
		if (sh.why[0] == '\0')
			snprintf(sh.why, sizeof(sh.why), "the connection to "
			    "pincerd was lost");
	}
	sh.done = true;
}

/* The size of the local terminal; 80x24 without one. */
static void
shell_size(int *cols, int *rows)
{
	struct winsize	 ws;

	*cols = 80;
	*rows = 24;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 &&
	    ws.ws_row > 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row;
	}
}

static void
shell_restore(void)
{
	if (sh.raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &sh.saved);
		sh.raw = false;
	}
}

/* Blocking reads, so any stdin works: a tty, a pipe, a file. */
static void *
shell_stdin(void *arg)
{
	unsigned char	 b[CHUNK];
	size_t		 room;
	ssize_t		 n;

	for (;;) {
		pthread_mutex_lock(&sh.lock);
		while (sh.in_len == IN_MAX)
			pthread_cond_wait(&sh.room, &sh.lock);
		room = IN_MAX - sh.in_len;
		pthread_mutex_unlock(&sh.lock);
		n = read(STDIN_FILENO, b, room < sizeof(b) ? room : sizeof(b));
		if (n == -1 && errno == EINTR)
			continue;
		pthread_mutex_lock(&sh.lock);
		if (n > 0) {
			memcpy(sh.in + sh.in_len, b, (size_t)n);
			sh.in_len += (size_t)n;
		} else
			sh.in_eof = true;
		if (!sh.ctx_gone)
			lws_cancel_service(sh.ctx);
		pthread_mutex_unlock(&sh.lock);
		if (n <= 0)
			return NULL;
	}
}

static void *
shell_signals(void *arg)
{
	sigset_t	 set;
	int		 sig;

	shell_sigset(&set);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		pthread_mutex_lock(&sh.lock);
		if (sig == SIGWINCH)
			sh.resize = true;
		else
			sh.quit_sig = sig;
		if (!sh.ctx_gone)
			lws_cancel_service(sh.ctx);
		pthread_mutex_unlock(&sh.lock);
	}
	return NULL;
}

static void
shell_log(int level, const char *line)
{
	if (!sh.raw)
		fprintf(stderr, "pincer: libwebsockets: %s", line);
}
