/* SPDX-License-Identifier: MIT */
/* route.c: the route table, the one place routes and their auth live. */
#include <stdio.h>
#include <string.h>

#include "pincer.h"

static bool	path_match(const char *, const char *, const char **);

#define SBX_AUTH	.auth = AUTH_USER, .scopes = SCOPE_SANDBOX, \
			.min_role = ROLE_ADMIN

#define LLM_AUTH	.auth = AUTH_USER, .scopes = SCOPE_LLM
#define LLM_ROUTES(P, N) \
	{ .method = "POST", .path = P "/chat/completions", LLM_AUTH, \
	  .handler = api_llm_chat, .name = N "chat", \
	  .body_max = ROUTE_BODY_LLM }, \
	{ .method = "POST", .path = P "/responses", LLM_AUTH, \
	  .handler = api_llm_responses, .name = N "responses", \
	  .body_max = ROUTE_BODY_LLM }, \
	{ .method = "POST", .path = P "/messages", LLM_AUTH, \
	  .handler = api_llm_messages, .name = N "messages", \
	  .body_max = ROUTE_BODY_LLM }, \
	{ .method = "POST", .path = P "/embeddings", LLM_AUTH, \
	  .handler = api_llm_embeddings, .name = N "embeddings", \
	  .body_max = ROUTE_BODY_LLM }, \
	{ .method = "GET", .path = P "/models", LLM_AUTH, \
	  .handler = api_llm_models, .name = N "models" }

#define CDP_AUTH	.auth = AUTH_USER, .scopes = SCOPE_BROWSER
#define CDP_JSON(M, P) \
	{ .method = M, .path = P, .handler = api_cdp_json, CDP_AUTH, \
	  .name = "cdp_json" }

static const struct route routes[] = {
	{ .method = "GET", .path = "/healthz", .handler = api_healthz,
	  .auth = AUTH_PUBLIC, .name = "healthz" },
	{ .method = "GET", .path = "/readyz", .handler = api_readyz,
	  .auth = AUTH_PUBLIC, .name = "readyz" },
	/* Public only with metrics.public; otherwise the read scope. */
	{ .method = "GET", .path = "/metrics", .handler = api_metrics,
	  .auth = AUTH_USER, .scopes = SCOPE_READ, .name = "metrics" },
	{ .method = "GET", .path = "/api/v1/version", .handler = api_version,
	  .auth = AUTH_PUBLIC, .name = "version" },
	{ .method = "POST", .path = "/api/v1/auth/login", .handler = api_login,
	  .auth = AUTH_PUBLIC, .name = "login" },
	{ .method = "POST", .path = "/api/v1/auth/logout",
	  .handler = api_logout, .auth = AUTH_USER, .name = "logout" },
	{ .method = "POST", .path = "/api/v1/auth/setup", .handler = api_setup,
	  .auth = AUTH_PUBLIC, .name = "setup" },
	{ .method = "GET", .path = "/api/v1/me", .handler = api_me,
	  .auth = AUTH_USER, .name = "me" },
	/* For a reverse proxy's forward-auth (nginx auth_request, Traefik
	 * ForwardAuth, Caddy forward_auth): 200 if the credential holds. */
	{ .method = "GET", .path = "/api/v1/auth/check", .handler = api_healthz,
	  .auth = AUTH_USER, .name = "auth_check" },
	{ .method = "GET", .path = "/api/v1/tokens",
	  .handler = api_tokens_list, .auth = AUTH_USER, .name = "tokens" },
	{ .method = "POST", .path = "/api/v1/tokens",
	  .handler = api_tokens_create, .auth = AUTH_USER, .name = "tokens" },
	{ .method = "DELETE", .path = "/api/v1/tokens/{id}",
	  .handler = api_tokens_revoke, .auth = AUTH_USER,
	  .name = "tokens" },
	{ .method = "GET", .path = "/api/v1/usage", .handler = api_usage,
	  .auth = AUTH_USER, .scopes = SCOPE_READ, .name = "usage" },
	{ .method = "POST", .path = "/api/v1/llm/providers/{name}/test",
	  .handler = api_llm_provider_test, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN,
	  .name = "llm_provider_test" },
	/* The agent: a message in, the turn's events and reply out. */
	{ .method = "POST", .path = "/api/v1/chat", .handler = api_chat,
	  .auth = AUTH_USER, .scopes = SCOPE_CHAT, .name = "chat" },
	{ .method = "GET", .path = "/api/v1/conversations",
	  .handler = api_conversations, .auth = AUTH_USER,
	  .scopes = SCOPE_CHAT, .name = "conversations" },
	{ .method = "GET", .path = "/api/v1/conversations/{id}/messages",
	  .handler = api_conversation_messages, .auth = AUTH_USER,
	  .scopes = SCOPE_CHAT, .name = "conversation_messages" },
	{ .method = "GET", .path = "/api/v1/conversations/{id}/attachments/*",
	  .handler = api_conversation_attachment, .auth = AUTH_USER,
	  .scopes = SCOPE_CHAT, .name = "conversation_attachment" },
	{ .method = "POST", .path = "/api/v1/conversations/{id}/stop",
	  .handler = api_conversation_stop, .auth = AUTH_USER,
	  .scopes = SCOPE_CHAT, .name = "conversation_stop" },
	/* Chat platforms: each kind checks its own signature. */
	{ .method = "POST", .path = "/hooks/{kind}", .handler = api_hook,
	  .auth = AUTH_PUBLIC, .name = "hooks" },
	{ .method = "POST", .path = "/hooks/{kind}/*", .handler = api_hook,
	  .auth = AUTH_PUBLIC, .name = "hooks" },
	{ .method = "GET", .path = "/hooks/{kind}", .handler = api_hook,
	  .auth = AUTH_PUBLIC, .name = "hooks" },
	{ .method = "GET", .path = "/hooks/{kind}/*", .handler = api_hook,
	  .auth = AUTH_PUBLIC, .name = "hooks" },
	{ .method = "GET", .path = "/api/v1/pairing",
	  .handler = api_pairing_list, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN, .name = "pairing" },
	{ .method = "POST", .path = "/api/v1/pairing/{channel}/approve",
	  .handler = api_pairing_approve, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN, .name = "pairing" },
	{ .method = "POST", .path = "/api/v1/pairing/{channel}/deny",
	  .handler = api_pairing_deny, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN, .name = "pairing" },
	{ .method = "GET", .path = "/api/v1/channels",
	  .handler = api_channels, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN, .name = "channels" },
	{ .method = "GET", .path = "/api/v1/system/errors",
	  .handler = api_system_errors, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN,
	  .name = "system_errors" },
	{ .method = "GET", .path = "/api/v1/browser", .handler = api_browser,
	  .auth = AUTH_USER, .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN,
	  .name = "browser" },
	{ .method = "POST", .path = "/api/v1/browser/start",
	  .handler = api_browser_start, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN, .name = "browser" },
	{ .method = "GET", .path = "/api/v1/audit", .handler = api_audit,
	  .auth = AUTH_USER, .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN,
	  .name = "audit" },
	/* The config file and the secrets (admin UI: Settings, LLM,
	 * Channels): only an admin changes what pincerd runs with. */
	{ .method = "GET", .path = "/api/v1/config",
	  .handler = api_config_get, .auth = AUTH_USER, .scopes = SCOPE_ADMIN,
	  .min_role = ROLE_ADMIN, .name = "config" },
	{ .method = "PUT", .path = "/api/v1/config",
	  .handler = api_config_put, .auth = AUTH_USER, .scopes = SCOPE_ADMIN,
	  .min_role = ROLE_ADMIN, .name = "config" },
	{ .method = "GET", .path = "/api/v1/secrets",
	  .handler = api_secrets_list, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN, .name = "secrets" },
	{ .method = "PUT", .path = "/api/v1/secrets/{name}",
	  .handler = api_secret_put, .auth = AUTH_USER, .scopes = SCOPE_ADMIN,
	  .min_role = ROLE_ADMIN, .name = "secrets" },
	{ .method = "DELETE", .path = "/api/v1/secrets/{name}",
	  .handler = api_secret_delete, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN, .name = "secrets" },
	/* People (gateway/api_users.c): admins; owners for owners. */
	{ .method = "GET", .path = "/api/v1/users", .handler = api_users_list,
	  .auth = AUTH_USER, .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN,
	  .name = "users" },
	{ .method = "POST", .path = "/api/v1/users",
	  .handler = api_users_create, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN, .name = "users" },
	{ .method = "PATCH", .path = "/api/v1/users/{name}",
	  .handler = api_users_update, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN, .name = "user" },
	{ .method = "DELETE", .path = "/api/v1/users/{name}",
	  .handler = api_users_delete, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN, .name = "user" },
	{ .method = "GET", .path = "/api/v1/egress/log",
	  .handler = api_egress_log, .auth = AUTH_USER, .scopes = SCOPE_ADMIN,
	  .min_role = ROLE_ADMIN, .name = "egress_log" },
	{ .method = "POST", .path = "/api/v1/system/restart",
	  .handler = api_system_restart, .auth = AUTH_USER,
	  .scopes = SCOPE_ADMIN, .min_role = ROLE_ADMIN,
	  .name = "system_restart" },
	{ .method = "GET", .path = "/api/v1/system/backups",
	  .handler = api_backups, .auth = AUTH_USER, .scopes = SCOPE_ADMIN,
	  .min_role = ROLE_ADMIN, .name = "backups" },
	{ .method = "POST", .path = "/api/v1/system/backups",
	  .handler = api_backups, .auth = AUTH_USER, .scopes = SCOPE_ADMIN,
	  .min_role = ROLE_ADMIN, .name = "backups" },
	/*
	 * Sandboxes: a token needs the sandbox scope, a person at least the
	 * admin role (a member talks to the agent, not to its computer).
	 * Everything under {name}/ but stop is forwarded to the sandbox's
	 * pincer-init (docs/sandbox-api.md).
	 */
	{ .method = "POST", .path = "/api/v1/sandboxes",
	  .handler = api_sandbox_create, SBX_AUTH, .name = "sandboxes_post" },
	{ .method = "GET", .path = "/api/v1/sandboxes",
	  .handler = api_sandbox_list, SBX_AUTH, .name = "sandboxes_get" },
	{ .method = "GET", .path = "/api/v1/sandboxes/{name}",
	  .handler = api_sandbox_get, SBX_AUTH, .name = "sandbox_get" },
	{ .method = "DELETE", .path = "/api/v1/sandboxes/{name}",
	  .handler = api_sandbox_destroy, SBX_AUTH, .name = "sandbox_delete" },
	{ .method = "POST", .path = "/api/v1/sandboxes/{name}/stop",
	  .handler = api_sandbox_stop, SBX_AUTH, .name = "sandbox_stop" },
	{ .method = "GET", .path = "/api/v1/sandboxes/{name}/sync",
	  .handler = api_sandbox_sync, SBX_AUTH, .name = "sandbox_sync_get" },
	{ .method = "POST", .path = "/api/v1/sandboxes/{name}/sync",
	  .handler = api_sandbox_sync, SBX_AUTH, .name = "sandbox_sync_post" },
	{ .method = "GET", .path = "/api/v1/sandboxes/{name}/egress",
	  .handler = api_sandbox_egress, SBX_AUTH,
	  .name = "sandbox_egress_get" },
	{ .method = "PUT", .path = "/api/v1/sandboxes/{name}/egress",
	  .handler = api_sandbox_egress, SBX_AUTH,
	  .name = "sandbox_egress_put" },
	{ .method = "POST", .path = "/api/v1/sandboxes/{name}/exec",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_exec" },
	{ .method = "GET", .path = "/api/v1/sandboxes/{name}/processes",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_processes_get" },
	{ .method = "POST", .path = "/api/v1/sandboxes/{name}/processes",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_processes_post" },
	{ .method = "GET", .path = "/api/v1/sandboxes/{name}/processes/*",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_processes_item_get" },
	{ .method = "POST", .path = "/api/v1/sandboxes/{name}/processes/*",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_processes_item_post" },
	{ .method = "DELETE", .path = "/api/v1/sandboxes/{name}/processes/*",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_processes_item_delete" },
	{ .method = "GET", .path = "/api/v1/sandboxes/{name}/files/*",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_files_item_get" },
	{ .method = "PUT", .path = "/api/v1/sandboxes/{name}/files/*",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_files_item_put",
	  .body_max = SBX_FILE_MAX },
	{ .method = "POST", .path = "/api/v1/sandboxes/{name}/files/*",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_files_item_post" },
	{ .method = "DELETE", .path = "/api/v1/sandboxes/{name}/files/*",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_files_item_delete" },
	{ .method = "GET", .path = "/api/v1/sandboxes/{name}/watch",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_watch" },
	{ .method = "GET", .path = "/api/v1/sandboxes/{name}/terminals",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_terminals_get" },
	{ .method = "DELETE", .path = "/api/v1/sandboxes/{name}/terminals/*",
	  .handler = api_sandbox_forward, SBX_AUTH, .name = "sandbox_terminals_item_delete" },
	/* Snapshots (gateway/snapshot.c): as sandboxes, admin or owner. */
	{ .method = "POST", .path = "/api/v1/sandboxes/{name}/snapshots",
	  .handler = api_snapshot_create, SBX_AUTH,
	  .name = "sandbox_snapshots_post" },
	{ .method = "GET", .path = "/api/v1/sandboxes/{name}/snapshots",
	  .handler = api_snapshot_list, SBX_AUTH,
	  .name = "sandbox_snapshots_get" },
	{ .method = "GET", .path = "/api/v1/snapshots",
	  .handler = api_snapshot_list, SBX_AUTH, .name = "snapshots_get" },
	{ .method = "GET", .path = "/api/v1/snapshots/{id}",
	  .handler = api_snapshot_get, SBX_AUTH, .name = "snapshot_get" },
	{ .method = "DELETE", .path = "/api/v1/snapshots/{id}",
	  .handler = api_snapshot_delete, SBX_AUTH,
	  .name = "snapshot_delete" },
	{ .method = "POST", .path = "/api/v1/snapshots/{id}/restore",
	  .handler = api_snapshot_restore, SBX_AUTH,
	  .name = "snapshot_restore" },
	{ .method = "POST", .path = "/api/v1/snapshots/{id}/fork",
	  .handler = api_snapshot_fork, SBX_AUTH, .name = "snapshot_fork" },
	/*
	 * The CDP bridge: Chromium's debugging port as a sandbox sees it
	 * on 127.0.0.1:9222 (through gateway.sock); the handlers refuse
	 * any other caller.
	 */
	CDP_JSON("GET", "/json/version"), CDP_JSON("GET", "/json/version/"),
	CDP_JSON("GET", "/json"), CDP_JSON("GET", "/json/"),
	CDP_JSON("GET", "/json/list"), CDP_JSON("GET", "/json/list/"),
	CDP_JSON("PUT", "/json/new"), CDP_JSON("GET", "/json/new"),
	CDP_JSON("PUT", "/json/activate/{id}"),
	CDP_JSON("GET", "/json/activate/{id}"),
	CDP_JSON("PUT", "/json/close/{id}"),
	CDP_JSON("GET", "/json/close/{id}"),
	/* The same for an owner's tools, with a token of the browser scope. */
	CDP_JSON("GET", "/cdp/json/version"),
	CDP_JSON("GET", "/cdp/json/version/"),
	CDP_JSON("GET", "/cdp/json"), CDP_JSON("GET", "/cdp/json/"),
	CDP_JSON("GET", "/cdp/json/list"), CDP_JSON("GET", "/cdp/json/list/"),
	CDP_JSON("PUT", "/cdp/json/new"), CDP_JSON("GET", "/cdp/json/new"),
	CDP_JSON("PUT", "/cdp/json/activate/{id}"),
	CDP_JSON("GET", "/cdp/json/activate/{id}"),
	CDP_JSON("PUT", "/cdp/json/close/{id}"),
	CDP_JSON("GET", "/cdp/json/close/{id}"),
	{ .method = "WS", .path = "/cdp/devtools/browser/{id}",
	  .kind = ROUTE_WS, .ws = &cdp_browser_ops, CDP_AUTH,
	  .body_max = ROUTE_BODY_BROWSER, .name = "cdp_browser" },
	{ .method = "WS", .path = "/cdp/devtools/page/{id}",
	  .kind = ROUTE_WS, .ws = &cdp_page_ops, CDP_AUTH,
	  .body_max = ROUTE_BODY_BROWSER, .name = "cdp_page" },
	{ .method = "WS", .path = "/devtools/browser/{id}",
	  .kind = ROUTE_WS, .ws = &cdp_browser_ops, CDP_AUTH,
	  .body_max = ROUTE_BODY_BROWSER, .name = "cdp_browser" },
	{ .method = "WS", .path = "/devtools/page/{id}",
	  .kind = ROUTE_WS, .ws = &cdp_page_ops, CDP_AUTH,
	  .body_max = ROUTE_BODY_BROWSER, .name = "cdp_page" },
	/* Watching a sandbox's browser (gateway/cdp_live.c). */
	{ .method = "GET", .path = "/api/v1/sandboxes/{name}/browser",
	  .handler = api_sandbox_browser, SBX_AUTH,
	  .name = "sandbox_browser" },
	{ .method = "WS", .path = "/api/v1/sandboxes/{name}/browser/live",
	  .kind = ROUTE_WS, .ws = &cdp_live_ops, SBX_AUTH,
	  .name = "sandbox_browser_live" },
	{ .method = "WS", .path = "/api/v1/sandboxes/{name}/terminal",
	  .kind = ROUTE_WS, .ws = &sandbox_terminal_ops, SBX_AUTH,
	  .name = "sandbox_terminal" },
	/*
	 * The LLM proxy (README, LLM proxy): a token with the llm scope or
	 * a session on the public port; inside a sandbox, 127.0.0.1:8080
	 * reaches the same handlers at /v1/… with the sandbox as caller.
	 */
	LLM_ROUTES("/llm/v1", "llm_"),
	LLM_ROUTES("/v1", "sandbox_llm_"),
	/* Kept for tests: proves the WebSocket path end to end. */
	{ .method = "WS", .path = "/api/v1/ws-echo", .kind = ROUTE_WS,
	  .ws = &ws_echo_ops, .auth = AUTH_PUBLIC, .name = "ws_echo" },
};
#define NROUTES	(sizeof(routes) / sizeof(routes[0]))

/* HEAD is GET without a body; libmicrohttpd drops the body itself. */
enum route_match
route_find(const char *method, const char *path, const struct route **out,
    const char **param)
{
	bool		 path_seen = false;
	const char	*p = NULL;
	size_t		 i;

	if (!strcmp(method, "HEAD"))
		method = "GET";
	*param = NULL;
	for (i = 0; i < NROUTES; i++) {
		if (!path_match(routes[i].path, path, &p))
			continue;
		path_seen = true;
		if (routes[i].kind == ROUTE_HTTP &&
		    !strcmp(routes[i].method, method)) {
			*out = &routes[i];
			*param = p;
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
		if (routes[i].kind == ROUTE_WS &&
		    path_match(routes[i].path, path, NULL))
			return &routes[i];
	return NULL;
}

/* The largest body a request may send: the route's own, or the config's. */
long
route_body_max(const char *method, const char *path)
{
	const struct route	*rt;
	const char		*p;
	long			 max = config_current()->max_body_bytes;

	if (route_find(method, path, &rt, &p) != ROUTE_FOUND)
		return max;
	if (rt->body_max == ROUTE_BODY_LLM)
		return config_current()->llm_max_body;
	return rt->body_max > max ? rt->body_max : max;
}

/* The Allow header of a 405 (RFC 9110 §15.5.6). */
const char *
route_allow(const char *path, char *out, size_t outsz)
{
	size_t	 i, n = 0;

	out[0] = '\0';
	for (i = 0; i < NROUTES && n < outsz; i++)
		if (routes[i].kind == ROUTE_HTTP &&
		    path_match(routes[i].path, path, NULL))
			n += (size_t)snprintf(out + n, outsz - n, "%s%s%s",
			    n ? ", " : "", routes[i].method,
			    !strcmp(routes[i].method, "GET") ? ", HEAD" : "");
	return out;
}

/*
 * Every request passes here before its handler; auth.c decides. The one
 * exception is /metrics for a local Prometheus, when the owner says so.
 */
bool
route_allowed(const struct route *rt, struct http_req *r)
{
	if (rt->handler == api_metrics && config_current()->metrics_public)
		return true;
	return auth_route_allowed(rt, r);
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

/*
 * A pattern segment "{name}" matches one non-empty segment of the path;
 * *param points at it in the path (the handler reads up to the next '/'
 * or the end). After it the pattern goes on literally; a final "*"
 * takes the rest of the path, which must not be empty.
 */
static bool
path_match(const char *pat, const char *path, const char **param)
{
	const char	*brace = strchr(pat, '{'), *rest, *seg;
	size_t		 pre, n;

	if (brace == NULL)
		return strcmp(pat, path) == 0;
	pre = (size_t)(brace - pat);
	if (strncmp(pat, path, pre) != 0 || path[pre] == '\0' ||
	    path[pre] == '/')
		return false;
	seg = path + pre;
	rest = strchr(brace, '}') + 1;
	path = seg + strcspn(seg, "/");
	n = strlen(rest);
	if (n > 0 && rest[n - 1] == '*') {
		if (strncmp(rest, path, n - 1) != 0 || path[n - 1] == '\0')
			return false;
	} else if (strcmp(rest, path) != 0)
		return false;
	if (param != NULL)
		*param = seg;
	return true;
}
