/* SPDX-License-Identifier: MIT */
/*
 * api_config.c: GET and PUT /api/v1/config, the config file as the admin
 * UI's Settings page edits it. A new config is checked by the code that
 * loads the file at start (and its environment still wins), written
 * atomically beside the old one, then applied as SIGHUP applies it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pincer.h"

#define CONF_MAX	(4L * 1024 * 1024)	/* a config file, at most */
#define ERR_MAX		(64 * 1024)		/* every problem of one */

/* The file as read: text (owned, NUL-terminated; NULL: no file). */
struct file {
	char	*text;
	size_t	 len;
	char	 etag[65];
};

static int	 file_read(const char *, struct file *, char *, size_t);
static bool	 writable(const char *);
static void	 etag_of(const char *, size_t, char *);
static bool	 etag_matches(const char *, const char *);
static char	*candidate_write(const char *, const char *, size_t, char *,
		    size_t);
static int	 file_replace(const char *, const char *, bool *, char *,
		    size_t);
static void	 file_restore(const char *, bool);
static char	*text_of(json_t *);
static void	 save(struct http_req *, const char *, json_t *, const char *,
		    const char *);
static void	 fix_origin(char *, const char *, const char *);
static void	 changed_keys(const char *, json_t *, char *, size_t);
static void	 reply_invalid(struct http_req *, const char *);

/* Saves one at a time: each compares the file with what it was sent. */
static pthread_mutex_t	 save_lock = PTHREAD_MUTEX_INITIALIZER;

/* GET /api/v1/config */
void
api_config_get(struct http_req *r)
{
	const char	*path = daemon_config_path();
	struct file	 f;
	json_t		*o, *cfg = NULL, *opts;
	json_error_t	 je;
	char		 err[300];

	if (file_read(path, &f, err, sizeof(err)) == -1) {
		http_error(r, 500, "config_unreadable", "%s", err);
		return;
	}
	if (f.text == NULL)
		cfg = json_object();
	else if ((cfg = json_loadb(f.text, f.len, JSON_REJECT_DUPLICATES,
	    &je)) == NULL)
		snprintf(err, sizeof(err), "%s:%d:%d: %s (edited by hand "
		    "since pincerd read it?)", path, je.line, je.column,
		    je.text);
	if ((opts = config_describe(config_current(), daemon_overrides())) ==
	    NULL) {
		json_decref(cfg);
		free(f.text);
		http_error(r, 500, "internal", "out of memory");
		return;
	}
	o = json_pack("{s:s, s:b, s:s, s:o?, s:o}", "path", path, "writable",
	    writable(path), "etag", f.etag, "config", cfg, "options", opts);
	if (o != NULL && cfg == NULL)
		json_object_set_new(o, "problem", json_string(err));
	free(f.text);
	http_reply_json(r, 200, o);
}

/* PUT /api/v1/config: the whole new config as the body. */
void
api_config_put(struct http_req *r)
{
	const char	*path = daemon_config_path(), *body, *match;
	struct file	 f = { 0 };
	json_t		*in;
	json_error_t	 je;
	char		*text, err[600];
	size_t		 len;

	http_req_body(r, &body, &len);
	if ((in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je)) == NULL ||
	    !json_is_object(in)) {
		http_error(r, 400, "bad_json", "send the whole config as a "
		    "JSON object%s%s", in == NULL ? ": " : "",
		    in == NULL ? je.text : "");
		json_decref(in);
		return;
	}
	if ((text = text_of(in)) == NULL) {
		json_decref(in);
		http_error(r, 500, "internal", "out of memory");
		return;
	}
	pthread_mutex_lock(&save_lock);
	match = http_req_header(r, "If-Match");
	if (file_read(path, &f, err, sizeof(err)) == -1)
		http_error(r, 500, "config_unreadable", "%s", err);
	else if (match != NULL && !etag_matches(match, f.etag))
		http_error(r, 412, "config_changed", "the config file changed "
		    "since this page read it (someone saved it, or edited %s "
		    "by hand): load it again, then make your change", path);
	else
		save(r, path, in, text, f.text != NULL ? f.text : "{}");
	pthread_mutex_unlock(&save_lock);
	json_decref(in);
	free(f.text);
	free(text);
}

/*
 * Check text (in, dumped) twice: alone, so errors name the real file;
 * then written beside it and loaded with the environment and command line
 * as SIGHUP loads it. Then it replaces the file and is applied. Any
 * failure leaves the file and the running config as they were.
 */
static void
save(struct http_req *r, const char *path, json_t *in, const char *text,
    const char *old)
{
	struct identity	*id = http_req_identity(r);
	struct config	*next;
	json_t		*restart = NULL;
	char		*tmp = NULL, *errs = NULL, err[600], keys[512];
	char		 etag[65];
	bool		 had_bak = false;

	if ((next = config_parse(text, strlen(text), path, &errs)) == NULL) {
		reply_invalid(r, errs);
		goto out;
	}
	config_free(next);
	if (!writable(path)) {
		http_error(r, 409, "config_not_writable", "pincerd cannot "
		    "write its config file %s (or its folder): start pincerd "
		    "with --config naming a file it may write, or edit that "
		    "file by hand and send pincerd SIGHUP", path);
		goto out;
	}
	if ((tmp = candidate_write(path, text, strlen(text), err,
	    sizeof(err))) == NULL) {
		http_error(r, 500, "config_write_failed", "%s", err);
		goto out;
	}
	if ((next = daemon_config_try(tmp, &errs)) == NULL) {
		unlink(tmp);
		fix_origin(errs, tmp, path);
		reply_invalid(r, errs);
		goto out;
	}
	if (file_replace(tmp, path, &had_bak, err, sizeof(err)) == -1) {
		unlink(tmp);
		config_free(next);
		http_error(r, 500, "config_write_failed", "%s", err);
		goto out;
	}
	restart = json_array();
	if (daemon_config_apply(next, restart, err, sizeof(err)) == -1) {
		/* The egress policies refused it: the old file goes back. */
		file_restore(path, had_bak);
		reply_invalid(r, err);
		goto out;
	}
	changed_keys(old, in, keys, sizeof(keys));
	audit_add(id->user[0] ? id->user : "unknown", http_req_ip(r),
	    "config_update", path, keys);
	etag_of(text, strlen(text), etag);
	http_reply_json(r, 200, json_pack("{s:b, s:s, s:O}", "saved", true,
	    "etag", etag, "restart_required", restart));
out:
	json_decref(restart);
	free(errs);
	free(tmp);
}

/* The file's text as pincerd writes it, newline-terminated; caller frees.
 * The precision keeps prices as typed (0.15, not 0.1499…). */
static char *
text_of(json_t *in)
{
	char	*s, *t;
	size_t	 n;

	if ((s = json_dumps(in, JSON_INDENT(2) | JSON_REAL_PRECISION(15))) ==
	    NULL)
		return NULL;
	n = strlen(s);
	if ((t = realloc(s, n + 2)) == NULL) {
		free(s);
		return NULL;
	}
	t[n] = '\n';
	t[n + 1] = '\0';
	return t;
}

/* 0 with f->text NULL when there is no file; -1 and err otherwise. */
static int
file_read(const char *path, struct file *f, char *err, size_t errsz)
{
	struct stat	 st;
	ssize_t		 n;
	size_t		 got = 0;
	int		 fd;

	memset(f, 0, sizeof(*f));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT) {
			etag_of("", 0, f->etag);
			return 0;
		}
		snprintf(err, errsz, "cannot read %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > CONF_MAX) {
		snprintf(err, errsz, "%s is not a file of at most %ld bytes",
		    path, CONF_MAX);
		close(fd);
		return -1;
	}
	if ((f->text = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	while (got < (size_t)st.st_size && (n = read(fd, f->text + got,
	    (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	f->text[got] = '\0';
	f->len = got;
	etag_of(f->text, f->len, f->etag);
	return 0;
}

/* The file is replaced by a new one in its folder: both must allow it. */
static bool
writable(const char *path)
{
	char	*copy = strdup(path);
	bool	 ok;

	if (copy == NULL)
		return false;
	ok = access(dirname(copy), W_OK | X_OK) == 0 &&
	    (access(path, F_OK) == -1 || access(path, W_OK) == 0);
	free(copy);
	return ok;
}

/* SHA-256 of the text, lowercase hex: changes whenever the file does. */
static void
etag_of(const char *text, size_t len, char *out)
{
	unsigned char	 md[32];
	unsigned int	 n = 0;
	size_t		 i;

	EVP_Digest(text, len, md, &n, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}

/* If-Match: the etag, bare or quoted as RFC 9110 writes entity tags. */
static bool
etag_matches(const char *h, const char *etag)
{
	size_t	 n = strlen(h);

	if (n == strlen(etag) + 2 && h[0] == '"' && h[n - 1] == '"')
		return strncmp(h + 1, etag, n - 2) == 0;
	return strcmp(h, etag) == 0;
}

/*
 * The new text in a temporary file beside the config (so the rename is
 * atomic), 0600, on disk before it is named. Caller frees the path.
 */
static char *
candidate_write(const char *path, const char *text, size_t len, char *err,
    size_t errsz)
{
	char	*tmp;
	size_t	 n = strlen(path) + 16, off = 0;
	ssize_t	 w;
	int	 fd;

	if ((tmp = malloc(n)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	/* mkostemp's template: it replaces the X's with a unique name. */
	snprintf(tmp, n, "%s.tmp.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		goto fail;
	while (off < len && (w = write(fd, text + off, len - off)) > 0)
		off += (size_t)w;
	if (off < len || fchmod(fd, 0600) == -1 || fsync(fd) == -1) {
		close(fd);
		unlink(tmp);
		goto fail;
	}
	if (close(fd) == -1) {
		unlink(tmp);
		goto fail;
	}
	return tmp;
fail:
	snprintf(err, errsz, "cannot write beside %s: %s", path,
	    strerror(errno));
	free(tmp);
	return NULL;
}

/*
 * tmp becomes path; the old file stays as path.bak (a hard link to it,
 * made first, so a crash leaves one or the other whole). The folder is
 * synced so the rename survives a power cut.
 */
static int
file_replace(const char *tmp, const char *path, bool *had_bak, char *err,
    size_t errsz)
{
	char	 bak[4096], *copy;
	int	 dfd;

	*had_bak = false;
	if ((size_t)snprintf(bak, sizeof(bak), "%s.bak", path) < sizeof(bak) &&
	    access(path, F_OK) == 0) {
		unlink(bak);
		if (link(path, bak) == 0)
			*had_bak = true;
		else
			log_warn("cannot keep the old config", "%s: %s", bak,
			    strerror(errno));
	}
	if (rename(tmp, path) == -1) {
		snprintf(err, errsz, "cannot replace %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if ((copy = strdup(path)) != NULL &&
	    (dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1) {
		fsync(dfd);
		close(dfd);
	}
	free(copy);
	return 0;
}

/* The save is undone: the old file (kept as .bak), or none if none was. */
static void
file_restore(const char *path, bool had_bak)
{
	char	 bak[4096];

	snprintf(bak, sizeof(bak), "%s.bak", path);
	if ((had_bak ? rename(bak, path) : unlink(path)) == -1)
		log_error("cannot put the old config back", "%s: %s", path,
		    strerror(errno));
	else if (had_bak && link(path, bak) == -1)
		log_warn("cannot keep the old config", "%s: %s", bak,
		    strerror(errno));
}

/*
 * Errors name the temporary file they were read from: name the real one
 * (its name begins the temporary one's, so the text only shrinks).
 */
static void
fix_origin(char *errs, const char *tmp, const char *path)
{
	size_t	 tn = strlen(tmp), pn = strlen(path);
	char	*at;

	for (at = errs; at != NULL && (at = strstr(at, tmp)) != NULL;
	    at += pn)
		memmove(at + pn, at + tn, strlen(at + tn) + 1);
}

/* The top-level keys added, removed or changed: the audit line names
 * them, never a value (a header value may hold a credential). */
static void
changed_keys(const char *old_text, json_t *in, char *out, size_t outsz)
{
	json_t		*old, *v;
	const char	*k;
	size_t		 n = 0;

	old = json_loads(old_text, 0, NULL);
	if (old == NULL)
		old = json_object();
	out[0] = '\0';
	json_object_foreach(in, k, v)
		if (!json_equal(v, json_object_get(old, k)) && n < outsz)
			n += (size_t)snprintf(out + n, outsz - n, "%s%s",
			    n ? "," : "", k);
	json_object_foreach(old, k, v)
		if (json_object_get(in, k) == NULL && n < outsz)
			n += (size_t)snprintf(out + n, outsz - n, "%s%s",
			    n ? "," : "", k);
	json_decref(old);
}

/* 400 with every problem, one per line (http_error's 512 bytes are too
 * few for a config with many). */
static void
reply_invalid(struct http_req *r, const char *errs)
{
	struct buf	 b;
	char		*msg;
	size_t		 n;

	if ((msg = strdup(errs != NULL && *errs ? errs : "invalid")) == NULL) {
		http_error(r, 500, "internal", "out of memory");
		return;
	}
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	buf_init(&b, ERR_MAX + 256);
	http_error_body(&b, "invalid_config", msg);
	http_json(r, 400, b.data != NULL ? b.data : "{}");
	buf_free(&b);
	free(msg);
}
