/* SPDX-License-Identifier: MIT */
/*
 * fetch.c: the web_fetch tool. The sandbox's own curl fetches the URL
 * through the owner's egress proxy (it finds the proxy in the sandbox's
 * environment, as any program there does); the body is saved in the
 * workspace's downloads/ folder and, when it is text, given to the model
 * as untrusted content (HTML reduced to its text). What went wrong is
 * said in words the model can act on: the owner's policy, a timeout, a
 * size, the site's own answer.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define CURL_PATH	"/usr/bin/curl"
#define URL_MAX		(8 * 1024)
#define FILE_MAX	(50L << 20)	/* a download kept */
#define HEAD_MAX	(2L << 20)	/* of it read for the text */
#define TEXT_MAX	(64 * 1024)	/* text given to the model */
#define INFO_MAX	(64 * 1024)	/* curl's -w JSON */
#define SAVE_NAME_MAX	64	/* a saved file's name */

extern char **environ;

/* One download: what came, what curl said about it. */
struct dl {
	struct buf	 head;		/* the body's first HEAD_MAX bytes */
	struct buf	 info;		/* curl's -w '%{json}' */
	long long	 size;		/* the body's bytes */
	bool		 too_big;	/* over FILE_MAX: stopped */
	bool		 timed_out;	/* curl outlived its own limit */
	const char	*werr;		/* the file could not be written */
};

static int	 url_clean(const char *, struct buf *, struct buf *);
static int	 open_target(const struct agent *, const char *, char *,
		    size_t, struct buf *);
static int	 curl_run(int, const char *, int, struct dl *, struct buf *);
static void	 pump(pid_t, int, int, int, long, struct dl *);
static bool	 report(json_t *, struct dl *, const char *, int,
		    struct buf *);
static bool	 failed(json_t *, const struct dl *, const char *, int,
		    struct buf *);
static bool	 proxy_refused(const struct dl *, long, struct buf *);
static void	 body_text(const struct dl *, const char *, const char *,
		    const char *, struct buf *);
static bool	 text_type(const char *);
static void	 put_safe(struct buf *, const char *, size_t);

bool
fetch_url(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*raw = json_string_value(json_object_get(args, "url"));
	struct buf	 url;
	struct dl	 d = { .size = 0 };
	json_t		*info = NULL;
	char		 path[PATH_MAX];
	int		 fd = -1, secs = ag->tool_timeout_s > 0 ?
			    ag->tool_timeout_s : 60;
	bool		 ok = false;

	if (raw == NULL) {
		buf_printf(out, "error: \"url\" (a string) is required");
		return false;
	}
	buf_init(&url, URL_MAX * 3 + 1);
	buf_init(&d.head, HEAD_MAX);
	buf_init(&d.info, INFO_MAX);
	if (url_clean(raw, &url, out) == -1 ||
	    (fd = open_target(ag, url.data, path, sizeof(path), out)) == -1)
		goto done;
	if (curl_run(secs, url.data, fd, &d, out) == 0) {
		info = json_loadb(d.info.data != NULL ? d.info.data : "",
		    d.info.len, 0, NULL);
		ok = report(info, &d, path, secs, out);
	}
	/* Only a whole, successful download is kept. */
	if (!ok)
		unlink(path);
done:
	if (fd != -1)
		close(fd);
	json_decref(info);
	buf_free(&url);
	buf_free(&d.head);
	buf_free(&d.info);
	return ok;
}

/*
 * The URL curl is given. Only http(s): curl speaks many protocols
 * (file://, ftp://, gopher://…) and --proto holds it to these two, on
 * redirects too. Characters a URL may not hold raw (spaces, quotes,
 * angle brackets, controls; non-ASCII after the host) are
 * percent-encoded rather than refused: models write URLs with spaces.
 */
static int
url_clean(const char *raw, struct buf *url, struct buf *out)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*s = (const unsigned char *)raw;
	const char		*auth;
	bool			 in_path = false;
	size_t			 i;

	if (strncasecmp(raw, "http://", 7) != 0 &&
	    strncasecmp(raw, "https://", 8) != 0) {
		buf_printf(out, "error: only http:// and https:// URLs can be "
		    "fetched");
		return -1;
	}
	if (strlen(raw) > URL_MAX) {
		buf_printf(out, "error: the URL is longer than %d bytes",
		    URL_MAX);
		return -1;
	}
	auth = strstr(raw, "://") + 3;
	for (i = 0; s[i] != '\0'; i++) {
		if ((const char *)s + i >= auth && strchr("/?#", s[i]))
			in_path = true;
		if (s[i] <= 0x20 || s[i] == 0x7f || strchr("\"<>\\^`{|}",
		    s[i]) != NULL || (s[i] >= 0x80 && in_path)) {
			char	 e[3] = { '%', hex[s[i] >> 4], hex[s[i] & 15] };

			buf_append(url, e, 3);
		} else
			buf_append(url, s + i, 1);
	}
	if (*auth == '\0' || strchr("/?#", *auth) != NULL) {
		buf_printf(out, "error: the URL has no host");
		return -1;
	}
	return 0;
}

/*
 * downloads/NAME in the workspace, NAME from the URL's last path
 * segment (letters, digits, '.', '-', '_' only; "index" when there is
 * none), made unique with -2, -3… before its extension. O_EXCL: an
 * earlier download is never overwritten.
 */
static int
open_target(const struct agent *ag, const char *url, char *path,
    size_t pathsz, struct buf *out)
{
	char		 name[SAVE_NAME_MAX + 1], dir[PATH_MAX];
	const char	*p = strstr(url, "://") + 3, *seg, *dot;
	size_t		 n = 0, base;
	int		 fd = -1, k, w;

	p += strcspn(p, "/?#");
	for (seg = p; *p != '\0' && *p != '?' && *p != '#'; p++)
		if (*p == '/')
			seg = p + 1;
	for (; seg < p && n < SAVE_NAME_MAX; seg++)
		if (n > 0 || *seg != '.')
			name[n++] = strchr("._-", *seg) != NULL ||
			    (*seg >= 'a' && *seg <= 'z') ||
			    (*seg >= 'A' && *seg <= 'Z') ||
			    (*seg >= '0' && *seg <= '9') ? *seg : '_';
	name[n] = '\0';
	if (n == 0)
		snprintf(name, sizeof(name), "index");
	snprintf(dir, sizeof(dir), "%s/downloads", ag->work_dir);
	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		buf_printf(out, "error: %s: %s", dir, strerror(errno));
		return -1;
	}
	dot = strrchr(name, '.');
	base = dot != NULL && dot != name ? (size_t)(dot - name) : n;
	for (k = 1; k < 1000; k++) {
		if (k == 1)
			w = snprintf(path, pathsz, "%s/%s", dir, name);
		else
			w = snprintf(path, pathsz, "%s/%.*s-%d%s", dir,
			    (int)base, name, k, name + base);
		if (w < 0 || (size_t)w >= pathsz) {
			errno = ENAMETOOLONG;
			fd = -1;
			break;
		}
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644)) != -1 || errno != EEXIST)
			break;
	}
	if (fd == -1)
		buf_printf(out, "error: %s: %s", path, strerror(errno));
	return fd;
}

/*
 * curl with an argv (never a shell: the URL comes from the model). -q
 * first: a .curlrc in the sandbox must not change what runs. -g: no
 * globbing of [] and {}. The body comes on a pipe so that its size is
 * ours to cap (curl 7.88's --max-filesize only sees a Content-Length);
 * %{stderr} sends the -w JSON to the other pipe, errors included (-s
 * prints nothing else there).
 */
static int
curl_run(int secs, const char *url, int fd, struct dl *d, struct buf *out)
{
	const char	*curl = getenv("PINCER_AGENT_CURL");
	char		 maxtime[24], conn[24], maxsize[24];
	char *const	 argv[] = { "curl", "-q", "-s", "-g", "-L",
		"--max-redirs", "5", "--proto", "=http,https", "--proto-redir",
		"=http,https", "--connect-timeout", conn, "--max-time", maxtime,
		"--max-filesize", maxsize, "-w", "%{stderr}%{json}", "-o", "-",
		"--url", (char *)url, NULL };
	posix_spawn_file_actions_t fa;
	int		 po[2] = { -1, -1 }, pe[2] = { -1, -1 }, err, i;
	pid_t		 pid;

	if (curl == NULL || *curl == '\0')
		curl = CURL_PATH;
	if (access(curl, X_OK) == -1) {
		buf_printf(out, "error: curl is not installed in the sandbox "
		    "(%s: %s); web_fetch needs it. Nothing was fetched.", curl,
		    strerror(errno));
		return -1;
	}
	snprintf(maxtime, sizeof(maxtime), "%d", secs);
	snprintf(conn, sizeof(conn), "%d", secs < 15 ? secs : 15);
	snprintf(maxsize, sizeof(maxsize), "%ld", FILE_MAX);
	if (pipe2(po, O_CLOEXEC) == -1 || pipe2(pe, O_CLOEXEC) == -1) {
		buf_printf(out, "error: cannot start curl: %s",
		    strerror(errno));
		err = -1;
		goto done;
	}
	/* Only the three standard descriptors reach curl. */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	err = posix_spawn(&pid, curl, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	if (err != 0) {
		buf_printf(out, "error: cannot run %s: %s", curl,
		    strerror(err));
		err = -1;
		goto done;
	}
	/* A little past curl's own limit: curl says why it stopped. */
	pump(pid, po[0], pe[0], fd, secs + 10, d);
done:
	for (i = 0; i < 2; i++) {
		if (po[i] != -1)
			close(po[i]);
		if (pe[i] != -1)
			close(pe[i]);
	}
	return err;
}

/* The body into the file (and its head kept), curl's JSON kept, until
 * both pipes end, the size cap or the deadline; then curl is reaped. */
static void
pump(pid_t pid, int body, int info, int fd, long secs, struct dl *d)
{
	struct pollfd	 pf[2] = { { .fd = body, .events = POLLIN },
			    { .fd = info, .events = POLLIN } };
	time_t		 end = time(NULL) + secs;
	char		 chunk[16384];
	size_t		 room;
	ssize_t		 r, w, k;
	int		 st, i;

	while ((pf[0].fd != -1 || pf[1].fd != -1) && !d->too_big &&
	    d->werr == NULL) {
		long	 left = (long)(end - time(NULL));
		int	 ready = left > 0 ? poll(pf, 2, (int)left * 1000) : 0;

		if (ready == -1 && errno == EINTR)
			continue;
		if (ready <= 0) {
			d->timed_out = true;
			break;
		}
		for (i = 0; i < 2; i++) {
			if (pf[i].fd == -1 || pf[i].revents == 0)
				continue;
			if ((r = read(pf[i].fd, chunk, sizeof(chunk))) == -1 &&
			    errno == EINTR)
				continue;
			if (r <= 0) {
				pf[i].fd = -1;
				continue;
			}
			if (i == 1) {
				buf_append(&d->info, chunk, (size_t)r);
				continue;
			}
			if ((d->size += r) > FILE_MAX) {
				d->too_big = true;
				break;
			}
			room = d->head.max - d->head.len;
			buf_append(&d->head, chunk, (size_t)r < room ?
			    (size_t)r : room);
			for (w = 0; w < r && d->werr == NULL; w += k)
				if ((k = write(fd, chunk + w, (size_t)(r - w)))
				    == -1 && errno != EINTR)
					d->werr = strerror(errno);
				else if (k == -1)
					k = 0;
		}
	}
	if (d->timed_out || d->too_big || d->werr != NULL)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
}

/* What the model is told: a failure, the proxy's refusal, or the
 * answer (kept when it is a 2xx). */
static bool
report(json_t *info, struct dl *d, const char *path, int secs,
    struct buf *out)
{
	json_int_t	 code = json_integer_value(json_object_get(info,
			    "http_code"));
	const char	*ctype = json_string_value(json_object_get(info,
			    "content_type"));
	const char	*where = json_string_value(json_object_get(info,
			    "url_effective"));
	json_int_t	 redirs = json_integer_value(json_object_get(info,
			    "num_redirects"));

	if (failed(info, d, path, secs, out) ||
	    proxy_refused(d, (long)code, out))
		return false;
	buf_printf(out, "HTTP %lld, ", (long long)code);
	put_safe(out, ctype != NULL ? ctype : "no content type", 100);
	buf_printf(out, ", %lld bytes, from ", d->size);
	put_safe(out, where != NULL ? where : "", 2048);
	if (redirs > 0)
		buf_printf(out, " (after %lld redirect%s)", (long long)redirs,
		    redirs > 1 ? "s" : "");
	if (code < 200 || code > 299) {
		buf_printf(out, "\nerror: the site answered HTTP %lld; its "
		    "answer was not kept. What it said:\n", (long long)code);
		body_text(d, ctype, where, NULL, out);
		return false;
	}
	buf_printf(out, "\nsaved to %s\n", path);
	body_text(d, ctype, where, path, out);
	return true;
}

/*
 * A transfer that did not end with an answer, said so (true). curl's
 * exit codes (curl(1) "EXIT CODES"); over HTTPS, the proxy's answer to
 * the CONNECT (README "Egress": 403 by policy, 502 for a name or host
 * that failed).
 */
static bool
failed(json_t *info, const struct dl *d, const char *path, int secs,
    struct buf *out)
{
	json_int_t	 ex = json_integer_value(json_object_get(info,
			    "exitcode"));
	json_int_t	 conn = json_integer_value(json_object_get(info,
			    "http_connect"));
	const char	*emsg = json_string_value(json_object_get(info,
			    "errormsg"));

	if (emsg == NULL)
		emsg = "";
	if (d->too_big || ex == 63) {
		buf_printf(out, "error: the file is larger than %ld MiB, the "
		    "most web_fetch downloads; nothing was kept",
		    FILE_MAX >> 20);
		return true;
	}
	if (d->werr != NULL) {
		buf_printf(out, "error: cannot write %s: %s", path, d->werr);
		return true;
	}
	if (d->timed_out || ex == 28) {
		buf_printf(out, "error: the fetch timed out (the tool timeout "
		    "is %d s)%s", secs, *emsg ? ": " : "");
		put_safe(out, emsg, 300);
		return true;
	}
	if (info == NULL) {
		buf_printf(out, "error: curl ended without saying how the "
		    "fetch went");
		return true;
	}
	/* HTTPS: the proxy refused the CONNECT; curl keeps its body. */
	if (conn == 403) {
		buf_printf(out, "error: the egress proxy refused the "
		    "connection (HTTP 403): the owner's egress policy does not "
		    "allow this host. Nothing was fetched; ask the owner if "
		    "the task needs it.");
		return true;
	}
	if (conn >= 300) {
		buf_printf(out, "error: the egress proxy could not connect to "
		    "the host (HTTP %lld): %s", (long long)conn, conn == 502 ?
		    "the name does not resolve or the host does not answer" :
		    "it is busy or refused the request");
		return true;
	}
	if (ex != 0) {
		buf_printf(out, "error: the fetch failed: ");
		put_safe(out, emsg, 300);
		buf_printf(out, " (curl exit code %lld)", (long long)ex);
		return true;
	}
	return false;
}

/*
 * A plain-HTTP request the proxy answered itself: its JSON error
 * (README "Egress"). A site could send the same body; it would only
 * mislead about itself.
 */
static bool
proxy_refused(const struct dl *d, long code, struct buf *out)
{
	json_t		*o, *e;
	const char	*c, *msg, *pol;

	if (code != 403 && code != 502 && code != 503 && code != 400)
		return false;
	o = json_loadb(d->head.data != NULL ? d->head.data : "", d->head.len,
	    0, NULL);
	e = json_object_get(o, "error");
	c = json_string_value(json_object_get(e, "code"));
	msg = json_string_value(json_object_get(e, "message"));
	pol = json_string_value(json_object_get(e, "policy"));
	if (c == NULL || strncmp(c, "egress_", 7) != 0) {
		json_decref(o);
		return false;
	}
	if (!strcmp(c, "egress_denied"))
		buf_printf(out, "error: the owner's egress policy does not "
		    "allow this request (the egress proxy answered HTTP 403");
	else
		buf_printf(out, "error: the egress proxy could not complete "
		    "the request (HTTP %ld, %s", code, c);
	if (pol != NULL) {
		buf_puts(out, ", policy \"");
		put_safe(out, pol, 64);
		buf_puts(out, "\"");
	}
	buf_puts(out, "): ");
	put_safe(out, msg != NULL ? msg : "", 500);
	if (!strcmp(c, "egress_denied"))
		buf_puts(out, ". Nothing was fetched; ask the owner if the "
		    "task needs this host.");
	json_decref(o);
	return true;
}

/*
 * The body for the model: text as untrusted content (HTML as its text,
 * cut at TEXT_MAX), anything else described. path: where the whole
 * file is (NULL: not kept).
 */
static void
body_text(const struct dl *d, const char *ctype, const char *where,
    const char *path, struct buf *out)
{
	const char	*h = d->head.data != NULL ? d->head.data : "";
	const char	*cs = ctype != NULL ? strcasestr(ctype, "charset=") :
			    NULL;
	size_t		 sniff = d->head.len < 8192 ? d->head.len : 8192, n;
	struct buf	 t, html, src, *show = &t;
	bool		 latin1;

	if (d->size == 0) {
		buf_puts(out, "(the body is empty)");
		return;
	}
	if (!text_type(ctype) || memchr(h, '\0', sniff) != NULL) {
		buf_puts(out, "(not text");
		if (path != NULL)
			buf_puts(out, ": work with the file by exec, or "
			    "send it with send_attachment");
		buf_puts(out, ")");
		return;
	}
	latin1 = cs != NULL && (!strncasecmp(cs + 8, "iso-8859-1", 10) ||
	    !strncasecmp(cs + 8, "latin1", 6) ||
	    !strncasecmp(cs + 8, "windows-1252", 12));
	buf_init(&t, HEAD_MAX * 2);
	buf_init(&html, HEAD_MAX * 2);
	buf_init(&src, 4096);
	text_utf8(&t, h, d->head.len, latin1);
	if (ctype != NULL && strcasestr(ctype, "html") != NULL) {
		text_html(&html, t.data != NULL ? t.data : "", t.len);
		buf_puts(out, "(HTML, reduced to its text)\n");
		show = &html;
	}
	buf_puts(&src, "web ");
	put_safe(&src, where != NULL ? where : "", 2048);
	n = text_cut(show->data != NULL ? show->data : "", show->len,
	    TEXT_MAX);
	tools_untrusted(out, src.data, show->data != NULL ? show->data : "",
	    n);
	if (n < show->len || d->size > (long long)d->head.len)
		buf_printf(out, "\n[cut: these are the first %zu bytes of the "
		    "text%s%s%s]", n, path != NULL ? "; the whole file is " :
		    "", path != NULL ? path : "", path != NULL ? " (read "
		    "further with exec: sed -n, grep)" : "");
	buf_free(&t);
	buf_free(&html);
	buf_free(&src);
}

/* Text by its media type: text/…, JSON, XML, scripts (RFC 6839's +json
 * and +xml included); none named: the caller looks for NUL bytes. */
static bool
text_type(const char *ct)
{
	static const char *const also[] = { "javascript", "ecmascript",
		"yaml", "x-sh", "toml", "csv", "markdown" };
	char		 t[128];
	const char	*sub;
	size_t		 n, i;

	if (ct == NULL)
		return true;
	if ((n = strcspn(ct, "; \t")) >= sizeof(t))
		return false;
	for (i = 0; i < n; i++)
		t[i] = (char)tolower((unsigned char)ct[i]);
	t[n] = '\0';
	if (!strncmp(t, "text/", 5))
		return true;
	if ((sub = strchr(t, '/')) == NULL)
		return false;
	n = strlen(++sub);
	if ((n >= 4 && !strcmp(sub + n - 4, "json")) ||
	    (n >= 3 && !strcmp(sub + n - 3, "xml")))
		return true;
	for (i = 0; i < sizeof(also) / sizeof(also[0]); i++)
		if (strstr(sub, also[i]) != NULL)
			return true;
	return false;
}

/* Text from the site or the proxy, outside the untrusted wrapper:
 * printable ASCII only, so it cannot pose as the wrapper or a prompt. */
static void
put_safe(struct buf *out, const char *s, size_t max)
{
	size_t	 i;

	for (i = 0; s[i] != '\0' && i < max; i++)
		if (s[i] == '"')
			buf_puts(out, "'");
		else
			buf_append(out, s[i] >= 0x20 && s[i] < 0x7f &&
			    s[i] != '<' && s[i] != '>' ? s + i : "?", 1);
	if (s[i] != '\0')
		buf_puts(out, "…");
}
