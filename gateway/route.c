/* SPDX-License-Identifier: MIT */
/* route.c: the route table, the one place routes and their auth live. */
#include <stdio.h>
#include <string.h>

#include "pincer.h"

static const struct route routes[] = {
	{ .method = "GET", .path = "/healthz", .handler = api_healthz,
	  .auth = AUTH_PUBLIC, .name = "healthz" },
	{ .method = "GET", .path = "/readyz", .handler = api_readyz,
	  .auth = AUTH_PUBLIC, .name = "readyz" },
	{ .method = "GET", .path = "/metrics", .handler = api_metrics,
	  .auth = AUTH_PUBLIC, .name = "metrics" },
	{ .method = "GET", .path = "/api/v1/version", .handler = api_version,
	  .auth = AUTH_PUBLIC, .name = "version" },
	/* Kept for tests: proves the WebSocket path end to end. */
	{ .method = "WS", .path = "/api/v1/ws-echo", .kind = ROUTE_WS,
	  .ws = &ws_echo_ops, .auth = AUTH_PUBLIC, .name = "ws_echo" },
};
#define NROUTES	(sizeof(routes) / sizeof(routes[0]))

/* HEAD is GET without a body; libmicrohttpd drops the body itself. */
enum route_match
route_find(const char *method, const char *path, const struct route **out)
{
	bool	 path_seen = false;
	size_t	 i;

	if (!strcmp(method, "HEAD"))
		method = "GET";
	for (i = 0; i < NROUTES; i++) {
		if (strcmp(routes[i].path, path) != 0)
			continue;
		path_seen = true;
		if (routes[i].kind == ROUTE_HTTP &&
		    !strcmp(routes[i].method, method)) {
			*out = &routes[i];
			return ROUTE_FOUND;
		}
	}
	*out = NULL;
	return path_seen ? ROUTE_NO_METHOD : ROUTE_NONE;
}

const struct route *
route_find_ws(const char *path)
{
	size_t	 i;

	for (i = 0; i < NROUTES; i++)
		if (routes[i].kind == ROUTE_WS && !strcmp(routes[i].path, path))
			return &routes[i];
	return NULL;
}

/* The Allow header of a 405 (RFC 9110 §15.5.6). */
const char *
route_allow(const char *path, char *out, size_t outsz)
{
	size_t	 i, n = 0;

	out[0] = '\0';
	for (i = 0; i < NROUTES && n < outsz; i++)
		if (routes[i].kind == ROUTE_HTTP &&
		    !strcmp(routes[i].path, path))
			n += (size_t)snprintf(out + n, outsz - n, "%s%s%s",
			    n ? ", " : "", routes[i].method,
			    !strcmp(routes[i].method, "GET") ? ", HEAD" : "");
	return out;
}

/*
 * Every request passes here before its handler. Only public routes exist
 * until authentication is built, and pincerd refuses non-loopback
 * addresses until then (daemon.c).
 */
bool
route_allowed(const struct route *rt, struct http_req *r)
{
	switch (rt->auth) {
	case AUTH_PUBLIC:
		return true;
	}
	http_error(r, 401, "unauthenticated", "authentication required");
	return false;
}

size_t
route_count(void)
{
	return NROUTES;
}

const struct route *
route_at(size_t i)
{
	return i < NROUTES ? &routes[i] : NULL;
}

size_t
route_index(const struct route *rt)
{
	return (size_t)(rt - routes);
}
