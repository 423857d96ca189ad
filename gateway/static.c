/* SPDX-License-Identifier: MIT */
/* static.c: the admin UI's files, with types, ETags, and no way out. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <microhttpd.h>

#include "pincer.h"

static bool	path_is_clean(const char *);
static int	open_beneath(int, const char *);
static const char *content_type(const char *);
static void	add_security_headers(struct MHD_Response *, const char *);

static const struct {
	const char	*ext;
	const char	*type;
} types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".map", "application/json" },
	{ ".webmanifest", "application/manifest+json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".jpg", "image/jpeg" },
	{ ".jpeg", "image/jpeg" },
	{ ".gif", "image/gif" },
	{ ".webp", "image/webp" },
	{ ".ico", "image/x-icon" },
	{ ".woff2", "font/woff2" },
	{ ".woff", "font/woff" },
	{ ".txt", "text/plain; charset=utf-8" },
	{ ".md", "text/markdown; charset=utf-8" },
	{ ".wasm", "application/wasm" },
};

/*
 * Two locks on the way out of the folder: the decoded path may not hold a
 * "." or ".." segment (nor any dotfile), and the file is opened with
 * openat2(RESOLVE_BENEATH), so a symlink inside cannot lead outside either.
 */
void
static_serve(struct http_req *r, const char *root)
{
	struct MHD_Response	*resp;
	struct stat		 st;
	const char		*path = http_req_path(r), *inm;
	char			 rel[PATH_MAX], etag[80], loc[PATH_MAX];
	int			 dfd = -1, fd = -1;
	size_t			 n;

	if (*path != '/' || !path_is_clean(path)) {
		http_error(r, 404, "not_found", "no such file");
		return;
	}
	n = (size_t)snprintf(rel, sizeof(rel), "%s", path + 1);
	if (n == 0 || rel[n - 1] == '/')
		snprintf(rel + n, sizeof(rel) - n, "index.html");
	if (n >= sizeof(rel) - 16) {
		http_error(r, 404, "not_found", "no such file");
		return;
	}
	if ((dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		http_error(r, 404, "not_found", "the admin UI is not "
		    "installed (admin_ui.dir: %s)", root);
		return;
	}
	fd = open_beneath(dfd, rel);
	close(dfd);
	if (fd == -1 || fstat(fd, &st) == -1)
		goto notfound;
	if (S_ISDIR(st.st_mode)) {
		/* A folder without its slash: send the browser to it. */
		close(fd);
		snprintf(loc, sizeof(loc), "%s/", path);
		resp = MHD_create_response_from_buffer(0, (void *)"",
		    MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
		http_reply(r, 301, resp);
		return;
	}
	if (!S_ISREG(st.st_mode))
		goto notfound;
	snprintf(etag, sizeof(etag), "\"%llx-%llx-%llx\"",
	    (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
	    (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
	    (unsigned long long)st.st_mtim.tv_nsec);
	inm = http_req_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm != NULL && (strstr(inm, etag) != NULL || !strcmp(inm, "*"))) {
		close(fd);
		resp = MHD_create_response_from_buffer(0, (void *)"",
		    MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
		http_reply(r, 304, resp);
		return;
	}
	/* libmicrohttpd owns fd from here and closes it. */
	resp = MHD_create_response_from_fd((size_t)st.st_size, fd);
	if (resp == NULL) {
		close(fd);
		http_error(r, 500, "internal", "cannot send the file");
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    content_type(rel));
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	/* Revalidate every time: the ETag makes that a cheap 304. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache");
	add_security_headers(resp, rel);
	http_reply(r, 200, resp);
	return;
notfound:
	if (fd != -1)
		close(fd);
	http_error(r, 404, "not_found", "no such file");
}

static bool
path_is_clean(const char *p)
{
	const char	*seg, *end;
	size_t		 n, i;

	if (*p != '/')
		return false;
	for (seg = p + 1;; seg = end + 1) {
		end = strchr(seg, '/');
		n = end != NULL ? (size_t)(end - seg) : strlen(seg);
		/* "//" would let the rest look like an absolute path. */
		if (n == 0 && end != NULL)
			return false;
		/* ".", ".." and dotfiles (.git, .env) are never served. */
		if (n > 0 && seg[0] == '.')
			return false;
		for (i = 0; i < n; i++)
			if (seg[i] == '\\' || (unsigned char)seg[i] < 0x20 ||
			    seg[i] == 0x7f)
				return false;
		if (end == NULL)
			return true;
	}
}

static int
open_beneath(int dfd, const char *rel)
{
	struct open_how	 how;
	long		 fd;
	char		 full[PATH_MAX], real[PATH_MAX], base[PATH_MAX];

	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	fd = syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return (int)fd;
	/* Kernels before 5.6: resolve, then check the prefix. */
	snprintf(full, sizeof(full), "/proc/self/fd/%d", dfd);
	if (realpath(full, base) == NULL)
		return -1;
	if ((size_t)snprintf(full, sizeof(full), "%s/%s", base, rel) >=
	    sizeof(full) || realpath(full, real) == NULL ||
	    strncmp(real, base, strlen(base)) != 0 ||
	    real[strlen(base)] != '/')
		return -1;
	return open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

static const char *
content_type(const char *path)
{
	const char	*dot = strrchr(path, '.');
	size_t		 i;

	for (i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcasecmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/*
 * The admin UI is the owner's control panel: it must not be framed,
 * sniffed into another type, or leak its URLs as referrers. Images may
 * also come from blob: URLs: the live browser view shows each JPEG frame
 * of its WebSocket that way (a blob: URL is made by the page itself from
 * bytes it holds, so it reaches nothing outside); all else stays 'self'.
 */
static void
add_security_headers(struct MHD_Response *resp, const char *rel)
{
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (strstr(rel, ".html") != NULL) {
		MHD_add_response_header(resp, "X-Frame-Options", "DENY");
		MHD_add_response_header(resp, "Content-Security-Policy",
		    "default-src 'self'; img-src 'self' blob:; "
		    "frame-ancestors 'none'; "
		    "base-uri 'none'; form-action 'self'");
	}
}
