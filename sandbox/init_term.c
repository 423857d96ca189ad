/* SPDX-License-Identifier: MIT */
/*
 * init_term.c: the terminals' HTTP side. GET /terminal upgrades to a
 * WebSocket joined to a terminal (made, or the one with that id), GET
 * /terminals lists them, DELETE /terminals/{id} ends one. A terminal
 * itself is init_pty.c's, the WebSocket init_ws.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

#define TERM_MAX	64		/* live terminals */

static void	term_list(struct conn *);
static int	term_make_id(char *);
static bool	term_id_ok(const char *);
static long	term_dim(struct conn *, const char *);

static unsigned		 term_seq;	/* for ids made up */

void
term_handle(struct conn *c, const struct req *r)
{
	const char	*id = req_query(c, "id", 0);
	char		 made[PTY_ID_MAX + 1];
	struct pty	*t;
	struct ws	*w;
	long		 cols, rows;
	bool		 fresh = false;
	int		 fd;

	(void)r;
	if (id == NULL && term_make_id(made) == 0)
		id = made;
	if (id == NULL || !term_id_ok(id)) {
		http_error(c, 400, "bad_request", "id: [A-Za-z0-9_.-]{1,64}");
		return;
	}
	if ((cols = term_dim(c, "cols")) == -1 ||
	    (rows = term_dim(c, "rows")) == -1)
		return;
	/* Not an upgrade at all: refused (400) before a shell is made. */
	if (req_header(c, "Sec-WebSocket-Key") == NULL) {
		(void)conn_upgrade(c);
		return;
	}
	if ((t = pty_find(id)) == NULL) {
		if (pty_count() >= TERM_MAX) {
			http_error(c, 409, "conflict", "at most %d terminals",
			    TERM_MAX);
			return;
		}
		if ((t = pty_new(id, cols ? (unsigned short)cols : 80,
		    rows ? (unsigned short)rows : 24)) == NULL) {
			http_error(c, 500, "internal", "terminal: %s",
			    strerror(errno));
			return;
		}
		fresh = true;
	}
	/* A shell nobody could attach to would be left behind: end it. */
	if ((fd = conn_upgrade(c)) == -1 || (w = pty_ws_new(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		if (fresh)
			pty_hangup(t);
		return;
	}
	if (!fresh)
		pty_resize(t, cols, rows);
	pty_attach(t, w);
}

void
terms_handle(struct conn *c, const struct req *r)
{
	struct pty	*t;
	const char	*id;

	if (!strcmp(r->path, "/terminals") || !strcmp(r->path,
	    "/terminals/")) {
		if (strcmp(r->method, "GET") != 0)
			http_error(c, 405, "method_not_allowed", "GET only");
		else
			term_list(c);
		return;
	}
	id = r->path + strlen("/terminals/");
	if (strncmp(r->path, "/terminals/", 11) != 0 || !term_id_ok(id) ||
	    (t = pty_find(id)) == NULL) {
		http_error(c, 404, "not_found", "no such terminal");
		return;
	}
	if (!strcmp(r->method, "GET"))
		http_json(c, 200, pty_json(t));
	else if (!strcmp(r->method, "DELETE"))
		pty_delete(c, t);
	else
		http_error(c, 405, "method_not_allowed", "GET or DELETE");
}

/* --- helpers ---------------------------------------------------------- */

static void
term_list(struct conn *c)
{
	struct pty	*t;
	json_t		*a;

	if ((a = json_array()) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	for (t = pty_next(NULL); t != NULL; t = pty_next(t))
		json_array_append_new(a, pty_json(t));
	http_json(c, 200, json_pack("{s:o}", "terminals", a));
}

/* No id given: "t1", "t2", … whichever is free. */
static int
term_make_id(char *out)
{
	int	 i;

	for (i = 0; i <= TERM_MAX; i++) {
		(void)snprintf(out, PTY_ID_MAX + 1, "t%u", ++term_seq);
		if (pty_find(out) == NULL)
			return 0;
	}
	return -1;
}

static bool
term_id_ok(const char *id)
{
	size_t	 n = strlen(id);

	return n >= 1 && n <= PTY_ID_MAX && strspn(id,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_.-") == n;
}

/* cols or rows: 0 when absent, -1 after answering 400. */
static long
term_dim(struct conn *c, const char *name)
{
	const char	*s = req_query(c, name, 0);
	char		*end;
	long		 v;

	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > PTY_DIM_MAX) {
		http_error(c, 400, "bad_request", "%s: 1 to %d", name,
		    PTY_DIM_MAX);
		return -1;
	}
	return v;
}
