/* SPDX-License-Identifier: MIT */
/*
 * floor.c: the memory floor of pincerd's libraries, without pincerd. It
 * links what pincerd links (libmicrohttpd, libwebsockets, jansson, libjwt,
 * libcurl, OpenSSL, libargon2, SQLite), then does nothing, starts
 * libmicrohttpd's workers, a libwebsockets context, and opens a SQLite
 * database in WAL with one query, printing VmRSS and RssAnon after each:
 * what Debian's libraries cost before pincer's own code does anything.
 * Usage: floor DBPATH
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <argon2.h>
#include <curl/curl.h>
#include <jansson.h>
#include <jwt.h>
#include <libwebsockets.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

static void	rss(const char *);
static enum MHD_Result on_request(void *, struct MHD_Connection *,
		    const char *, const char *, const char *, const char *,
		    size_t *, void **);
static int	on_ws(struct lws *, enum lws_callback_reasons, void *, void *,
		    size_t);

static const struct lws_protocols protocols[] = {
	{ "x", on_ws, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

int
main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct MHD_Daemon	*d;
	struct lws_context	*ctx;
	sqlite3			*db;
	json_t			*j;

	if (argc != 2)
		return 2;
	/* One call into each, so that the linker keeps them all loaded. */
	if (curl_version() == NULL || jwt_alg_str(JWT_ALG_HS256) == NULL ||
	    argon2_type2string(Argon2_id, 0) == NULL ||
	    OpenSSL_version(OPENSSL_VERSION) == NULL)
		return 1;
	rss("libraries loaded, nothing started");
	d = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC |
	    MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_END);
	rss("+ libmicrohttpd, 2 workers");
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	info.fd_limit_per_thread = 576;
	lws_set_log_level(0, NULL);
	ctx = lws_create_context(&info);
	rss("+ libwebsockets context");
	sqlite3_open(argv[1], &db);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS "
	    "t (x); SELECT * FROM t", NULL, NULL, NULL);
	j = json_loads("{\"a\":1}", 0, NULL);
	rss("+ SQLite open in WAL, one query; jansson");
	json_decref(j);
	sqlite3_close(db);
	lws_context_destroy(ctx);
	MHD_stop_daemon(d);
	return 0;
}

static void
rss(const char *what)
{
	FILE	*f = fopen("/proc/self/status", "r");
	char	 line[256];
	long	 total = 0, anon = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		sscanf(line, "VmRSS: %ld", &total);
		sscanf(line, "RssAnon: %ld", &anon);
	}
	if (f != NULL)
		fclose(f);
	printf("  %-44s VmRSS %5ld kB, anonymous %5ld kB\n", what, total, anon);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *up, size_t *n,
    void **ctx)
{
	return MHD_NO;
}

static int
on_ws(struct lws *wsi, enum lws_callback_reasons r, void *u, void *in,
    size_t len)
{
	return 0;
}
