/* SPDX-License-Identifier: MIT */
/*
 * cli_sandbox.c: `pincer sandbox list|create|exec|stop|rm` and the
 * snapshot commands, spoken to the running pincerd over its local socket
 * ($state/pincerd.sock, which only the account running pincerd can
 * reach: it needs no token).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "pincer.h"

#define RESP_MAX	(16L << 20)

/* An SSE stream from exec, parsed as it arrives. */
struct sse {
	struct buf	 line;
	char		 event[32];
	int		 exit_code;
	bool		 exited;
};

static int	 call(const char *state, const char *method, const char *path,
		    const char *body, struct buf *out, long *status);
static int	 socket_path(const char *state, char *, size_t, int *);
static size_t	 collect(char *, size_t, size_t, void *);
static size_t	 stream(char *, size_t, size_t, void *);
static void	 sse_line(struct sse *, const char *);
static int	 sandbox_list(const char *);
static int	 sandbox_exec(const char *, int, char **);
static int	 simple(const char *, const char *, const char *,
		    const char *, const char *);
static int	 fail(long, const struct buf *);
static int	 sandbox_sync(const char *, const char *);
static int	 sandbox_snap(const char *, int, char **);
static void	 snap_print(json_t *, const char *);

int
cli_sandbox_cmd(const struct config_overrides *ov, int argc, char **argv)
{
	const char	*sub = argc > 0 ? argv[0] : "";
	struct config	*c;
	char		*err = NULL, path[512];
	int		 rc = CLI_USAGE;
	bool		 by_id = false;	/* argv[1] is a snapshot's id */

	if ((c = config_load(ov, &err)) == NULL) {
		fprintf(stderr, "pincer: the config is not valid:\n%s",
		    err != NULL ? err : "out of memory\n");
		free(err);
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!strcmp(sub, "shell") && argc >= 2)
		rc = cli_shell(c->state_dir, argc - 1, argv + 1);
	else if (!strcmp(sub, "list") && argc == 1)
		rc = sandbox_list(c->state_dir);
	else if (!strcmp(sub, "exec") && argc >= 2)
		rc = sandbox_exec(c->state_dir, argc - 1, argv + 1);
	else if (!strcmp(sub, "create") && argc == 2) {
		snprintf(path, sizeof(path), "{\"name\":\"%s\"}", argv[1]);
		rc = sbx_name_valid(argv[1]) ? simple(c->state_dir, "POST",
		    "/api/v1/sandboxes", path, "started") : CLI_USAGE;
	} else if ((!strcmp(sub, "stop") || !strcmp(sub, "rm")) &&
	    argc == 2 && sbx_name_valid(argv[1])) {
		snprintf(path, sizeof(path), "/api/v1/sandboxes/%s%s", argv[1],
		    !strcmp(sub, "stop") ? "/stop" : "");
		rc = simple(c->state_dir, !strcmp(sub, "stop") ? "POST" :
		    "DELETE", path, NULL, !strcmp(sub, "stop") ? "asleep" :
		    "removed");
	}
	else if (!strcmp(sub, "sync") && argc == 2 && sbx_name_valid(argv[1]))
		rc = sandbox_sync(c->state_dir, argv[1]);
	else if ((by_id = !strcmp(sub, "restore") || !strcmp(sub, "fork") ||
	    !strcmp(sub, "snapshot-rm")) || !strcmp(sub, "snapshot") ||
	    !strcmp(sub, "snapshots"))
		rc = sandbox_snap(c->state_dir, argc, argv);
	if (rc == CLI_USAGE) {
		if (argc >= 2 && !by_id && !sbx_name_valid(argv[1]))
			fprintf(stderr, "pincer sandbox: \"%s\" is not a "
			    "sandbox name (a-z, 0-9, '-', '_', '.')\n", argv[1]);
		else
			fprintf(stderr, "usage: pincer sandbox list | create "
			    "NAME | exec NAME [--cwd DIR] [--timeout-ms N] "
			    "[--env K=V]... -- COMMAND [ARG...]\n"
			    "       pincer sandbox shell NAME [--id ID] | "
			    "stop NAME | rm NAME | sync NAME\n"
			    "       pincer sandbox snapshot NAME | snapshots "
			    "[NAME] | snapshot-rm ID\n"
			    "       pincer sandbox restore ID [NAME] [--new] | "
			    "fork ID NAME...\n");
		rc = 2;
	}
	curl_global_cleanup();
	config_free(c);
	return rc;
}

static int
sandbox_list(const char *state)
{
	struct buf	 out;
	long		 status;
	json_t		*doc, *a, *s;
	size_t		 i;
	int		 rc = 1;

	buf_init(&out, RESP_MAX);
	if (call(state, "GET", "/api/v1/sandboxes", NULL, &out, &status) ==
	    -1)
		goto done;
	if (status != 200) {
		rc = fail(status, &out);
		goto done;
	}
	if ((doc = json_loadb(out.data, out.len, 0, NULL)) == NULL)
		goto done;
	a = json_object_get(doc, "sandboxes");
	printf("%-24s %-9s %10s %10s %5s\n", "NAME", "STATE", "UPTIME_S",
	    "MEMORY_MB", "PIDS");
	json_array_foreach(a, i, s)
		printf("%-24s %-9s %10lld %10.1f %5lld\n",
		    json_string_value(json_object_get(s, "name")),
		    json_string_value(json_object_get(s, "state")),
		    json_integer_value(json_object_get(s, "uptime_ms")) / 1000,
		    (double)json_integer_value(json_object_get(s,
		    "memory_bytes")) / 1048576.0,
		    json_integer_value(json_object_get(s, "pids")));
	json_decref(doc);
	rc = 0;
done:
	buf_free(&out);
	return rc;
}

/*
 * exec NAME [flags] -- CMD…: streamed, so output shows as it comes; in
 * base64, so binary output passes intact. Exits with the command's code.
 */
static int
sandbox_exec(const char *state, int argc, char **argv)
{
	json_t		*req = json_object(), *cmd = json_array();
	json_t		*env = json_object();
	struct sse	 sse = { .exit_code = 1 };
	char		 path[256], *body = NULL, *eq;
	long		 status;
	int		 i, rc = CLI_USAGE;

	if (!sbx_name_valid(argv[0]))
		goto out;
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (i + 1 >= argc)
			goto out;
		if (!strcmp(argv[i], "--cwd"))
			json_object_set_new(req, "cwd", json_string(argv[++i]));
		else if (!strcmp(argv[i], "--timeout-ms"))
			json_object_set_new(req, "timeout_ms",
			    json_integer(strtoll(argv[++i], NULL, 10)));
		else if (!strcmp(argv[i], "--env") &&
		    (eq = strchr(argv[++i], '=')) != NULL) {
			*eq = '\0';
			json_object_set_new(env, argv[i], json_string(eq + 1));
		} else
			goto out;
	}
	if (i + 1 >= argc)
		goto out;
	for (i++; i < argc; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	json_object_set(req, "cmd", cmd);
	json_object_set(req, "env", env);
	json_object_set_new(req, "stream", json_true());
	json_object_set_new(req, "encoding", json_string("base64"));
	if ((body = json_dumps(req, JSON_COMPACT)) == NULL)
		goto out;
	snprintf(path, sizeof(path), "/api/v1/sandboxes/%s/exec", argv[0]);
	buf_init(&sse.line, 8L << 20);
	rc = 1;
	if (call(state, "POST", path, body, (struct buf *)&sse, &status) ==
	    -1)
		goto out_sse;
	if (status != 200)
		rc = fail(status, &sse.line);
	else if (!sse.exited)
		fprintf(stderr, "pincer sandbox exec: the stream ended before "
		    "the command did\n");
	else
		rc = sse.exit_code;
out_sse:
	buf_free(&sse.line);
out:
	free(body);
	json_decref(req);
	json_decref(cmd);
	json_decref(env);
	return rc;
}

/* Sync its /data now and say where it stands; 1 when the sync failed. */
static int
sandbox_sync(const char *state, const char *name)
{
	struct buf	 out;
	char		 path[256];
	long		 status;
	json_t		*o = NULL;
	const char	*st, *e;
	int		 rc = 1;

	snprintf(path, sizeof(path), "/api/v1/sandboxes/%s/sync", name);
	buf_init(&out, RESP_MAX);
	if (call(state, "POST", path, NULL, &out, &status) == 0) {
		if (status != 200)
			rc = fail(status, &out);
		else if ((o = json_loadb(out.data, out.len, 0, NULL)) != NULL) {
			st = json_string_value(json_object_get(o, "state"));
			e = json_string_value(json_object_get(o, "error"));
			printf("%s: %s, %lld files, %lld bytes (%s)\n", name,
			    st != NULL ? st : "?", (long long)
			    json_integer_value(json_object_get(o, "files")),
			    (long long)json_integer_value(json_object_get(o,
			    "bytes")), json_string_value(json_object_get(o,
			    "store")) != NULL ? json_string_value(
			    json_object_get(o, "store")) : "");
			if (e != NULL && *e != '\0')
				fprintf(stderr, "pincer sandbox sync: %s\n", e);
			else
				rc = 0;
		}
	}
	json_decref(o);
	buf_free(&out);
	return rc;
}

/*
 * snapshot NAME | snapshots [NAME] | snapshot-rm ID | restore ID [NAME]
 * [--new] | fork ID NAME...: a snapshot may take a while; there is no
 * time limit on the call.
 */
static int
sandbox_snap(const char *state, int argc, char **argv)
{
	char		 path[256], *body = NULL;
	const char	*sub = argv[0], *method = "POST", *word = "";
	struct buf	 out;
	json_t		*req = json_object(), *names = json_array(), *doc;
	long		 status;
	int		 i, rc = CLI_USAGE;

	buf_init(&out, RESP_MAX);
	if (!strcmp(sub, "snapshot") && argc == 2 && sbx_name_valid(argv[1]))
		snprintf(path, sizeof(path), "/api/v1/sandboxes/%s/snapshots",
		    argv[1]);
	else if (!strcmp(sub, "snapshots") && argc <= 2 && (argc == 1 ||
	    sbx_name_valid(argv[1]))) {
		method = "GET";
		snprintf(path, sizeof(path), "/api/v1/%s%s%ssnapshots",
		    argc == 2 ? "sandboxes/" : "", argc == 2 ? argv[1] : "",
		    argc == 2 ? "/" : "");
	} else if (!strcmp(sub, "snapshot-rm") && argc == 2 &&
	    strlen(argv[1]) < 128 && strchr(argv[1], '/') == NULL) {
		method = "DELETE";
		word = "deleted";
		snprintf(path, sizeof(path), "/api/v1/snapshots/%s", argv[1]);
	} else if (!strcmp(sub, "restore") && argc >= 2 && argc <= 4 &&
	    strlen(argv[1]) < 128 && strchr(argv[1], '/') == NULL) {
		for (i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--new"))
				json_object_set_new(req, "create",
				    json_true());
			else if (sbx_name_valid(argv[i]) &&
			    json_object_get(req, "sandbox") == NULL)
				json_object_set_new(req, "sandbox",
				    json_string(argv[i]));
			else
				goto out;
		}
		word = "restored";
		snprintf(path, sizeof(path), "/api/v1/snapshots/%s/restore",
		    argv[1]);
	} else if (!strcmp(sub, "fork") && argc >= 3 &&
	    strlen(argv[1]) < 128 && strchr(argv[1], '/') == NULL) {
		for (i = 2; i < argc; i++)
			if (!sbx_name_valid(argv[i]) ||
			    json_array_append_new(names,
			    json_string(argv[i])) == -1)
				goto out;
		json_object_set(req, "names", names);
		word = "forked";
		snprintf(path, sizeof(path), "/api/v1/snapshots/%s/fork",
		    argv[1]);
	} else
		goto out;
	if (!strcmp(method, "POST") &&
	    (body = json_dumps(req, JSON_COMPACT)) == NULL)
		goto out;
	rc = 1;
	if (call(state, method, path, body, &out, &status) == -1)
		goto out;
	if (status < 200 || status >= 300) {
		rc = fail(status, &out);
		goto out;
	}
	if ((doc = json_loadb(out.data, out.len, 0, NULL)) == NULL)
		goto out;
	snap_print(doc, word);
	json_decref(doc);
	rc = 0;
out:
	free(body);
	buf_free(&out);
	json_decref(req);
	json_decref(names);
	return rc;
}

/* A list as a table, a new snapshot as its id, the rest as a word. */
static void
snap_print(json_t *doc, const char *word)
{
	json_t	*a = json_object_get(doc, "snapshots"), *s;
	size_t	 i;

	if (*word != '\0') {
		printf("%s\n", word);
		return;
	}
	if (a == NULL) {
		printf("%s\n", json_string_value(json_object_get(doc, "id")));
		return;
	}
	printf("%-44s %-24s %12s %8s %s\n", "ID", "CREATED", "SIZE",
	    "FILES", "REASON");
	json_array_foreach(a, i, s)
		printf("%-44s %-24s %12lld %8lld %s\n",
		    json_string_value(json_object_get(s, "id")),
		    json_string_value(json_object_get(s, "created")),
		    json_integer_value(json_object_get(s, "size")),
		    json_integer_value(json_object_get(s, "files")),
		    json_string_value(json_object_get(s, "reason")));
}

/* One call, one line of result. */
static int
simple(const char *state, const char *method, const char *path,
    const char *body, const char *done)
{
	struct buf	 out;
	long		 status;
	int		 rc = 1;

	buf_init(&out, RESP_MAX);
	if (call(state, method, path, body, &out, &status) == 0) {
		if (status >= 200 && status < 300) {
			printf("%s\n", done);
			rc = 0;
		} else
			rc = fail(status, &out);
	}
	buf_free(&out);
	return rc;
}

static int
fail(long status, const struct buf *out)
{
	json_t		*doc = json_loadb(out->data != NULL ? out->data : "",
			    out->len, 0, NULL);
	const char	*msg = json_string_value(json_object_get(
			    json_object_get(doc, "error"), "message"));

	fprintf(stderr, "pincer sandbox: %s (HTTP %ld)\n", msg != NULL ?
	    msg : "pincerd refused the call", status);
	json_decref(doc);
	return 1;
}

/*
 * A call on the local socket. out is a plain buffer, or (for exec) a
 * struct sse, told apart by the path.
 */
static int
call(const char *state, const char *method, const char *path,
    const char *body, struct buf *out, long *status)
{
	CURL			*h;
	struct curl_slist	*hdr = NULL;
	char			 sock[512], url[512];
	int			 dfd = -1, rc = -1;
	CURLcode		 res;
	bool			 streaming = strstr(path, "/exec") != NULL;

	if (socket_path(state, sock, sizeof(sock), &dfd) == -1 ||
	    (h = curl_easy_init()) == NULL)
		return -1;
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, streaming ? stream :
	    collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	res = curl_easy_perform(h);
	if (res == CURLE_COULDNT_CONNECT)
		fprintf(stderr, "pincer sandbox: cannot reach pincerd at %s: "
		    "%s (is it running?)\n", sock, curl_easy_strerror(res));
	else if (res != CURLE_OK)
		fprintf(stderr, "pincer sandbox: the call to pincerd failed: "
		    "%s\n", curl_easy_strerror(res));
	else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
		rc = 0;
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	if (dfd != -1)
		close(dfd);
	return rc;
}

/* A path too long for a Unix socket goes through /proc/self/fd. */
static int
socket_path(const char *state, char *out, size_t outsz, int *dfd)
{
	if ((size_t)snprintf(out, outsz, "%s/pincerd.sock", state) < 108)
		return 0;
	if ((*dfd = open(state, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "pincer sandbox: %s: %s\n", state,
		    strerror(errno));
		return -1;
	}
	snprintf(out, outsz, "/proc/self/fd/%d/pincerd.sock", *dfd);
	return 0;
}

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	return buf_append(arg, p, size * n) == -1 ? 0 : size * n;
}

/* Lines of the SSE stream (or, on an error status, its JSON body). */
static size_t
stream(char *p, size_t size, size_t n, void *arg)
{
	struct sse	*s = arg;
	size_t		 len = size * n, i;

	for (i = 0; i < len; i++) {
		if (p[i] != '\n') {
			if (buf_append(&s->line, p + i, 1) == -1)
				return 0;
			continue;
		}
		sse_line(s, s->line.data != NULL ? s->line.data : "");
		buf_reset(&s->line);
	}
	return len;
}

/* text/event-stream (WHATWG HTML §9.2): event: and data: lines. */
static void
sse_line(struct sse *s, const char *line)
{
	json_t		*d;
	const char	*b64;
	unsigned char	*raw;
	size_t		 n;
	ssize_t		 m;

	if (!strncmp(line, "event: ", 7)) {
		snprintf(s->event, sizeof(s->event), "%s", line + 7);
		return;
	}
	if (strncmp(line, "data: ", 6) != 0 ||
	    (d = json_loads(line + 6, 0, NULL)) == NULL)
		return;
	if (!strcmp(s->event, "exit")) {
		s->exit_code = (int)json_integer_value(json_object_get(d,
		    "exit_code"));
		s->exited = true;
	} else if ((b64 = json_string_value(json_object_get(d, "data"))) !=
	    NULL && (raw = malloc((n = strlen(b64)) + 4)) != NULL) {
		if ((m = b64_decode(b64, n, raw)) > 0)
			fwrite(raw, 1, (size_t)m, !strcmp(s->event, "stderr") ?
			    stderr : stdout);
		fflush(!strcmp(s->event, "stderr") ? stderr : stdout);
		free(raw);
	}
	json_decref(d);
}
