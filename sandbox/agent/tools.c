/* SPDX-License-Identifier: MIT */
/*
 * tools.c: what the agent can do in its sandbox: run a shell command,
 * read, write and edit files, list a folder. Each tool returns a text
 * for the model, also when it fails (the model reads why and tries
 * something else). Text that came from outside the agent (a file, a
 * command's output) is wrapped as untrusted content: the system prompt
 * says it is data, never instructions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define OUT_MAX		(32 * 1024)	/* a command's output kept */
#define READ_MAX	(64 * 1024)	/* a file read */
#define EDIT_MAX	(8L << 20)	/* a file edited */
#define LIST_MAX	500
#define ATTACH_MAX	(25L << 20)

static bool	 t_exec(const struct agent *, json_t *, struct buf *);
static bool	 t_read(const struct agent *, json_t *, struct buf *);
static bool	 t_write(const struct agent *, json_t *, struct buf *);
static bool	 t_edit(const struct agent *, json_t *, struct buf *);
static bool	 t_list(const struct agent *, json_t *, struct buf *);
static bool	 t_mwrite(const struct agent *, json_t *, struct buf *);
static bool	 t_msearch(const struct agent *, json_t *, struct buf *);
static bool	 t_attach(const struct agent *, json_t *, struct buf *);
static void	 resolve(const struct agent *, const char *, char *, size_t);
#define untrusted tools_untrusted
static int	 write_atomic(const char *, const char *, size_t, char *,
		    size_t);
static int	 mkdirs(const char *, char *, size_t);

static const struct {
	const char	*name;
	bool		(*fn)(const struct agent *, json_t *, struct buf *);
	const char	*description;
	const char	*schema;
} tools[] = {
	{ "exec", t_exec, "Run a shell command (/bin/sh -c) in the "
	  "workspace folder. Standard output and error are returned together "
	  "(the first 32 KiB), with the exit code. Killed after the tool "
	  "timeout.",
	  "{\"type\":\"object\",\"properties\":{\"command\":{\"type\":"
	  "\"string\",\"description\":\"the shell command\"}},"
	  "\"required\":[\"command\"]}" },
	{ "read_file", t_read, "Read a text file (the first 64 KiB). A "
	  "relative path is inside the workspace folder.",
	  "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":"
	  "\"string\"}},\"required\":[\"path\"]}" },
	{ "write_file", t_write, "Create or replace a file with the given "
	  "content; missing folders are made.",
	  "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":"
	  "\"string\"},\"content\":{\"type\":\"string\"}},"
	  "\"required\":[\"path\",\"content\"]}" },
	{ "edit_file", t_edit, "Replace one exact occurrence of old_text by "
	  "new_text in a file. Fails if old_text is not found or is found "
	  "more than once (then include more surrounding text).",
	  "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":"
	  "\"string\"},\"old_text\":{\"type\":\"string\"},\"new_text\":"
	  "{\"type\":\"string\"}},\"required\":[\"path\",\"old_text\","
	  "\"new_text\"]}" },
	{ "list_dir", t_list, "List a folder: sub-folders end in '/', files "
	  "show their size. Default: the workspace folder.",
	  "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":"
	  "\"string\"}}}" },
	{ "memory_write", t_mwrite, "Write down something to remember: by "
	  "default a note in today's file (memory/YYYY-MM-DD.md); with where "
	  "\"long_term\", in MEMORY.md, which you are given at every turn.",
	  "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":"
	  "\"string\"},\"where\":{\"type\":\"string\",\"enum\":"
	  "[\"daily\",\"long_term\"]}},\"required\":[\"text\"]}" },
	{ "memory_search", t_msearch, "Search every memory file (MEMORY.md, "
	  "the daily notes, USER.md, SOUL.md, AGENTS.md) for paragraphs "
	  "about the query, best first.",
	  "{\"type\":\"object\",\"properties\":{\"query\":{\"type\":"
	  "\"string\"},\"limit\":{\"type\":\"integer\",\"minimum\":1,"
	  "\"maximum\":20}},\"required\":[\"query\"]}" },
	{ "send_attachment", t_attach, "Send a file from the sandbox with "
	  "your reply (a picture, a document, an archive; up to 25 MB).",
	  "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":"
	  "\"string\"},\"caption\":{\"type\":\"string\"}},"
	  "\"required\":[\"path\"]}" },
	{ "web_fetch", fetch_url, "Fetch a web page or file by URL (http or "
	  "https), through the owner's egress proxy. The file is saved in "
	  "the workspace (downloads/); text comes back (HTML as its text, the "
	  "first 64 KiB), other files are described.",
	  "{\"type\":\"object\",\"properties\":{\"url\":{\"type\":"
	  "\"string\"}},\"required\":[\"url\"]}" },
	/* browser.c: a real Chromium, the sandbox's own context. */
	{ "browser_navigate", browser_navigate, "Open a URL in your browser "
	  "tab (one is opened if needed) and wait for it to load. Then read "
	  "it with browser_snapshot.",
	  "{\"type\":\"object\",\"properties\":{\"url\":{\"type\":"
	  "\"string\"}},\"required\":[\"url\"]}" },
	{ "browser_snapshot", browser_snapshot, "The page in your tab as a "
	  "compact outline of what is on it; every link, button and field "
	  "has a [ref=N] to use with browser_click and browser_type.",
	  "{\"type\":\"object\",\"properties\":{}}" },
	{ "browser_click", browser_click, "Click the element with this ref "
	  "(from the last browser_snapshot); waits for a page it opens.",
	  "{\"type\":\"object\",\"properties\":{\"ref\":{\"type\":"
	  "\"string\"}},\"required\":[\"ref\"]}" },
	{ "browser_type", browser_type, "Type text into the field with this "
	  "ref; with submit, press Enter after.",
	  "{\"type\":\"object\",\"properties\":{\"ref\":{\"type\":"
	  "\"string\"},\"text\":{\"type\":\"string\"},\"submit\":"
	  "{\"type\":\"boolean\"}},\"required\":[\"ref\",\"text\"]}" },
	{ "browser_screenshot", browser_screenshot, "Save a PNG of your tab "
	  "in the workspace (default screenshots/shot-TIME.png); send it "
	  "with send_attachment.",
	  "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":"
	  "\"string\"}}}" },
	{ "browser_evaluate", browser_evaluate, "Run a JavaScript expression "
	  "in the page and return its value (as JSON).",
	  "{\"type\":\"object\",\"properties\":{\"expression\":"
	  "{\"type\":\"string\"}},\"required\":[\"expression\"]}" },
	{ "browser_tabs", browser_tabs, "List your tabs (the default), or "
	  "select one by id, open a new one (url), or close one (id).",
	  "{\"type\":\"object\",\"properties\":{\"action\":{\"type\":"
	  "\"string\",\"enum\":[\"list\",\"select\",\"new\",\"close\"]},"
	  "\"id\":{\"type\":\"string\"},\"url\":{\"type\":\"string\"}}}" },
};

json_t *
tools_schema(void)
{
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
		json_array_append_new(a, json_pack("{s:s, s:{s:s, s:s, s:o}}",
		    "type", "function", "function", "name", tools[i].name,
		    "description", tools[i].description, "parameters",
		    json_loads(tools[i].schema, 0, NULL)));
	return a;
}

bool
tools_run(const struct agent *ag, const char *name, json_t *args,
    char **result)
{
	struct buf	 out;
	size_t		 i;
	bool		 ok = false;

	buf_init(&out, (size_t)1 << 30);
	for (i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
		if (!strcmp(tools[i].name, name))
			break;
	if (i == sizeof(tools) / sizeof(tools[0]))
		buf_printf(&out, "error: there is no tool \"%s\"", name);
	else if (!json_is_object(args))
		buf_printf(&out, "error: the arguments of %s must be a JSON "
		    "object", name);
	else
		ok = tools[i].fn(ag, args, &out);
	if (out.data != NULL)
		text_fix(out.data, out.len);
	*result = strdup(out.data != NULL ? out.data : "");
	buf_free(&out);
	return ok;
}

/* A string argument, or NULL (with the error written) if missing. */
static const char *
arg(json_t *args, const char *key, struct buf *out)
{
	const char	*v = json_string_value(json_object_get(args, key));

	if (v == NULL)
		buf_printf(out, "error: \"%s\" (a string) is required", key);
	return v;
}

static bool
t_exec(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*cmd = arg(args, "command", out);
	int		 p[2], st = 0, dropped = 0;
	pid_t		 pid;
	struct buf	 text;
	char		 chunk[4096];
	time_t		 end = time(NULL) + ag->tool_timeout_s;
	bool		 timed_out = false;
	ssize_t		 r;

	if (cmd == NULL)
		return false;
	if (pipe2(p, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		buf_printf(out, "error: cannot start the command: %s",
		    strerror(errno));
		return false;
	}
	if (pid == 0) {
		int	 devnull = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		if (chdir(ag->work_dir) == -1 && chdir("/") == -1)
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	buf_init(&text, OUT_MAX);
	for (;;) {
		struct pollfd	 pf = { .fd = p[0], .events = POLLIN };
		long		 left = (long)(end - time(NULL));

		if (left <= 0 || poll(&pf, 1, (int)left * 1000) == 0) {
			timed_out = true;
			break;
		}
		if ((r = read(p[0], chunk, sizeof(chunk))) == -1 &&
		    errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (buf_append(&text, chunk, (size_t)r) == -1)
			dropped += (int)r;
	}
	/* The whole group: a command's children die with it. */
	if (timed_out)
		kill(-pid, SIGKILL);
	close(p[0]);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (timed_out)
		buf_printf(out, "error: the command was killed after %d s (the "
		    "tool timeout)\n", ag->tool_timeout_s);
	else if (WIFEXITED(st))
		buf_printf(out, "exit code %d\n", WEXITSTATUS(st));
	else
		buf_printf(out, "killed by signal %d\n", WTERMSIG(st));
	untrusted(out, "command output", text.data != NULL ? text.data : "",
	    text.len);
	if (dropped > 0)
		buf_printf(out, "\n[output truncated: %d more bytes]", dropped);
	buf_free(&text);
	return !timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static bool
t_read(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*path = arg(args, "path", out);
	char		 full[PATH_MAX], why[PATH_MAX + 128];
	char		 src[PATH_MAX + 8];
	struct buf	 text;
	struct stat	 sb;
	bool		 ok = false;

	if (path == NULL)
		return false;
	resolve(ag, path, full, sizeof(full));
	buf_init(&text, READ_MAX);
	if (stat(full, &sb) == 0 && S_ISDIR(sb.st_mode))
		buf_printf(out, "error: %s is a folder (use list_dir)", path);
	else if (agent_slurp(full, READ_MAX, &text, why, sizeof(why)) == -1)
		buf_printf(out, "error: %s", why);
	else if (text.len > 0 && memchr(text.data, '\0', text.len) != NULL)
		buf_printf(out, "error: %s is a binary file (%lld bytes)",
		    path, (long long)sb.st_size);
	else {
		snprintf(src, sizeof(src), "file %s", full);
		untrusted(out, src, text.data != NULL ? text.data : "",
		    text.len);
		if (sb.st_size > READ_MAX)
			buf_printf(out, "\n[truncated: the file has %lld "
			    "bytes; these are the first %d]",
			    (long long)sb.st_size, READ_MAX);
		ok = true;
	}
	buf_free(&text);
	return ok;
}

static bool
t_write(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*path = arg(args, "path", out), *content;
	char		 full[PATH_MAX], why[PATH_MAX + 128];

	if (path == NULL || (content = arg(args, "content", out)) == NULL)
		return false;
	resolve(ag, path, full, sizeof(full));
	if (write_atomic(full, content, strlen(content), why,
	    sizeof(why)) == -1) {
		buf_printf(out, "error: %s", why);
		return false;
	}
	buf_printf(out, "wrote %zu bytes to %s", strlen(content), full);
	return true;
}

/* Occurrences of needle in hay (non-overlapping), the first at *at. */
static size_t
count(const char *hay, size_t n, const char *needle, size_t m,
    size_t *at)
{
	size_t		 k = 0, off = 0;
	const char	*p;

	while (off + m <= n && (p = memmem(hay + off, n - off, needle,
	    m)) != NULL) {
		if (k++ == 0)
			*at = (size_t)(p - hay);
		off = (size_t)(p - hay) + m;
	}
	return k;
}

static bool
t_edit(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*path = arg(args, "path", out), *old, *new;
	char		 full[PATH_MAX], why[PATH_MAX + 128];
	struct buf	 text, res;
	size_t		 k, at = 0, m;
	bool		 ok = false;

	if (path == NULL || (old = arg(args, "old_text", out)) == NULL ||
	    (new = arg(args, "new_text", out)) == NULL)
		return false;
	if ((m = strlen(old)) == 0) {
		buf_printf(out, "error: old_text is empty");
		return false;
	}
	resolve(ag, path, full, sizeof(full));
	buf_init(&text, EDIT_MAX);
	buf_init(&res, (size_t)EDIT_MAX * 2);
	if (agent_slurp(full, EDIT_MAX, &text, why, sizeof(why)) == -1)
		buf_printf(out, "error: %s", why);
	else if ((k = count(text.data ? text.data : "", text.len, old, m,
	    &at)) == 0)
		buf_printf(out, "error: old_text was not found in %s (it must "
		    "match exactly, spaces and line ends included)", path);
	else if (k > 1)
		buf_printf(out, "error: old_text occurs %zu times in %s; "
		    "include more of the surrounding text so that it occurs "
		    "once", k, path);
	else if (buf_append(&res, text.data, at) == -1 ||
	    buf_puts(&res, new) == -1 || buf_append(&res, text.data + at + m,
	    text.len - at - m) == -1 || write_atomic(full, res.data ?
	    res.data : "", res.len, why, sizeof(why)) == -1)
		buf_printf(out, "error: %s", res.len ? why : "out of memory");
	else {
		buf_printf(out, "replaced 1 occurrence in %s", full);
		ok = true;
	}
	buf_free(&text);
	buf_free(&res);
	return ok;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
t_list(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*path = json_string_value(json_object_get(args,
			    "path"));
	char		 full[PATH_MAX], sub[PATH_MAX * 2], **names = NULL;
	DIR		*d;
	struct dirent	*e;
	struct stat	 sb;
	size_t		 n = 0, i, more = 0;

	resolve(ag, path != NULL ? path : ".", full, sizeof(full));
	if ((d = opendir(full)) == NULL) {
		buf_printf(out, "error: %s: %s", full, strerror(errno));
		return false;
	}
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == LIST_MAX) {
			more++;
			continue;
		}
		if ((n % 64) == 0) {
			char	**nn = realloc(names, (n + 64) *
			    sizeof(*names));

			if (nn == NULL)
				break;
			names = nn;
		}
		if ((names[n] = strdup(e->d_name)) != NULL)
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), by_name);
	buf_printf(out, "%s:\n", full);
	for (i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", full, names[i]);
		if (lstat(sub, &sb) == -1)
			buf_printf(out, "%s\n", names[i]);
		else if (S_ISDIR(sb.st_mode))
			buf_printf(out, "%s/\n", names[i]);
		else if (S_ISLNK(sb.st_mode))
			buf_printf(out, "%s@\n", names[i]);
		else
			buf_printf(out, "%s  (%lld bytes)\n", names[i],
			    (long long)sb.st_size);
		free(names[i]);
	}
	if (n == 0)
		buf_puts(out, "(empty)\n");
	if (more > 0)
		buf_printf(out, "[%zu more entries not shown]\n", more);
	free(names);
	return true;
}

static bool
t_mwrite(const struct agent *ag, json_t *args, struct buf *out)
{
	return memory_write(ag, args, out);
}

static bool
t_msearch(const struct agent *ag, json_t *args, struct buf *out)
{
	return memory_search(ag, args, out);
}

/* The file goes with the reply: an attachment event names it; the
 * channel reads it from the sandbox when it sends the reply. */
static bool
t_attach(const struct agent *ag, json_t *args, struct buf *out)
{
	const char	*path = arg(args, "path", out);
	const char	*cap = json_string_value(json_object_get(args,
			    "caption"));
	const char	*name;
	char		 full[PATH_MAX];
	struct stat	 sb;

	if (path == NULL)
		return false;
	resolve(ag, path, full, sizeof(full));
	if (stat(full, &sb) == -1) {
		buf_printf(out, "error: %s: %s", full, strerror(errno));
		return false;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > ATTACH_MAX) {
		buf_printf(out, "error: %s is not a file of at most 25 MB",
		    full);
		return false;
	}
	name = strrchr(full, '/') + 1;
	emit("attachment", json_pack("{s:s, s:s, s:I, s:s}", "path", full,
	    "name", name, "size", (json_int_t)sb.st_size, "caption",
	    cap != NULL ? cap : ""));
	buf_printf(out, "%s (%lld bytes) will be sent with your reply", name,
	    (long long)sb.st_size);
	return true;
}

/* Relative paths are inside the workspace; the sandbox is the fence. */
static void
resolve(const struct agent *ag, const char *path, char *out, size_t outsz)
{
	if (*path == '/')
		snprintf(out, outsz, "%s", path);
	else
		snprintf(out, outsz, "%s/%s", ag->work_dir, path);
}

/*
 * The wrapper the system prompt describes. A closing tag inside the
 * content is broken up so the content cannot end its own wrapper.
 */
void
tools_untrusted(struct buf *out, const char *source, const char *p, size_t n)
{
	static const char	 end[] = "</untrusted-content";
	const char		*q;

	buf_printf(out, "<untrusted-content source=\"%s\">\n", source);
	while (n > 0 && (q = memmem(p, n, end, sizeof(end) - 1)) != NULL) {
		buf_append(out, p, (size_t)(q - p));
		buf_puts(out, "<\\/untrusted-content");
		n -= (size_t)(q - p) + sizeof(end) - 1;
		p = q + sizeof(end) - 1;
	}
	buf_append(out, p, n);
	buf_puts(out, "\n</untrusted-content>");
}

/* Up to max bytes of a file. */
int
agent_slurp(const char *path, long max, struct buf *b, char *why, size_t whysz)
{
	char	 chunk[8192];
	ssize_t	 r;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(why, whysz, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((long)b->len < max && (r = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(b, chunk, (size_t)r < (size_t)max - b->len ?
		    (size_t)r : (size_t)max - b->len) == -1)
			break;
	close(fd);
	return 0;
}

/* Temporary file, then rename: a crash leaves the old file or the new. */
static int
write_atomic(const char *path, const char *p, size_t n, char *why,
    size_t whysz)
{
	char	 tmp[PATH_MAX + 32];
	ssize_t	 w;
	int	 fd, rc;

	if (mkdirs(path, why, whysz) == -1)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.pincer-tmp.%d", path, (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1) {
		snprintf(why, whysz, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (n > 0 && (w = write(fd, p, n)) > 0) {
		p += w;
		n -= (size_t)w;
	}
	rc = n > 0 || fsync(fd) == -1 ? -1 : 0;
	if (close(fd) == -1 || (rc == 0 && rename(tmp, path) == -1))
		rc = -1;
	if (rc == -1) {
		snprintf(why, whysz, "%s: %s", path, strerror(errno));
		unlink(tmp);
	}
	return rc;
}

/* The folders above path. */
static int
mkdirs(const char *path, char *why, size_t whysz)
{
	char	 d[PATH_MAX], *s;

	snprintf(d, sizeof(d), "%s", path);
	for (s = d + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(d, 0755) == -1 && errno != EEXIST) {
			snprintf(why, whysz, "%s: %s", d, strerror(errno));
			return -1;
		}
		*s = '/';
	}
	return 0;
}
