/* SPDX-License-Identifier: MIT */
/* test_route.c: lookups in the route table (route.c). */
#include <string.h>

#include "pincer.h"
#include "tap.h"

static void	test_find(void);
static void	test_ws(void);
static void	test_allow(void);
static void	test_index(void);

int
main(void)
{
	test_find();
	test_ws();
	test_allow();
	test_index();
	return done_testing();
}

static const char	*param;

static void
test_find(void)
{
	const struct route	*rt = NULL;

	is_int(route_find("GET", "/healthz", &rt, &param), ROUTE_FOUND,
	    "GET /healthz found");
	ok(rt != NULL && !strcmp(rt->path, "/healthz") &&
	    rt->kind == ROUTE_HTTP && rt->handler == api_healthz,
	    "it is the healthz route");
	is_str(rt ? rt->name : NULL, "healthz", "metrics label");
	rt = NULL;
	is_int(route_find("HEAD", "/healthz", &rt, &param), ROUTE_FOUND,
	    "HEAD /healthz found");
	ok(rt != NULL && !strcmp(rt->method, "GET"), "HEAD maps to GET");
	is_int(route_find("GET", "/readyz", &rt, &param), ROUTE_FOUND, "GET /readyz");
	ok(rt != NULL && rt->handler == api_readyz, "readyz handler");
	is_int(route_find("GET", "/api/v1/version", &rt, &param), ROUTE_FOUND,
	    "GET /api/v1/version");
	is_int(route_find("POST", "/healthz", &rt, &param), ROUTE_NO_METHOD,
	    "POST /healthz is a wrong method");
	ok(rt == NULL, "no route given back for a wrong method");
	is_int(route_find("get", "/healthz", &rt, &param), ROUTE_NO_METHOD,
	    "methods are case-sensitive");
	is_int(route_find("GET", "/nope", &rt, &param), ROUTE_NONE, "unknown path");
	ok(rt == NULL, "no route given back for an unknown path");
	is_int(route_find("GET", "/healthz/", &rt, &param), ROUTE_NONE,
	    "paths are exact: trailing slash");
	is_int(route_find("GET", "/HEALTHZ", &rt, &param), ROUTE_NONE,
	    "paths are case-sensitive");
	is_int(route_find("GET", "", &rt, &param), ROUTE_NONE, "empty path");

	/* A {param} segment: one non-empty segment, given back. */
	is_int(route_find("DELETE", "/api/v1/tokens/abc123", &rt, &param),
	    ROUTE_FOUND, "DELETE /api/v1/tokens/{id}");
	is_str(param, "abc123", "the parameter is the segment");
	is_int(route_find("DELETE", "/api/v1/tokens/", &rt, &param),
	    ROUTE_NONE, "an empty parameter matches nothing");
	is_int(route_find("DELETE", "/api/v1/tokens/a/b", &rt, &param),
	    ROUTE_NONE, "a parameter is one segment");
	is_int(route_find("GET", "/api/v1/tokens/abc", &rt, &param),
	    ROUTE_NO_METHOD, "GET on the {id} path: wrong method");
	is_int(route_find("GET", "/api/v1/tokens", &rt, &param), ROUTE_FOUND,
	    "GET /api/v1/tokens");
	ok(rt != NULL && rt->auth == AUTH_USER, "tokens need an identity");
	route_find("GET", "/api/v1/audit", &rt, &param);
	ok(rt != NULL && rt->scopes == SCOPE_ADMIN && rt->min_role ==
	    ROLE_ADMIN, "the audit log needs the admin scope and role");
	route_find("GET", "/healthz", &rt, &param);
	ok(rt != NULL && rt->auth == AUTH_PUBLIC, "healthz is public");
}

static void
test_ws(void)
{
	const struct route	*rt = NULL;

	is_int(route_find("GET", "/api/v1/ws-echo", &rt, &param), ROUTE_NO_METHOD,
	    "a WebSocket route is not an HTTP GET");
	ok(rt == NULL, "and gives no route");
	is_int(route_find("WS", "/api/v1/ws-echo", &rt, &param), ROUTE_NO_METHOD,
	    "not even with the WS pseudo-method");
	rt = route_find_ws("/api/v1/ws-echo");
	ok(rt != NULL && rt->kind == ROUTE_WS && rt->ws == &ws_echo_ops,
	    "route_find_ws finds ws-echo");
	ok(route_find_ws("/healthz") == NULL, "an HTTP route is not a WS one");
	ok(route_find_ws("/nope") == NULL, "unknown WS path");
}

static void
test_allow(void)
{
	char	 allow[64];

	is_str(route_allow("/healthz", allow, sizeof(allow)), "GET, HEAD",
	    "Allow for /healthz");
	is_str(route_allow("/nope", allow, sizeof(allow)), "",
	    "Allow for an unknown path is empty");
	is_str(route_allow("/healthz", allow, 5), "GET,",
	    "a short buffer truncates, terminated");
}

static void
test_index(void)
{
	const struct route	*rt;
	size_t			 i, n = route_count(), bad = 0;

	ok(n >= 5, "at least the five built-in routes (%zu)", n);
	for (i = 0; i < n; i++) {
		rt = route_at(i);
		if (rt == NULL || route_index(rt) != i)
			bad++;
	}
	is_int(bad, 0, "route_at and route_index round-trip");
	ok(route_at(n) == NULL, "route_at past the end is NULL");
	ok(ROUTE_IDX_STATIC == n && ROUTE_IDX_NONE == n + 1,
	    "pseudo-routes follow the table");
	route_find("GET", "/metrics", &rt, &param);
	ok(rt != NULL && route_at(route_index(rt)) == rt,
	    "a found route's index leads back to it");
	for (i = 0, bad = 0; i < n; i++)
		if ((rt = route_at(i))->name == NULL || rt->path[0] != '/')
			bad++;
	is_int(bad, 0, "every route has a name and an absolute path");
}
