/* SPDX-License-Identifier: MIT */
/* pincer.h: the gateway's one internal header, a section per source file. */
#ifndef PINCER_H
#define PINCER_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <jansson.h>

#define PINCER_PRINTF(f, a) __attribute__((format(printf, f, a)))

struct MHD_Connection;
struct MHD_Response;
struct sqlite3;
struct sqlite3_stmt;

/* buf.c */
/*
 * A growable byte buffer with a hard maximum fixed when it is created: every
 * buffer fed from the network has one, so a peer cannot make us allocate
 * without bound. The data is always NUL-terminated (not counted in len).
 */
struct buf {
	char	*data;		/* owned */
	size_t	 len;
	size_t	 cap;
	size_t	 max;
};
void	 buf_init(struct buf *, size_t max);
int	 buf_append(struct buf *, const void *, size_t);
int	 buf_puts(struct buf *, const char *);
int	 buf_printf(struct buf *, const char *, ...) PINCER_PRINTF(2, 3);
void	 buf_reset(struct buf *);
void	 buf_free(struct buf *);
char	*buf_steal(struct buf *);	/* caller frees; buffer is reset */

/* log.c */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_LOGFMT, LOG_JSON };
/*
 * One event, one line. A line is built field by field on the stack, then
 * written with a single write(2) so lines from threads never interleave.
 */
struct logline {
	char	 text[2048];
	size_t	 len;
	bool	 on;
	bool	 truncated;	/* a field did not fit; the line says so */
	enum log_level level;
	/* Kept for the admin UI (log_ring.c): warn and error lines, unless
	 * the caller clears it (a line only the host's owner may read). */
	bool	 keep;
};
void	 log_setup(enum log_level, enum log_format);
bool	 log_enabled(enum log_level);
bool	 log_begin(struct logline *, enum log_level, const char *msg);
void	 log_str(struct logline *, const char *key, const char *val);
void	 log_int(struct logline *, const char *key, long long val);
void	 log_end(struct logline *);
void	 log_msg(enum log_level, const char *msg, const char *fmt, ...)
	    PINCER_PRINTF(3, 4);
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...)	log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)
const char *log_level_name(enum log_level);
/* log_ring.c: the last warnings and errors, for the admin UI */
void	 log_ring_add(const char *text, size_t len, bool json);
json_t	*log_ring_list(int limit, unsigned long long *total);

/* config.c */
struct config {
	char	*listen;
	char	*state_dir;
	int	 log_level;
	int	 log_format;
	bool	 log_requests;
	long	 max_header_bytes;
	long	 max_body_bytes;
	long	 max_connections;
	long	 idle_timeout_s;
	long	 header_timeout_s;
	long	 rate_limit_rps;
	long	 rate_limit_burst;
	long	 http_threads;
	long	 shutdown_timeout_s;
	char	**trusted_proxies;	/* NULL-terminated */
	long	 ws_max_message_bytes;
	char	*admin_ui_dir;
	long	 busy_timeout_ms;
	char	*public_url;
	bool	 metrics_public;
	long	 session_ttl_s;
	long	 skew_s;
	long	 argon2_memory_kib;
	long	 argon2_iterations;
	char	*ext_header;
	char	*ext_cookie;
	char	*ext_jwks_url;
	char	*ext_issuer;
	char	*ext_audience;
	char	*ext_email_claim;
	char	**ext_algorithms;	/* NULL-terminated */
	int	 ext_auto_role;		/* 0 none, 1 member, 2 admin */
	long	 ext_refetch_s;
	char	*sbx_launcher;
	char	*sbx_init;
	char	*sbx_rootfs;
	char	*agent_runtime;
	char	*agent_skills_dir;
	int	 agent_sandbox_scope;	/* 0 owner, 1 conversation, 2 channel */
	long	 agent_max_turns;
	long	 agent_turn_timeout_s;
	char	*agent_command;
	long	 sbx_memory_mb;
	long	 sbx_pids_max;
	long	 sbx_cpu_weight;
	long	 sbx_cpu_quota;
	long	 sbx_tmp_mb;
	long	 sbx_idle_s;
	long	 sbx_max_running;
	long	 sbx_uid_base;
	long	 snap_keep;		/* snapshots.*: per sandbox; 0 all */
	long	 snap_max_age_days;	/* 0: no age limit */
	bool	 snap_on_sleep;
	long	 snap_level;		/* zstd compression level */
	json_t	*llm_providers;		/* owned; llm_conf.c reads them */
	json_t	*llm_routes;
	json_t	*llm_budgets;
	long	 llm_rate_rpm;
	long	 llm_max_attempts;
	long	 llm_retry_base_ms;
	long	 llm_retry_max_wait_s;
	long	 llm_max_body;
	long	 llm_max_answer;
	long	 llm_cache_max_mb;
	long	 llm_cache_entry_kb;
	long	 llm_cache_max_ttl;
	json_t	*channels;		/* owned; channel.c reads them */
	int	 browser_backend;	/* enum browser_backend */
	char	*browser_chromium;
	char	*browser_remote_url;
	char	*browser_remote_token;		/* a secret's name */
	int	 browser_remote_token_in;	/* 0 header, 1 query */
	long	 browser_max_message;
	long	 browser_max_sessions;
	long	 browser_max_sessions_total;
	long	 browser_session_idle_s;
	long	 browser_queue_timeout_s;
	long	 browser_context_idle_s;
	long	 browser_spin_us;
	char	*egress_policy;
	json_t	*egress_policies;	/* owned; egress.c reads them */
	long	 egress_max_connections;
	long	 egress_connect_timeout_s;
	long	 egress_idle_timeout_s;
	char	*egress_upstream_ca_file;
	long	 egress_log_retention_days;
	long	 egress_log_max_rows;
	int	 os_backend;		/* 0 local, 1 s3, 2 off */
	char	*os_path;
	char	*os_endpoint;
	char	*os_region;
	char	*os_bucket;
	char	*os_prefix;
	int	 os_url_style;		/* 0 path, 1 virtual */
	char	*os_access_key;		/* secret names */
	char	*os_secret_key;
	long	 os_part_mb;
	long	 os_max_attempts;
	long	 os_retry_base_ms;
	long	 os_timeout_s;
	long	 os_list_page;
	bool	 sync_enabled;
	long	 sync_debounce_ms;
	long	 sync_max_delay_ms;
	long	 sync_scan_s;
	long	 sync_max_file_mb;
	long	 backup_interval_h;	/* 0: no scheduled backups */
	long	 backup_interval_s;	/* not 0: instead of _h */
	long	 backup_keep;
};
/* Values given on the command line; they win over the file and environment. */
struct config_overrides {
	const char	*config_file;
	const char	*state_dir;
	const char	*listen;
};
/* Errors are collected one per line into err (caller frees). */
struct config	*config_load(const struct config_overrides *, char **err);
struct config	*config_parse(const char *text, size_t len, const char *origin,
		    char **err);
void		 config_free(struct config *);
/* Names of the restart options that differ are appended to changed. */
void		 config_carry_restart(struct config *, const struct config *,
		    json_t *changed);
json_t		*config_describe(const struct config *,
		    const struct config_overrides *);
const char	*config_path(const struct config_overrides *);
void		 config_print_options(void);
/* The live config; replaced by SIGHUP. Old ones live until exit. */
const struct config *config_current(void);
void		 config_publish(struct config *);
void		 config_release_all(void);

/* head.c */
/*
 * What the front door needs from the head of the first request on a
 * connection before it decides which library gets the socket.
 */
enum head_result { HEAD_OK, HEAD_INCOMPLETE, HEAD_BAD };
struct head {
	size_t	 head_len;	/* bytes up to and including CRLF CRLF */
	char	 method[16];
	char	 path[512];	/* raw target without the query string */
	bool	 upgrade_websocket;
	char	 forwarded_for[64];	/* right-most X-Forwarded-For entry */
	bool	 has_length;
	bool	 length_bad;		/* not digits, too big, or two values */
	unsigned long long content_length;
};
enum head_result head_parse(const char *, size_t, struct head *);

/* net.c */
/* An IP address in binary, v4 mapped into v6, as the rate limiter keys it. */
struct ipaddr {
	uint8_t	 b[16];
};
int	 net_parse_listen(const char *, struct sockaddr_storage *, socklen_t *);
bool	 net_is_loopback(const struct sockaddr *);
void	 net_ipaddr(const struct sockaddr *, struct ipaddr *);
int	 net_ipaddr_parse(const char *, struct ipaddr *);
void	 net_ipaddr_str(const struct ipaddr *, char *, size_t);
void	 net_sockaddr_str(const struct sockaddr *, char *, size_t);
bool	 net_cidr_match(const char *cidr, const struct ipaddr *);
void	 net_client_ip(const struct sockaddr *peer, const char *forwarded_for,
	    struct ipaddr *out);
bool	 net_trusted_proxy(const struct sockaddr *);

/* egress.c: the sandboxes' HTTP proxy (127.0.0.1:3128 inside) */
/* The head with which pincer-init hands a 3128 client's socket over
 * (SCM_RIGHTS) on gateway.sock (sandbox/init_fwd.c says the same). */
#define EGRESS_FD_METHOD	"X-PINCER-FD"
int	 egress_start(const struct config *, char *err, size_t);
void	 egress_stop(void);
bool	 egress_wants(const struct head *);
int	 egress_adopt(int fd, const char *sandbox);
void	 egress_metrics(struct buf *);
/* egress_browser.c: a sandbox's browser context goes out through it */
int	 egress_browser_port(const char *sandbox, char *err, size_t);
int	 egress_browser_proxy(const char *sandbox, char *out, size_t,
	    char *err, size_t);
void	 egress_browser_forget(const char *sandbox);
bool	 egress_browser_named(const char *proxy_rules);
void	 egress_browser_stop(void);
/* egress_conf.c: a sandbox's policy, for the API and sbx.c */
json_t	*egress_conf_get(const char *sandbox);
int	 egress_conf_set(const char *sandbox, const char *policy, char *err,
	    size_t);
void	 egress_conf_forget(const char *sandbox);
/* egress_log.c: each request kept in the store (egress.h: adding one) */
int	 egress_log_start(void);
void	 egress_log_stop(void);		/* after egress_stop: writes the rest */
void	 egress_log_flush(void);
void	 egress_log_metrics(struct buf *);

/* door.c */
int	 door_start(const struct config *, char *bound, size_t boundsz);
void	 door_stop_accepting(void);
void	 door_stop(void);
void	 door_conn_closed(void);
int	 door_conn_opened(void);
int	 door_unix_add(int fd);
void	 door_unix_remove(int fd);
long	 door_open_connections(void);
int	 door_reject(int fd, const char *rid, int status, const char *code,
	    const char *msg);

/* http.c */
struct http_req;
typedef void (*http_handler)(struct http_req *);
typedef void (*http_resume_fn)(struct http_req *, void *);
typedef void (*http_done_fn)(void *);
int	 http_start(const struct config *);
int	 http_adopt(int fd, const struct sockaddr *, socklen_t);
void	 http_drain(long timeout_s);
void	 http_stop(void);
bool	 http_draining(void);
long	 http_in_flight(void);
const char *http_req_header(struct http_req *, const char *);
const char *http_req_path(struct http_req *);
const char *http_req_method(struct http_req *);
const char *http_req_id(struct http_req *);
void	 http_req_body(struct http_req *, const char **, size_t *);
struct identity *http_req_identity(struct http_req *);
const char *http_req_header_cb(void *, const char *);
const char *http_req_ip(struct http_req *);
const char *http_req_param(struct http_req *);
const char *http_req_query(struct http_req *, const char *);
bool	 http_req_secure(struct http_req *);
void	 http_req_set_cookie(struct http_req *, const char *cookie,
	    const char *csrf);
const char *http_req_csrf(struct http_req *);
void	 http_reply(struct http_req *, int status, struct MHD_Response *);
void	 http_suspend(struct http_req *, http_resume_fn, http_done_fn,
	    void *);
void	 http_resume(struct http_req *);
void	 http_conn_resume(struct MHD_Connection *);
struct MHD_Connection *http_req_conn(struct http_req *);
struct http_req *http_req_fake(const char *method, const char *url,
	    const char *const *headers, const char *const *query,
	    const void *body, size_t);
void	 http_req_fake_free(struct http_req *);
bool	 http_req_by_socket(struct http_req *);
void	 http_json(struct http_req *, int status, const char *json);
void	 http_text(struct http_req *, int status, const char *text);
char	*http_req_query_string(struct http_req *, size_t max);
void	 http_reply_json(struct http_req *, int status, json_t *);
void	 http_error(struct http_req *, int status, const char *code,
	    const char *fmt, ...) PINCER_PRINTF(4, 5);
void	 http_retry_later(struct http_req *, long secs, const char *code,
	    const char *msg);
void	 http_request_id(char out[17]);
const char *http_status_text(int);
void	 http_error_body(struct buf *, const char *code, const char *msg);

/* route.c */
enum route_kind { ROUTE_HTTP, ROUTE_WS };
/*
 * Who may call a route: anyone, or an identity holding every scope in
 * .scopes and a role of at least .min_role. Checked in auth.c alone.
 */
enum route_auth { AUTH_PUBLIC, AUTH_USER };
struct ws_ops;
struct route {
	const char		*method;	/* "GET", … ; "WS" for upgrades */
	const char		*path;		/* "/a/{x}": one parameter */
	enum route_kind		 kind;
	enum route_auth		 auth;
	unsigned		 scopes;	/* SCOPE_* all required */
	int			 min_role;	/* enum role */
	http_handler		 handler;
	const struct ws_ops	*ws;
	const char		*name;		/* metrics label */
	long			 body_max;	/* over http.max_body_bytes */
};
#define ROUTE_BODY_LLM	(-1L)	/* llm.max_body_bytes */
#define ROUTE_BODY_BROWSER (-2L)	/* browser.max_message_bytes */
enum route_match { ROUTE_FOUND, ROUTE_NO_METHOD, ROUTE_NONE };
enum route_match route_find(const char *method, const char *path,
	    const struct route **, const char **param);
const struct route *route_find_ws(const char *path);
long		 route_body_max(const char *method, const char *path);
const char	*route_allow(const char *path, char *, size_t);
bool		 route_allowed(const struct route *, struct http_req *);
size_t		 route_count(void);
const struct route *route_at(size_t);
/* Pseudo-route indexes for metrics: static files and unmatched paths. */
#define ROUTE_IDX_STATIC	(route_count())
#define ROUTE_IDX_NONE		(route_count() + 1)
size_t		 route_index(const struct route *);

/* api_system.c */
void	 api_healthz(struct http_req *);
void	 api_readyz(struct http_req *);
void	 api_system_restart(struct http_req *);
void	 api_metrics(struct http_req *);
void	 api_version(struct http_req *);
void	 api_system_errors(struct http_req *);	/* log_ring.c */

/* api_config.c */
void	 api_config_get(struct http_req *);
void	 api_config_put(struct http_req *);

/* api_secrets.c */
void	 api_secrets_list(struct http_req *);
void	 api_secret_put(struct http_req *);
void	 api_secret_delete(struct http_req *);

/* api_auth.c */
void	 api_login(struct http_req *);
json_t	*api_body_object(struct http_req *);	/* 400 answered: NULL */
void	 api_logout(struct http_req *);
void	 api_me(struct http_req *);
void	 api_setup(struct http_req *);
void	 api_tokens_list(struct http_req *);
void	 api_tokens_create(struct http_req *);
void	 api_tokens_revoke(struct http_req *);
void	 api_audit(struct http_req *);

/* api_users.c */
void	 api_users_list(struct http_req *);
void	 api_users_create(struct http_req *);
void	 api_users_update(struct http_req *);
void	 api_users_delete(struct http_req *);

/* b64.c */
size_t	 b64url_encode(const void *, size_t, char *);
size_t	 b64url_encoded_len(size_t);
ssize_t	 b64url_decode(const char *, size_t, void *);
ssize_t	 b64_decode(const char *, size_t, void *);

/* jwtv.c */
enum jwtv_error { JWTV_OK, JWTV_MALFORMED, JWTV_ALG, JWTV_KEY,
	JWTV_SIGNATURE, JWTV_EXPIRED, JWTV_NOT_YET, JWTV_IAT, JWTV_ISS,
	JWTV_AUD, JWTV_KID };
struct evp_pkey_st;
struct evp_mac_ctx_st;
struct jwtv_key {
	const char		*alg;	/* the one algorithm this key is for */
	struct evp_mac_ctx_st	*mac;	/* HS256, keyed; owned */
	struct evp_pkey_st	*pkey;	/* RS256, ES256; owned */
};
struct jwtv_expect {
	const char	*iss;		/* NULL: not checked */
	const char	*aud;		/* NULL: not checked */
	long		 skew_s;
	long long	 now;		/* 0: the clock */
};
enum jwtv_error jwtv_verify(const char *, const struct jwtv_key *,
	    const struct jwtv_expect *, json_t **claims);
int	 jwtv_header(const char *, char *, size_t, char *, size_t);
int	 jwtv_key_init(struct jwtv_key *, const char *alg, const void *,
	    size_t);
int	 jwtv_key_from_pkey(struct jwtv_key *, const char *,
	    struct evp_pkey_st *);
void	 jwtv_key_free(struct jwtv_key *);
char	*jwtv_sign_hs256(const unsigned char *, size_t, json_t *);
const char *jwtv_strerror(enum jwtv_error);

/* users.c */
enum role { ROLE_MEMBER, ROLE_ADMIN, ROLE_OWNER };
struct user {
	long long	 id;
	char		 name[65];
	char		 email[256];
	enum role	 role;
	bool		 disabled;
	char		 hash[256];
	long long	 sessions_after;	/* unix s: older sessions end */
};
const char *users_role_name(enum role);
int	 users_role_parse(const char *, enum role *);
bool	 users_name_valid(const char *);
char	*users_hash_password(const char *);
bool	 users_verify_password(const char *, const char *, bool *weaker);
void	 users_dummy_verify(const char *);
int	 users_add(const char *, const char *, enum role, const char *,
	    char **err);
/* The message for a name a deleted person still owns records under. */
#define USERS_NAME_USED "this name was used before: a person deleted " \
	"since still owns conversations or an agent sandbox under it, " \
	"which a new person must not inherit; choose another name"
bool	 users_name_used_before(const char *);
int	 users_find(const char *, struct user *);
int	 users_find_email(const char *, struct user *);
int	 users_get(long long, struct user *);
int	 users_get_session(long long, const char *sid, struct user *,
	    bool *revoked);
int	 users_count(bool owners_only);
int	 users_set_password(const char *, const char *, char **err);
int	 users_set_disabled(const char *, bool);
int	 users_set_role(const char *, enum role);
int	 users_delete(const char *);
int	 users_end_sessions(const char *);
void	 users_touch_login(long long);
json_t	*users_list(void);

/* auth.c */
#define SCOPE_READ	0x1u
#define SCOPE_LLM	0x2u
#define SCOPE_SANDBOX	0x4u
#define SCOPE_ADMIN	0x8u
#define SCOPE_CHAT	0x10u
/* The CDP bridge: a sandbox's own, or /cdp/ for an owner's tools. */
#define SCOPE_BROWSER	0x20u
/*
 * ID_LOCAL: a connection on $state/pincerd.sock (0600: the host account
 * that runs pincerd), the owner with every scope; ID_SANDBOX: one on a
 * sandbox's gateway.sock, the sandbox named in .user, scope llm only.
 */
enum id_kind { ID_NONE, ID_SESSION, ID_TOKEN, ID_EXTERNAL, ID_LOCAL,
	ID_SANDBOX };
struct identity {
	enum id_kind	 kind;
	long long	 user_id;
	char		 user[65];
	char		 email[256];
	enum role	 role;
	unsigned	 scopes;
	char		 sid[33];	/* sessions */
	long long	 exp;		/* unix seconds; 0: never */
	char		 token_id[16];	/* tokens */
};
/* Where auth reads headers from: an HTTP request or a WebSocket upgrade. */
struct auth_in {
	const char	*(*header)(void *, const char *);
	void		*ctx;
	const char	*ip;		/* for the audit log */
};
int	 auth_init(const char *state_dir);
void	 auth_shutdown(void);
unsigned auth_scopes_parse(const char *);
int	 auth_scopes_check(const char *);
void	 auth_scopes_format(unsigned, char *, size_t);
unsigned auth_role_scopes(enum role);
int	 auth_identify(const struct auth_in *, struct identity *);
/*
 * Who a connection is by the socket that accepted it: 1 and *id set for
 * pincerd.sock or a sandbox's gateway.sock; 0 for a TCP connection (the
 * credentials decide); -1 for a Unix socket nobody owns (refuse).
 */
int	 auth_socket_identity(int fd, struct identity *);
int	 auth_path_identity(const char *path, struct identity *);
const char *auth_local_socket(void);	/* $state/pincerd.sock */
void	 auth_set_local_socket(const char *bound);
bool	 auth_route_allowed(const struct route *, struct http_req *);
enum auth_verdict { AUTH_OK, AUTH_NEED, AUTH_INVALID, AUTH_FORBIDDEN };
enum auth_verdict auth_route_check(const struct route *,
	    const struct auth_in *, bool by_socket, struct identity *);
int	 auth_session_issue(struct http_req *, const struct user *,
	    const char *sid);
void	 auth_session_renew(struct http_req *, const struct identity *);
void	 auth_session_clear(struct http_req *);
int	 auth_session_revoke(const struct identity *);
void	 auth_csrf_token(const char *sid, char *, size_t);
void	 auth_setup_code_announce(void);
int	 auth_setup_code_use(const char *);
bool	 auth_configured(const struct config *);
void	 auth_invalidate(void);
void	 auth_notify_daemon(const char *state_dir);

/* jwks.c */
typedef int (*jwks_fetch_fn)(const char *url, struct buf *out);
int	 jwks_identify(const char *, const char *ip, struct identity *);
void	 jwks_set_fetcher(jwks_fetch_fn);
long	 jwks_fetch_count(void);

/* tokens.c */
char	*tokens_create(long long user_id, const char *name, unsigned scopes,
	    long ttl_s, char *id_out, size_t idsz, char **err);
bool	 tokens_looks_like(const char *);
int	 tokens_verify(const char *, const char *ip, struct identity *);
void	 tokens_touch(const char *);
int	 tokens_revoke(const char *, long long user_id);
json_t	*tokens_list(long long user_id);

/* throttle.c */
long	 throttle_wait(const char *kind, const char *value);
void	 throttle_fail(const char *kind, const char *value);
void	 throttle_clear(const char *kind, const char *value);

/* secrets.c */
#define SECRETS_MAX	65536	/* the largest value */
int	 secrets_init(const char *state_dir);
void	 secrets_shutdown(void);
bool	 secrets_name_valid(const char *);
int	 secrets_set(const char *name, const void *, size_t, char **err);
/* out: buf_init(out, SECRETS_MAX + 64); the caller wipes it after use. */
int	 secrets_get(const char *name, struct buf *out);
int	 secrets_delete(const char *name);
json_t	*secrets_list(void);

/* audit.c */
void	 audit_add(const char *actor, const char *ip, const char *action,
	    const char *target, const char *detail);
struct audit_query {
	long long	 before;	/* an entry id; 0: from the newest */
	int		 limit;
	const char	*actor;		/* NULL or "": any */
	const char	*action;	/* a prefix */
	const char	*since;		/* ISO 8601 UTC, inclusive */
	const char	*until;		/* exclusive */
};
json_t	*audit_page(const struct audit_query *, long long *next);
bool	 audit_time_valid(const char *);

/* objstore.c: object storage (README, Object storage). One interface, two
 * backends: objstore_local.c (a folder) and objstore_s3.c (S3 over libcurl).
 * Every call blocks: run them on worker threads, never on a loop thread. A
 * store is shared by threads. Keys are relative ("data/box/notes.md"): no
 * leading '/', no "." or ".." segment, no empty segment, no control byte,
 * at most OS_KEY_MAX bytes; objstore.prefix is put in front of them. */
#define OS_KEY_MAX	900
#define OS_ERR		256	/* the size of every err buffer */
enum os_status {
	OS_OK = 0,
	OS_FAIL = -1,		/* refused or broken; err says why */
	OS_NOTFOUND = -2,
	OS_RETRY = -3,		/* transient (5xx, 429, network): retried by
				   objstore_retry; returned when attempts ran
				   out */
};
struct os_meta {
	long long	 size;
	long long	 mtime;		/* seconds since the epoch */
	char		 etag[80];	/* opaque version; compare only for
					   equality, same store and key */
	char		 sha256[65];	/* of the content, lowercase hex;
					   "" when the object has none */
};
struct objstore;
struct objstore_ops {
	const char	*kind;
	/* Full keys (prefix in). Each retries what is transient itself
	   (objstore_retry); fd -1 in get: into mem. */
	int	(*put)(struct objstore *, const char *key, int fd,
		    long long size, const char *sha256, struct os_meta *,
		    char *err);
	int	(*get)(struct objstore *, const char *key, int fd,
		    struct buf *mem, struct os_meta *, char *err);
	int	(*head)(struct objstore *, const char *key, struct os_meta *,
		    char *err);
	/* One page of keys under prefix, after the key or token *after
	   ("" first); *next gets the token of the next page, "" at the end. */
	int	(*list)(struct objstore *, const char *prefix,
		    const char *after, size_t max,
		    int (*each)(const char *key, const struct os_meta *,
		    void *), void *arg, char *next, size_t nextsz,
		    char *err);
	int	(*del)(struct objstore *, const char *key, char *err);
	void	(*free)(struct objstore *);
};
struct objstore {
	const struct objstore_ops	*ops;
	void		*impl;		/* the backend's */
	char		*prefix;	/* "" or ending in '/' */
	long		 max_attempts;
	long		 retry_base_ms;
	size_t		 list_page;
	long long	 part_size;	/* multipart above this (s3) */
	char		 where[256];	/* for messages: "local /x", "s3 …" */
};
/* From config: NULL with err when it is wrong or a secret is missing;
 * NULL with err "" when objstore.backend is off. */
struct objstore *objstore_open(const struct config *, char *err);
void	 objstore_close(struct objstore *);
/* pincerd's store, set at start (NULL: off); set returns the old one. */
struct objstore *objstore_shared(void);
struct objstore *objstore_shared_set(struct objstore *);
bool	 objstore_key_valid(const char *key, char *err);
/* Streams fd (a regular file, read from offset 0, size bytes) to key;
 * sha256 NULL: computed here first. Large files go up in parts. */
int	 objstore_put(struct objstore *, const char *key, int fd,
	    struct os_meta *, char *err);
/* The same, with the content's hash already known (not checked). */
int	 objstore_put_sha(struct objstore *, const char *key, int fd,
	    const char *sha256, struct os_meta *, char *err);
int	 objstore_put_mem(struct objstore *, const char *key, const void *,
	    size_t, struct os_meta *, char *err);
/* Into fd (a regular file; truncated to 0 first and on each retry). */
int	 objstore_get(struct objstore *, const char *key, int fd,
	    struct os_meta *, char *err);
/* Into mem (buf_init'ed by the caller, whose max caps the object). */
int	 objstore_get_mem(struct objstore *, const char *key, struct buf *,
	    struct os_meta *, char *err);
int	 objstore_head(struct objstore *, const char *key, struct os_meta *,
	    char *err);
/* Every key under prefix, in byte order, page after page; each returning
 * non-zero stops the walk and is returned. */
int	 objstore_list(struct objstore *, const char *prefix,
	    int (*each)(const char *key, const struct os_meta *, void *),
	    void *arg, char *err);
/* A missing key is not an error (as in S3). */
int	 objstore_delete(struct objstore *, const char *key, char *err);
/* For backends: runs one until it returns other than OS_RETRY, at most
 * max_attempts times, sleeping retry_base_ms doubled each time (jittered,
 * or retry_after_ms when the answer named one). */
int	 objstore_retry(struct objstore *, int (*one)(void *, long *retry_ms,
	    char *err), void *arg, char *err);
/* SHA-256 of a regular file's first size bytes (pread), lowercase hex. */
int	 objstore_sha256_fd(int fd, long long size, char out[65]);
int	 objstore_sha256_end(void *evp_md_ctx, char out[65]);
/* The backends' constructors (objstore_open picks one). */
int	 objstore_local_init(struct objstore *, const struct config *,
	    char *err);
int	 objstore_s3_init(struct objstore *, const struct config *,
	    char *err);

/* objstore_tree.c: a sandbox's /data as the host sees it, for the sync */
#define TREE_TMP	".pincer-sync."	/* files of ours: never synced */
struct tree {
	const char	*dir;		/* the host folder */
	unsigned	 base;		/* host id of the sandbox's root */
	bool		 chown;		/* pincerd may give files away */
	long long	 max_file;	/* larger files are not synced */
};
struct tree_stats {
	long		 files, dirs, links, skipped, hashed;
	long long	 bytes, hashed_bytes;
};
int	 tree_open_dir(const struct tree *, const char *rel, bool create);
void	 tree_split(const char *path, char *dir, size_t, const char **name);
int	 tree_sha256_fd(int fd, char sha[65]);
/* path -> entry (see the file's comment); cache: the last scan's, or
 * NULL; *new_cache: this scan's, for the next. err: a non-fatal note. */
json_t	*tree_scan(const struct tree *, json_t *cache, json_t **new_cache,
	    struct tree_stats *, char *err, size_t);
/* The file at path into out (emptied first), hashed as it is copied. */
int	 tree_copy_file(const struct tree *, const char *path, int out,
	    char sha[65], long long *size);
/* The last folder used, kept open: files come in path order. */
struct tree_dir {
	char	 rel[4096];
	int	 fd;		/* -1 at first */
};
void	 tree_dir_close(struct tree_dir *);
void	 tree_cache_key(const struct stat *, char key[96]);
int	 tree_install_file(const struct tree *, struct tree_dir *,
	    const char *path, json_t *entry, int (*fill)(int fd, void *),
	    void *arg, char key[96]);
int	 tree_install_other(const struct tree *, const char *path,
	    json_t *entry);
int	 tree_remove(const struct tree *, const char *path, bool folder);
int	 tree_rename(const struct tree *, const char *from, const char *to);
int	 tree_flush(const struct tree *);	/* syncfs of the folder */

/* objstore_sync.c: each sandbox's /data kept in the object store */
int	 objstore_sync_start(const struct config *, struct objstore *);
void	 objstore_sync_shutting(void);	/* before sbx_shutdown */
void	 objstore_sync_stop(void);
/* From sbx.c: never block; "wake" and "forget" wait for a running sync
 * and are called without sbx.c's lock. */
void	 objstore_sync_started(const char *name);
void	 objstore_sync_stopped(const char *name);
void	 objstore_sync_wake(const char *name);
void	 objstore_sync_forget(const char *name);	/* then: */
void	 objstore_sync_forgotten(const char *name);
json_t	*objstore_sync_status(const char *name);
json_t	*objstore_sync_now(const char *name, char *err, size_t);
/* backup.c: pincer.db copied whole into the object store under
 * backups/db/ (README, Backups): ID.sqlite, then ID.json, its manifest; a
 * copy without a manifest is not a backup. IDs sort as their times. */
#define BACKUP_PREFIX	"backups/db/"
#define BACKUP_ID_MAX	32	/* "20261202T031500.123Z-1a2b3c" */
#define BACKUP_ERR	512	/* the size of every err buffer */
#define BACKUP_BUSY	(-2)	/* another backup or restore is running */
struct backup_info {
	char		 id[BACKUP_ID_MAX];
	long long	 created_ms;	/* unix milliseconds */
	long long	 size;		/* of the copy, bytes */
	char		 sha256[65];
	int		 schema;	/* the highest migration applied */
	char		 version[32];	/* of the pincer that made it */
	long		 ms;		/* backup_now: how long it took */
	size_t		 removed;	/* backup_now: old ones deleted */
};
/* An ID seen under backups/db/, for listing and retention. */
struct backup_entry {
	char		 id[BACKUP_ID_MAX];
	long long	 size;		/* ID.sqlite's; -1: missing */
	bool		 manifest;	/* ID.json is there */
	bool		 drop;		/* backup_prune's verdict */
};
/* Copy, check, upload, then retention (backup.keep). Blocks: a worker
 * thread or the CLI. Another backup of the same state folder running is
 * BACKUP_BUSY, not a wait. */
int	 backup_now(const struct config *, struct objstore *,
	    struct backup_info *, char *err);
void	 backup_cancel(bool);	/* true: backup_now stops before upload */
/* Every ID under backups/db/, oldest first; *out: caller frees. */
int	 backup_scan(struct objstore *, struct backup_entry **out, size_t *n,
	    char *err);
/* The newest complete backup; NULL when there is none. */
const struct backup_entry *backup_latest(const struct backup_entry *,
	    size_t);
/* The complete backups, oldest first, as the API shows them (manifests
 * read); *incomplete: copies without a manifest. NULL: err says why. */
json_t	*backup_list_json(struct objstore *, size_t *incomplete, char *err);
/* Marks what retention deletes (pure): complete backups older than the
 * newest keep, and leftovers older than the newest complete one; never
 * keep_id (may be NULL). Returns how many are marked. */
size_t	 backup_prune(struct backup_entry *, size_t, long keep,
	    const char *keep_id);
int	 backup_manifest(struct objstore *, const char *id,
	    struct backup_info *, char *err);
bool	 backup_id_valid(const char *);
long long backup_id_ms(const char *);	/* its time; -1: not an ID */
/* STATE/backup.lock held (flock) by one backup or restore at a time:
 * its fd, -1 (err), or BACKUP_BUSY. */
int	 backup_lock(const char *state_dir, char *err);
/* integrity_check and the schema version of a database file. */
int	 backup_verify_file(const char *path, int *schema, char *err);

/* backup_sched.c: pincerd's scheduled backups (backup.interval_h), and
 * the API's, run on the same thread. */
struct backup_job {
	bool		 list;		/* else: a backup now */
	void		(*done)(struct backup_job *);	/* on that thread */
	int		 rc;		/* 0, -1, BACKUP_BUSY; BACKUP_OFF */
	char		 err[BACKUP_ERR];
	struct backup_info info;	/* a backup's */
	json_t		*backups;	/* a list's; the job owns it */
	size_t		 incomplete;
	struct backup_job *next;
};
#define BACKUP_OFF	(-3)	/* no thread: objstore off, or stopping */
int	 backup_start(const struct config *);
void	 backup_stop(void);
/* Queued for the thread; -1 (BACKUP_OFF in rc, done not called): none
 * runs. After backup_stop, a job still queued gets BACKUP_OFF. */
int	 backup_submit(struct backup_job *);

/* api_backup.c: GET and POST /api/v1/system/backups (admin) */
void	 api_backups(struct http_req *);

/* backup_restore.c */
/* Downloads ID into STATE/.restore-ID.sqlite (tmp) and checks it against
 * its manifest (size, SHA-256), integrity_check and the schema this
 * pincer knows. */
int	 backup_fetch(struct objstore *, const char *state_dir,
	    const char *id, struct backup_info *, char *tmp, size_t,
	    char *err);
/* Moves tmp into place as STATE/pincer.db; the one there is kept as
 * pincer.db.before-restore-TIME (its name into kept, "" if none). */
int	 backup_install(const char *state_dir, const char *tmp, char *kept,
	    size_t, char *err);

/* cli_backup.c */
int	 cli_backup(const struct config_overrides *, int, char **);

/* cli.c */
int	 cli_user(const struct config_overrides *, int, char **);
int	 cli_token(const struct config_overrides *, int, char **);
int	 cli_store_open(const struct config_overrides *);
void	 cli_store_close(void);
int	 cli_secret(const struct config_overrides *, int, char **);
int	 cli_objstore(const struct config_overrides *, int, char **);

/* cli_sandbox.c */
#define CLI_USAGE	(-2)	/* wrong arguments: print the usage, exit 2 */
int	 cli_sandbox_cmd(const struct config_overrides *, int, char **);

/* cli_shell.c */
/* `pincer sandbox shell NAME [--id ID]`: argv[0] is NAME. */
int	 cli_shell(const char *state_dir, int argc, char **argv);

/* static.c */
void	 static_serve(struct http_req *, const char *root);

/* ws.c */
/*
 * A WebSocket session: one a client opened on a WebSocket route, or one
 * pincerd opened itself over a Unix socket (ws_connect). Everything here
 * runs on ws.c's one service thread, handlers included.
 */
struct ws_session;
/* Why an upgrade is refused before it is answered: an HTTP status. */
struct ws_refusal {
	int		 status;
	const char	*code;
	char		 msg[256];
};
struct ws_ops {
	/* Before the upgrade, side-effect free: false refuses it. */
	bool	(*on_upgrade)(struct ws_session *, struct ws_refusal *);
	/* The handshake is done; -1 closes the session (1011). */
	int	(*on_open)(struct ws_session *);
	void	(*on_message)(struct ws_session *, const void *, size_t,
		    bool binary);
	/* Everything queued has been written (a relay reads again). */
	void	(*on_drain)(struct ws_session *);
	/*
	 * Once per session that was opened (or, for ws_connect, tried):
	 * the peer's close code (RFC 6455 §7.1.5), the one we sent, or
	 * 1006 when the connection ended without one. The session is
	 * freed after this returns.
	 */
	void	(*on_close)(struct ws_session *, int code, const char *reason);
	/* Ping the peer when quiet; its pongs keep the session alive. */
	bool	 keepalive;
};
int	 ws_start(const struct config *);
int	 ws_adopt(int fd);
void	 ws_stop(void);
long	 ws_sessions(void);
int	 ws_send(struct ws_session *, const void *, size_t, bool binary);
size_t	 ws_queued(const struct ws_session *);
void	 ws_spin(unsigned us);	/* service thread: poll, do not sleep */
void	 ws_pause(struct ws_session *, bool);
void	 ws_close(struct ws_session *, int code, const char *reason);
struct ws_session *ws_connect(const char *unix_path, const char *uri,
	    const struct ws_ops *, void *user);
/* The same to a ws:// or wss:// URL (a platform's socket); TLS checked
 * against the system's CAs. Both: on the service thread (a ws_post job
 * or a ws_ops callback). */
struct ws_session *ws_connect_url(const char *url, const struct ws_ops *,
	    void *user);
struct ws_dial {
	size_t	 msg_max;	/* 0: ws.c's own limit for its connections */
	bool	 no_origin;
	const char *auth;	/* an Authorization value (copied, wiped) */
};
struct ws_session *ws_dial_url(const char *url, const struct ws_dial *,
	    const struct ws_ops *, void *user);
/* Work handed to the service thread from another (caller owns it). */
struct ws_job {
	void		(*fn)(void *);
	void		*arg;
	struct ws_job	*next;
};
void	 ws_post(struct ws_job *);
void	*ws_user(const struct ws_session *);
void	 ws_set_user(struct ws_session *, void *);
const char *ws_path(const struct ws_session *);	/* percent-decoded */
const char *ws_query(const struct ws_session *);	/* re-encoded */
const char *ws_ip(const struct ws_session *);
const struct identity *ws_identity(const struct ws_session *);
extern const struct ws_ops ws_echo_ops;
/* ws_frame.c: RFC 6455 data frames, for ws.c's writes of several */
size_t	 ws_frame_len(size_t n, bool masked);
size_t	 ws_frame_put(unsigned char *, const void *, size_t, bool binary,
	    const unsigned char *mask);

/* term.c: the sandbox terminal, relayed to pincer-init */
extern const struct ws_ops sandbox_terminal_ops;

/* sbx.c: the sandbox manager */
/*
 * Sandboxes have names; each is a folder $state/sandboxes/<name>/ and a
 * row in the store. A running one is a pincer-sandbox launcher (a child
 * of pincerd) whose PID 1 is pincer-init; pincerd holds the listening
 * gateway.sock of each and passes it the listening control.sock.
 */
#define SBX_NAME_MAX	63
#define SBX_FILE_MAX	(64L << 20)	/* PUT …/files: as pincer-init's */
enum sbx_err { SBX_OK, SBX_NOT_FOUND, SBX_BAD_NAME, SBX_EXISTS, SBX_LIMIT,
	SBX_FAILED, SBX_UNAVAILABLE, SBX_BUSY };
/* A hold on a running sandbox: it does not go to sleep while held. */
struct sbx_ref {
	char	 name[SBX_NAME_MAX + 1];
	char	 control[512];	/* host path of its control.sock */
	bool	 held;
};
int	 sbx_init(const struct config *);
void	 sbx_shutdown(void);
bool	 sbx_name_valid(const char *);
bool	 sbx_path_name(const char *path, char *, size_t);
enum sbx_err sbx_create(const char *name, const char *by, bool *created);
enum sbx_err sbx_acquire(const char *name, struct sbx_ref *);
void	 sbx_release(struct sbx_ref *);
enum sbx_err sbx_stop(const char *name);
enum sbx_err sbx_destroy(const char *name);
json_t	*sbx_info(const char *name);	/* NULL: no such sandbox */
json_t	*sbx_list(void);
const char *sbx_strerror(enum sbx_err);
int	 sbx_http_status(enum sbx_err);
/* The sandbox whose gateway.sock is this path, if any. */
bool	 sbx_by_socket(const char *path, char *name, size_t);
long	 sbx_running(void);
long	 sbx_uid_base(const char *name);	/* -1: no such sandbox */
const char *sbx_refusal(void);	/* why sandboxes cannot start, or NULL */
/* Kept asleep while snapshot.c reads or replaces its folder (sbx.c). */
enum sbx_err sbx_pin(const char *name, bool stop, bool *cancel,
	    long long *slot, bool *was_running);
void	 sbx_unpin(const char *name);
void	 sbx_on_sleep(void (*)(const char *name));

/* launch.c: the host side of a sandbox */
struct launch_spec {
	const char	*dir;		/* $state/sandboxes/<name> */
	const char	*name;		/* its hostname */
	const char	*cgroup;	/* its cgroups' name */
	long long	 uid_base;	/* as root: host uid of its root */
	int		 control_fd;	/* listening control.sock */
};
pid_t	 launch_spawn(const struct launch_spec *, int *out, char *err,
	    size_t);
int	 launch_bind(const char *dir, const char *file, int *run_fd,
	    char *bound, size_t, char *err, size_t);
const char *launch_probe(const struct config *);
void	 launch_exe_path(const char *conf, const char *prog, char *,
	    size_t);
int	 launch_rm_tree(int dfd, const char *name);
void	 launch_cgroup_stats(const char *cgroup, json_t *);

/* relay.c: requests forwarded to a sandbox's control.sock */
/*
 * Writes the request to pincer-init and suspends the client's
 * connection; a pump thread reads the answer and resumes it, so a long
 * exec or an endless SSE stream holds no thread. The ref is released
 * when the exchange ends.
 */
int	 relay_start(void);
void	 relay_end_all(bool streams_only);
void	 relay_stop(void);
void	 relay_forward(struct http_req *, struct sbx_ref *, const char *path,
	    const char *query);
long	 relay_active(void);
/* Connect to a control socket; -1 with errno. */
int	 relay_connect(const char *path);

/* api_sandbox.c */
void	 api_sandbox_create(struct http_req *);
void	 api_sandbox_list(struct http_req *);
void	 api_sandbox_get(struct http_req *);
void	 api_sandbox_destroy(struct http_req *);
void	 api_sandbox_stop(struct http_req *);
void	 api_sandbox_sync(struct http_req *);
void	 api_sandbox_egress(struct http_req *);
void	 api_sandbox_forward(struct http_req *);

/* api_egress.c */
void	 api_egress_log(struct http_req *);

/*
 * snapshot.c: sandbox snapshots (README, Snapshots): a sandbox's writable
 * state (upper, workspace, data) as one tar (pax) + zstd archive and a
 * manifest in the object store. The HTTP handlers park the request and
 * two threads of snapshot.c's own do the work.
 */
int	 snapshot_start(const struct config *);
void	 snapshot_stop(void);
void	 api_snapshot_create(struct http_req *);
void	 api_snapshot_list(struct http_req *);
void	 api_snapshot_get(struct http_req *);
void	 api_snapshot_delete(struct http_req *);
void	 api_snapshot_restore(struct http_req *);
void	 api_snapshot_fork(struct http_req *);

/* snap_pack.c, snap_unpack.c: the archive, on the host side */
#define SNAP_PATH_MAX	4096	/* bytes of a path in the archive */
#define SNAP_NOBODY	65534	/* an id the sandbox cannot map */
/* Host ids of a sandbox's inner 0 and how many are mapped (as root:
 * 65536 from sandbox.uid_base + slot * 65536; otherwise pincerd's). */
struct snap_ids {
	long long	 uid;
	long long	 gid;
	long long	 count;
};
struct snap_stats {
	long long	 files;		/* entries */
	long long	 bytes;		/* of file content */
	long long	 skipped;	/* sockets; xattrs not settable */
};
extern const char *const snap_parts[];	/* "upper", "workspace", "data" */
bool	 snap_xattr_kept(const char *name);
/* cancel: polled; set, the work stops with err "cancelled". */
int	 snap_pack(int sbx_dirfd, const struct snap_ids *, int out,
	    int level, const bool *cancel, struct snap_stats *, char *err,
	    size_t);
/* enum snap_err: SNAP_DAMAGED when the archive is at fault. */
int	 snap_unpack(int in, int stage_dirfd, const struct snap_ids *,
	    const bool *cancel, struct snap_stats *, char *err, size_t);
int	 snap_swap(int sandboxes_dirfd, const char *name, const char *stage,
	    const struct snap_ids *, char *err, size_t);

/* snap_store.c: snapshots/<id>/{state.tar.zst,manifest.json} */
#define SNAP_ID_MAX	(SBX_NAME_MAX + 25)
#define SNAP_ARCHIVE	"state.tar.zst"
#define SNAP_MANIFEST	"manifest.json"
enum snap_err { SNAP_OK, SNAP_DAMAGED, SNAP_STORE, SNAP_FAILED };
bool	 snap_store_id_valid(const char *id, char *sandbox, size_t);
void	 snap_store_new_id(const char *sandbox, long long ms, char *id,
	    size_t);
long long snap_store_id_ms(const char *id);
int	 snap_store_put(struct objstore *, const char *id, int fd,
	    json_t *manifest, char *err);
json_t	*snap_store_manifest(struct objstore *, const char *id, int *rc,
	    char *err);
int	 snap_store_fetch(struct objstore *, const json_t *manifest, int fd,
	    char *err);
json_t	*snap_store_list(struct objstore *, const char *sandbox, char *err);
int	 snap_store_delete(struct objstore *, const char *id, char *err);
int	 snap_store_expire(struct objstore *, const char *sandbox, long keep,
	    long max_age_days, const char *keep_id, char *err);

/* llm_conf.c: providers, routes and budgets, parsed once per config */
enum llm_kind { LLM_OPENAI, LLM_ANTHROPIC, LLM_COMPAT };
/* The API a client speaks (the endpoint it called). */
enum llm_api { LLM_API_CHAT, LLM_API_RESPONSES, LLM_API_MESSAGES,
	LLM_API_EMBEDDINGS, LLM_API_MODELS };
struct llm_price {
	char	*model;		/* owned */
	double	 input;		/* USD per 1M tokens */
	double	 output;
	double	 cached;	/* cache reads; <0: as input */
};
struct llm_provider {
	char		*name;		/* owned, all below too */
	enum llm_kind	 kind;
	char		*base_url;	/* no trailing '/' */
	char		*key;		/* a secret's name; NULL: none */
	char		**headers;	/* "Name: value", NULL-terminated */
	char		**models;	/* NULL-terminated */
	long		 timeout_ms;	/* to the answer's head */
	struct llm_price *prices;
	size_t		 nprices;
};
struct llm_target {
	const struct llm_provider *provider;
	char		*model;		/* owned */
};
struct llm_route {
	char		*name;		/* owned */
	struct llm_target *targets;	/* in order of preference */
	size_t		 ntargets;
	long		 cache_ttl_s;	/* 0: not cached unless asked */
};
/*
 * A budget. caller "all": every call together; "each": every caller
 * separately; else one caller ("user:NAME", "token:ID", "sandbox:NAME").
 * Days and months are UTC. A cap of 0 is no cap.
 */
enum llm_period { LLM_DAY, LLM_MONTH };
struct llm_budget {
	char		*caller;	/* owned */
	enum llm_period	 period;
	long long	 tokens;	/* input + output */
	double		 usd;
};
struct llm_conf {
	struct llm_provider *providers;
	size_t		 nproviders;
	struct llm_route *routes;
	size_t		 nroutes;
	struct llm_budget *budgets;
	size_t		 nbudgets;
	long		 rate_limit_rpm;	/* per caller; 0: none */
};
/* The parsed form of config_current()'s llm section; lives until exit. */
const struct llm_conf *llm_conf_get(void);
/* NULL and err when the section is wrong: config.c checks with it. */
struct llm_conf *llm_conf_build(const struct config *, char *err, size_t);
void	 llm_conf_free(struct llm_conf *);
const struct llm_price *llm_conf_price(const struct llm_provider *,
	    const char *model);
void	 llm_conf_free_all(void);

/* sse.c: Server-Sent Events split as they arrive (WHATWG HTML §9.2.6) */
struct sse;
struct sse_event {
	const char	*event;		/* "" when the event had no name */
	const char	*data;		/* lines joined by '\n', NUL-ended */
	size_t		 data_len;
	const char	*raw;		/* the event's bytes as received */
	size_t		 raw_len;
};
typedef int (*sse_fn)(void *, const struct sse_event *);
struct sse *sse_new(size_t max_event);
/* Calls fn for each complete event; -1 when one is over max_event or
 * fn returned -1. */
int	 sse_feed(struct sse *, const char *, size_t, sse_fn, void *);
void	 sse_free(struct sse *);

/* xlate.c: OpenAI chat completions <-> Anthropic messages */
struct llm_tokens {
	long long	 in;		/* every input token, cached ones too */
	long long	 out;
	long long	 cached;	/* input tokens read from a cache */
	bool		 seen;		/* the provider reported usage */
};
/* Requests, with the upstream's model set; NULL and err (for a 400). */
json_t	*xlate_req_chat_to_anthropic(json_t *, const char *model, char *err,
	    size_t);
json_t	*xlate_req_anthropic_to_chat(json_t *, const char *model, char *err,
	    size_t);
/* Whole answers; NULL when the upstream's is not what its API says. */
json_t	*xlate_resp_anthropic_to_chat(json_t *);
json_t	*xlate_resp_chat_to_anthropic(json_t *);
/* Streams: upstream events in, the client's SSE out. */
enum xlate_dir { XLATE_ANTHROPIC_TO_CHAT, XLATE_CHAT_TO_ANTHROPIC };
struct xlate_stream;
struct xlate_stream *xlate_stream_new(enum xlate_dir, bool chat_usage);
int	 xlate_stream_event(struct xlate_stream *, const struct sse_event *,
	    struct buf *out);
int	 xlate_stream_end(struct xlate_stream *, bool complete,
	    struct buf *out);
void	 xlate_stream_tokens(const struct xlate_stream *,
	    struct llm_tokens *);
void	 xlate_stream_free(struct xlate_stream *);
/* Usage as the upstream's API reports it. */
void	 xlate_tokens_json(enum llm_api, json_t *, struct llm_tokens *);
void	 xlate_tokens_event(enum llm_api, const struct sse_event *,
	    struct llm_tokens *);
bool	 xlate_chat_usage_only(const struct sse_event *);
/* Errors in the client's API: one of ours, or the upstream's. */
char	*xlate_error(enum llm_api, int status, const char *code,
	    const char *msg);
char	*xlate_error_upstream(enum llm_api client, enum llm_api upstream,
	    int status, const char *body, size_t);
void	 xlate_stream_error(enum llm_api, const char *msg, struct buf *);
const char *xlate_finish_to_stop(const char *);	/* NULL: end_turn */
const char *xlate_stop_to_finish(const char *);	/* NULL: stop */

/* usage.c: one row per LLM call, budgets, and what the owner spent */
struct llm_call {
	long long	 ts_ms;		/* when the request arrived */
	char		 caller[96];	/* "user:NAME", "token:ID", … */
	char		 route[64];	/* "" when a model was named directly */
	char		 provider[64];	/* "" when no provider was reached */
	char		 model[128];
	struct llm_tokens tokens;
	long		 latency_ms;	/* to the end of the answer */
	long		 ttft_ms;	/* to its first byte; -1 none */
	int		 status;	/* what the client got */
	bool		 cache_hit;
	bool		 stream;
	double		 cost_usd;
};
int	 usage_start(void);
void	 usage_stop(void);		/* flushes */
void	 usage_record(const struct llm_call *);	/* any thread, quick */
void	 usage_flush(void);
enum usage_verdict { USAGE_OK, USAGE_BUDGET, USAGE_RATE };
/* Before a call: over a budget or the rate; why says which. */
enum usage_verdict usage_check(const struct llm_conf *, const char *caller,
	    char *why, size_t, long *retry_s);
void	 usage_metrics(struct buf *);
void	 usage_set_clock(long long (*)(void));	/* tests: unix ms */
void	 api_usage(struct http_req *);

/* api_llm.c: the admin's test of one provider */
void	 api_llm_provider_test(struct http_req *);

/* upcall.c: the worker loops: HTTP connections and outbound calls */
/*
 * Each worker loop runs one libmicrohttpd daemon and one libcurl multi
 * handle. A call's callbacks run on the loop that began it (the loop of
 * the thread that called upcall_begin, or the first loop from any other
 * thread); everything else that touches a call runs there too (get
 * there with upcall_post from one of its callbacks or handlers).
 */
struct upcall;
struct curl_slist;
enum upcall_err { UPCALL_OK, UPCALL_CONNECT, UPCALL_TIMEOUT, UPCALL_NET,
	UPCALL_CANCELLED };
struct upcall_head {
	int		 status;
	char		 content_type[128];
	long		 retry_after_ms;	/* -1: none given */
};
struct upcall_ops {
	void	(*head)(void *, const struct upcall_head *);
	/* 0: taken; 1: not taken, pause until upcall_resume */
	int	(*data)(void *, const char *, size_t);
	/* Exactly once per call, the last callback; the call is freed. */
	void	(*done)(void *, enum upcall_err, const char *msg);
};
struct upcall_req {
	const char		*url;
	struct curl_slist	*headers;	/* taken */
	const char		*body;		/* NULL: GET; kept to done */
	size_t			 len;
	long			 head_ms;	/* to the answer's head */
	bool			 stream;	/* held open: small reads */
};
struct MHD_Daemon;
struct upcall_job;
int	 upcall_start(int loops);
void	 upcall_stop(void);
int	 upcall_loops(void);
void	 upcall_attach(int loop, struct MHD_Daemon *);
void	 upcall_mhd_wake(struct MHD_Daemon *);	/* any thread */
struct upcall *upcall_begin(const struct upcall_req *,
	    const struct upcall_ops *, void *);
void	 upcall_cancel(struct upcall *);	/* done follows */
void	 upcall_resume(struct upcall *);
bool	 upcall_sent(struct upcall *);	/* the whole body is out */
struct upcall_job *upcall_post(void (*)(void *), void *, long delay_ms);
void	 upcall_post_on(int loop, void (*)(void *), void *);
void	 upcall_unpost(struct upcall_job *);
/* A socket's hang-up (EPOLLRDHUP) calls fn once, on the loop thread. */
struct upcall_watch;
struct upcall_watch *upcall_watch(int fd, void (*)(void *), void *);
void	 upcall_unwatch(struct upcall_watch *);
long	 upcall_active(void);

/* llm.c, llm_call.c, llm_cache.c: one proxied LLM call */
enum llm_phase { LLM_WAIT, LLM_STREAM, LLM_WHOLE };
struct llm_x {
	/* Set by the handler, read-only after llm_start. */
	struct MHD_Connection	*conn;
	enum llm_api		 api;		/* the client's */
	const struct llm_conf	*lc;
	const struct llm_route	*route;		/* NULL: a model named */
	const struct llm_target	*targets;
	size_t			 ntargets;
	struct llm_target	 direct;	/* .model points into model */
	json_t			*body;		/* the client's; owned */
	bool			 stream;	/* the client asked */
	bool			 chat_usage;	/* …with include_usage */
	char			 caller[96];
	char			 model[128];	/* as the client named it */
	double			 t_begin;	/* handler entered */
	long long		 wall_ms;	/* the same, unix ms */
	int			 client_fd;	/* dup: its hang-up; owned */
	char			 cache_key[65];	/* "": not cached */
	long			 cache_ttl_s;
	const char		*cache_state;	/* "hit", "miss"; NULL */

	/* The upcall loop's. */
	struct upcall		*up;
	struct upcall_watch	*watch;
	struct upcall_job	*watch_job;	/* pending job_watch */
	size_t			 ti;		/* target being tried */
	int			 round;
	long			 wait_ms;	/* longest Retry-After */
	enum llm_api		 up_api;
	const struct llm_target	*t;
	char			*up_body;	/* owned */
	struct upcall_head	 head;
	struct sse		*sse;
	struct xlate_stream	*xs;
	struct buf		 err;		/* a failed try's body */
	struct buf		 whole;		/* an answer read whole */
	struct buf		 rec;		/* a stream, for the cache */
	bool			 added_usage;	/* include_usage by us */
	bool			 too_big;
	bool			 recorded;
	double			 t_try;		/* this try began */
	double			 t_first;	/* the answer's first byte */
	double			 t_end;
	struct llm_tokens	 tokens;
	char			 errmsg[512];	/* the last try's failure */
	int			 errstatus;

	char			*raw;		/* the client's body; owned */
	size_t			 rawlen;
	char			 an_version[64];	/* its anthropic-… */
	char			 an_beta[256];

	/* Shared: llm_lock. */
	struct http_req		*req;		/* NULL once done */
	enum llm_phase		 phase;
	int			 status;	/* to the client */
	char			 ctype[128];
	struct buf		 out;		/* to the client */
	size_t			 off;
	const char		*provider;	/* the one that answered */
	int			 tries;
	long			 retry_after_s;
	double			 upstream_s;	/* waiting on providers */
	bool			 parked;
	bool			 paused;	/* upstream paused: full */
	bool			 reader;
	bool			 up_done;
	bool			 client_gone;
	bool			 req_done;
	int			 refs;		/* request, upcall, jobs */
};
extern pthread_mutex_t llm_lock;
void	 api_llm_chat(struct http_req *);
void	 api_llm_responses(struct http_req *);
void	 api_llm_messages(struct http_req *);
void	 api_llm_embeddings(struct http_req *);
void	 api_llm_models(struct http_req *);
bool	 llm_path_ok(struct http_req *);
void	 llm_start(struct llm_x *, struct http_req *);
void	 llm_wake(struct llm_x *);
void	 llm_watch_client(struct llm_x *, void (*)(void *));
/* llm_call.c */
struct llm_x *llm_x_new(void);
void	 llm_x_free(struct llm_x *);
void	 llm_call_begin(struct llm_x *);
void	 llm_call_release(void *);	/* loop: the request is over */
void	 llm_call_unpause(void *);	/* loop: the buffer has room */
void	 llm_call_unref(void *);
void	 llm_call_shutdown(void);
struct curl_slist *llm_call_headers(const struct llm_provider *, char *why,
	    size_t);
void	 llm_call_redact(const struct llm_provider *, struct buf *);
/* llm_cache.c */
bool	 llm_cache_lookup(struct llm_x *, struct http_req *);
void	 llm_cache_store(struct llm_x *, const char *, size_t);

/* ratelimit.c */
int	 ratelimit_init(size_t slots);
void	 ratelimit_free(void);
/* Returns 0 if allowed, else seconds until a token is available. */
long	 ratelimit_take(const struct ipaddr *, long rps, long burst);

/* metrics.c */
int	 metrics_init(size_t routes);
void	 metrics_free(void);
void	 metrics_request(size_t route_idx, int status, double seconds);
void	 metrics_render(struct buf *);
long	 metrics_rss_bytes(void);

/* store.c */
extern const struct store_migration {
	int		 version;
	const char	*name;
	const char	*sql;
} store_migrations[];
extern const size_t store_migrations_count;
int	 store_open(const char *path, long busy_timeout_ms, char **err);
struct sqlite3 *store_db(void);
int	 store_schema_version(struct sqlite3 *);
int	 store_latest_version(void);
int	 store_migrate(struct sqlite3 *, char **err);
struct sqlite3_stmt *store_stmt(const char *sql);
void	 store_lazy_commits(void);
void	 store_close(void);
void	 store_thread_done(void);
bool	 store_ready(void);

/* dispatch.c: messages in, agent turns, replies out */
struct dispatch_msg {
	const char	*conversation;	/* "api:alice:main" */
	const char	*channel;
	const char	*peer;
	const char	*thread;	/* NULL: none */
	const char	*owner;		/* the pincer user it belongs to */
	const char	*sender;
	const char	*text;
	json_t		*attachments;	/* NULL: none */
	const char	*event_id;	/* the channel's; NULL: none */
	const char	*ref;		/* its message id there; NULL */
};
struct dispatch_sub;
/* A turn's event (one JSON object); last: the reply or the error. */
typedef void (*dispatch_fn)(void *, const char *json, bool last);
int	 dispatch_start(const struct config *);
void	 dispatch_stop(void);
long long dispatch_submit(const struct dispatch_msg *, dispatch_fn, void *,
	    struct dispatch_sub **, char *why, size_t);
void	 dispatch_unsubscribe(struct dispatch_sub *);
long long dispatch_store(const struct dispatch_msg *, bool *dup);
void	 dispatch_note(const char *conversation);
int	 dispatch_cancel(const char *conversation, const char *who);
void	 api_chat(struct http_req *);
void	 api_conversations(struct http_req *);
void	 api_conversation_messages(struct http_req *);
void	 api_conversation_attachment(struct http_req *);
void	 api_conversation_stop(struct http_req *);
/* Percent-encodes s into b, but for unreserved bytes and those in keep. */
int	 url_encode(struct buf *, const char *s, const char *keep);

/* channel.c: chat platforms in, replies out (README, Channels) */
/*
 * A channel is one configured platform account (config "channels": [{name,
 * kind, …}]): its webhook or socket brings messages in, normalized to
 * chan_msg; channel.c decides who may talk (dm_policy, pairing), puts
 * the message in the inbox (dispatch_submit, deduplicated by event id)
 * and only then lets the platform's request be acknowledged. Replies are
 * sent from the outbox by the channel's delivery thread, which calls the
 * kind's ops; a part sent is recorded at once, so a restart sends the
 * rest and nothing twice. One file per kind: channel_KIND.c.
 */
struct channel;
#define CHAN_ID_MAX	160
/* A message from a platform, normalized by a kind's parser. */
struct chan_msg {
	char	 event_id[CHAN_ID_MAX];	/* the platform's, unique */
	char	 sender[CHAN_ID_MAX];	/* the platform's user id */
	char	 sender_name[128];	/* for the owner's eyes; may be "" */
	char	 chat[CHAN_ID_MAX];	/* where the reply goes */
	char	 thread[CHAN_ID_MAX];	/* a thread in it; "" none */
	char	 ref[CHAN_ID_MAX];	/* the message's own id; "" none */
	char	*text;			/* owned; "" for a file alone */
	json_t	*attachments;		/* owned; [{id|url, name, mime,
					 * size}] as the kind fetches them */
	bool	 direct;		/* a DM or private chat */
	bool	 mention;		/* the bot was named (groups) */
};
/* What a webhook request carried. */
#define CHAN_BATCH_MAX	100
struct chan_batch {
	struct chan_msg	 msgs[CHAN_BATCH_MAX];
	size_t		 n;
	/* An answer of the kind's own (a challenge, a ping): sent as is
	 * once every message above is stored. 0: 200 {"ok":true}. */
	int		 status;
	char		*body;		/* owned */
	const char	*ctype;		/* static; NULL: application/json */
};
/* Where a reply goes, and the message it answers. */
struct chan_out {
	const char	*conversation;
	const char	*chat;
	const char	*thread;	/* "" none */
	const char	*ref;		/* the last message answered; "" */
	const char	*event_id;	/* its event id (kind's own); "" */
	long long	 outbox_id;	/* unique: a nonce where platforms
					 * take one */
	int		 part;		/* which part of the reply, from 0 */
};
/* A file to send, read from the sandbox into memory. */
struct chan_file {
	const char	*name;		/* base name */
	const char	*mime;		/* guessed from the name */
	const char	*caption;	/* "" none */
	const char	*data;
	size_t		 len;
};
/* How a send went. */
enum chan_status { CHAN_SENT, CHAN_RETRY, CHAN_FAILED };
struct chan_result {
	char		 message_id[CHAN_ID_MAX];	/* the platform's */
	long		 retry_after_ms;	/* 429: as the platform said */
	char		 error[256];		/* no secret in it */
};
struct channel_ops {
	const char	*kind;		/* "slack": config's, /hooks/KIND */
	size_t		 max_text;	/* one message, in characters */
	/* The kind's config keys (json), its secrets loaded; err for the
	 * config check. ch's kind data is channel_data(). */
	int	(*init)(struct channel *, const json_t *conf, char *err,
		    size_t);
	void	(*free)(struct channel *);
	/* Socket and polling channels: their own thread or ws session. */
	int	(*start)(struct channel *);
	void	(*stop)(struct channel *);
	/* Webhooks: any method on /hooks/KIND[/…]. -1 with why: 401. */
	int	(*verify)(struct channel *, struct http_req *, char *why,
		    size_t);
	/* -1 with why: 400 (malformed). Events to ignore add nothing. */
	int	(*parse)(struct channel *, struct http_req *,
		    struct chan_batch *, char *why, size_t);
	/* The delivery thread; text is within max_text. */
	enum chan_status (*send_text)(struct channel *,
		    const struct chan_out *, const char *text,
		    struct chan_result *);
	enum chan_status (*send_file)(struct channel *,
		    const struct chan_out *, const struct chan_file *,
		    struct chan_result *);
	/* While a turn runs (typing, a reaction); on=false when it ends.
	 * Best effort. NULL: none. */
	void	(*working)(struct channel *, const struct chan_out *,
		    bool on);
	long	 working_every_ms;	/* repeat while on; 0: once */
	/* Edit a message sent earlier (message_id: the platform's) to
	 * text, within max_text. NULL: the platform cannot. */
	enum chan_status (*update)(struct channel *, const struct chan_out *,
		    const char *message_id, const char *text,
		    struct chan_result *);
	/* An inbound attachment's bytes (the kind holds the token). */
	int	(*fetch)(struct channel *, const json_t *att, struct buf *out,
		    char *why, size_t);
	const char *default_policy;	/* NULL: "pairing" */
	bool	 hook_by_name;		/* /hooks/KIND/NAME only */
};
extern const struct channel_ops channel_slack_ops;
extern const struct channel_ops channel_telegram_ops;
extern const struct channel_ops channel_whatsapp_ops;
extern const struct channel_ops channel_discord_ops;
extern const struct channel_ops channel_generic_ops;
int	 channel_check(const json_t *, char *err, size_t);  /* config.c */
int	 channel_start(const struct config *);
void	 channel_stop(void);
void	 channel_notify(void);		/* the outbox has a new row */
void	 channel_turn(const char *conversation, bool start);
/* dispatch.c: a turn's inbound files into its sandbox; *text (owned)
 * gets a line naming each, or why it is missing. */
void	 channel_attach(const char *conversation, const char *control,
	    const json_t *attachments, char **text);
void	 api_hook(struct http_req *);	/* /hooks/… */
const char *channel_name(const struct channel *);
const char *channel_base_url(const struct channel *);	/* api_base */
void	*channel_data(const struct channel *);
void	 channel_set_data(struct channel *, void *);
/*
 * From a socket or poller: the messages are in the inbox (or refused by
 * policy) when this returns 0; -1: not stored, do not acknowledge.
 */
int	 channel_ingest(struct channel *, struct chan_msg *, size_t);
void	 chan_msg_clear(struct chan_msg *);
/* A secret named by the channel's config key (e.g. "token"), loaded at
 * start; NULL if not configured. Never log it. */
const char *channel_secret(const struct channel *, const char *key);
/* channel_state: a kind's small durable values (offsets, sessions). */
int	 channel_state_get(const struct channel *, const char *key,
	    char *, size_t);
int	 channel_state_set(const struct channel *, const char *key,
	    const char *value);
int	 channel_state_del(const struct channel *, const char *key);
/*
 * How a channel is doing, for GET /api/v1/channels. A kind with its own
 * connection (a socket, a poller) says where it stands; anything may
 * report a failure (why: in words, never a secret or a URL with a token)
 * or that the platform was reached.
 */
enum chan_health { CHAN_UP, CHAN_CONNECTING, CHAN_DOWN, CHAN_FAILURE };
void	 channel_health(struct channel *, enum chan_health, const char *why);

/*
 * A channel's own state: channel.c, chan_out.c and chan_pair.c only (a
 * kind's file uses the functions above).
 */
#define CHAN_SECRETS_MAX	8
enum chan_policy { POLICY_PAIRING, POLICY_ALLOWLIST, POLICY_OPEN,
	POLICY_DISABLED };
struct chan_work;
struct channel {
	char			*name;		/* owned, all below too */
	const struct channel_ops *ops;
	json_t			*conf;
	json_t			*allow;
	char			*owner;		/* NULL: the first owner */
	char			*api_base;	/* NULL: the kind's */
	int			 policy;	/* enum chan_policy */
	bool			 progress_msg;	/* "progress": "message" */
	void			*data;		/* the kind's */
	bool			 inited;
	pthread_mutex_t		 lock;		/* secrets, owner */
	struct {
		char	 key[64];
		char	*value;
	}			 secrets[CHAN_SECRETS_MAX];
	size_t			 nsecrets;
	/* chan_out.c: the delivery thread, under out_lock. */
	pthread_t		 out_thread;
	bool			 out_running;
	bool			 out_quit;
	pthread_mutex_t		 out_lock;
	pthread_cond_t		 out_wake;
	struct chan_work	*work;		/* turns running */
	long long		 pause_until;	/* a 429 said wait */
	/* channel_health(), under health_lock. */
	pthread_mutex_t		 health_lock;
	int			 conn;		/* 0: no connection of its
						 * own; else enum + 1 */
	long long		 up_ms;		/* last time it worked */
	long long		 err_ms;	/* last failure … */
	char			 err[256];	/* … in words */
};
struct channel *channel_by_name(const char *);
size_t	 channel_count(void);
struct channel *channel_at(size_t);
const char *chan_owner(struct channel *);
struct channel *channel_find_hook(const char *path);
struct channel *channel_build(const json_t *, char *err, size_t);
void	 channel_free(struct channel *);
/* chan_in.c */
int	 chan_in_start(void);
void	 chan_in_stop(void);
/* chan_out.c */
int	 chan_out_start(struct channel *);
void	 chan_out_stop(struct channel *);
/* chan_pair.c */
int	 chan_pair_known(struct channel *, const char *sender);
int	 chan_pair_request(struct channel *, const struct chan_msg *);
void	 chan_pair_audit(struct channel *, const struct chan_msg *,
	    const char *action, const char *why);
int	 chan_pair_approve(const char *channel, const char *code,
	    const char *by, char *err, size_t);
/* -1: no such pending code; -2: the store failed. */
int	 chan_pair_deny(const char *channel, const char *code,
	    const char *by, char *err, size_t);
json_t	*chan_pair_list(const char *channel);
int	 cli_pairing(const struct config_overrides *, int, char **);
void	 api_pairing_list(struct http_req *);
void	 api_pairing_approve(struct http_req *);
void	 api_pairing_deny(struct http_req *);
/* api_channels.c */
void	 api_channels(struct http_req *);

/* chan_http.c: the blocking HTTP client of channels (libcurl easy) */
struct chan_part {			/* one multipart/form-data field */
	const char	*name;
	const char	*data;		/* a value, or a file's bytes */
	size_t		 len;		/* (size_t)-1: strlen */
	const char	*filename;	/* a file: set */
	const char	*mime;
};
struct chan_http {
	const char		*method;	/* NULL: POST if a body */
	const char		*url;
	const char *const	*headers;	/* "Name: value"; NULL-ended */
	const char		*body;
	size_t			 len;
	const struct chan_part	*parts;		/* multipart instead */
	size_t			 nparts;
	long			 timeout_ms;	/* 0: 30 s */
	/* The answer. */
	int			 status;	/* 0: none (error says why) */
	struct buf		 answer;	/* chan_http_free frees it */
	long			 retry_after_ms;	/* -1: none */
	char			 error[256];
};
int	 chan_http_do(struct chan_http *);	/* 0: an HTTP answer */
void	 chan_http_free(struct chan_http *);
/* 2xx: sent; 429 (retry_after), 5xx, 408, no answer: retry; else failed. */
enum chan_status chan_http_status(const struct chan_http *,
	    struct chan_result *);
json_t	*chan_http_json(const struct chan_http *);	/* NULL: not JSON */
/* HMAC-SHA256 of data with key, lowercase hex (65 bytes). */
void	 chan_hmac_hex(const void *key, size_t, const void *, size_t,
	    char out[65]);
bool	 chan_hex_equal(const char *, const char *);	/* constant time */

/* daemon.c */
#define DAEMON_RESTART	100	/* daemon_serve: stopped to start again */
int	 daemon_serve(const struct config_overrides *);
void	 daemon_restart(void);	/* any thread: stop, then exec again */
const char *daemon_config_path(void);
const struct config_overrides *daemon_overrides(void);
struct config *daemon_config_try(const char *path, char **err);
int	 daemon_config_apply(struct config *, json_t *restart, char *err,
	    size_t);

/* cdp_policy.c: what the CDP bridge lets through (no sockets) */
#define CDP_ID_MAX	64	/* target, session and context ids */
/* What one client connection may touch; the callbacks read cdp.c's. */
struct cdp_scope {
	const char	*ctx;		/* the sandbox's own context */
	const char	*page;		/* a page connection: its target */
	const char	*downloads;	/* the sandbox's download folder */
	/* Its contexts' proxyServer ("" none); NULL: not a sandbox's. */
	const char	*proxy;
	bool		(*ctx_owned)(void *, const char *ctx);
	const char	*(*target_ctx)(void *, const char *target);
	/* A session of this connection: its target; else NULL. */
	const char	*(*session_target)(void *, const char *session);
	bool		(*seen)(void *, const char *target);
	bool		(*window_known)(void *, json_int_t);
	json_t		*(*contexts)(void *);	/* new reference */
	void		*arg;
};
enum cdp_act { CDP_FORWARD, CDP_ANSWER, CDP_REFUSE, CDP_COOKIES,
	CDP_CLOSE };
/* What the bridge learns from the browser's answer. */
enum cdp_note { CDP_NOTE_NONE, CDP_NOTE_CONTEXT, CDP_NOTE_DISPOSE,
	CDP_NOTE_TARGET, CDP_NOTE_ATTACH, CDP_NOTE_TARGETS, CDP_NOTE_WINDOW };
struct cdp_verdict {
	enum cdp_act	 act;
	enum cdp_note	 note;
	json_t		*result;	/* CDP_ANSWER, CDP_CLOSE: owned */
	char		 why[200];	/* CDP_REFUSE */
	char		 id[CDP_ID_MAX];	/* the context or target */
};
enum cdp_ev { CDP_EV_DROP, CDP_EV_ATTACHED, CDP_EV_DETACH,
	CDP_EV_DETACHED, CDP_EV_SEEN, CDP_EV_GONE };
struct cdp_event {
	enum cdp_ev	 act;	/* DETACH: dropped, and detached from */
	const char	*session;	/* attached or detached */
	const char	*parent;	/* the session it came on */
	const char	*target;
	const char	*ctx;
	bool		 waiting;	/* paused for a debugger */
};
int	 cdp_policy_check(const struct cdp_scope *, json_t *,
	    struct cdp_verdict *);
int	 cdp_policy_event(const struct cdp_scope *, json_t *,
	    struct cdp_event *);
void	 cdp_policy_filter_targets(const struct cdp_scope *, json_t *);
bool	 cdp_policy_url_ok(const char *);

/*
 * cdp.c: the CDP bridge's shared side, on ws.c's service thread alone:
 * the control connection, each sandbox's browser context, the targets.
 */
typedef void (*cdp_call_fn)(json_t *result, const char *why, void *);
typedef void (*cdp_ready_fn)(void *, const char *why);
struct cdp_wait {
	cdp_ready_fn	 fn;
	void		*arg;
	uint64_t	 deadline;
	struct cdp_wait	*next;
};
/* A sandbox's side of the browser, or an owner's ("user:NAME"). */
#define CDP_BOX_NAME	(SBX_NAME_MAX + 8)
struct cdp_box {
	char		 name[CDP_BOX_NAME];
	char		 ctx[CDP_ID_MAX];	/* its context; "" none yet */
	char		(*extra)[CDP_ID_MAX];	/* ones its clients made */
	size_t		 nextra;
	bool		 making;
	long		 nconns;	/* sessions admitted (the limit) */
	long		 users;		/* sessions holding it, queued too */
	bool		 sandbox;	/* else an owner's (/cdp/) */
	uint64_t	 idle_since;
	struct cdp_wait	*waiters;
	char		 downloads[4200];	/* Chromium's folder for it */
	/* A sandbox's contexts' proxyServer; "" none (README, Browser). */
	char		 proxy[40];
	struct cdp_box	*next;
};
/* A target the bridge has seen, and the context it is in. */
struct cdp_target {
	char		 id[CDP_ID_MAX];
	char		 ctx[CDP_ID_MAX];
	char		 type[24];
	char		*url;		/* owned */
	char		*title;		/* owned */
	uint64_t	 dead_at;	/* destroyed: forgotten later */
	unsigned long	 seq;		/* the order the bridge saw them in */
};
int	 cdp_start(const struct config *);
bool	 cdp_running(void);
const char *cdp_refusal(const struct identity *, bool public_path);
void	 cdp_box_name(const struct identity *, char *, size_t);
size_t	 cdp_targets(const struct cdp_target **);
struct cdp_target *cdp_target_find(const char *);
json_t	*cdp_version(void);
void	 cdp_stop(void);
void	 cdp_ready(cdp_ready_fn, void *);
struct cdp_box *cdp_box_get(const char *name, bool sandbox);
struct cdp_box *cdp_box_find(const char *name);	/* NULL: none */
void	 cdp_box_ready(struct cdp_box *, cdp_ready_fn, void *);
bool	 cdp_box_owns(const struct cdp_box *, const char *ctx);
void	 cdp_box_add_ctx(struct cdp_box *, const char *);
void	 cdp_box_drop_ctx(struct cdp_box *, const char *);
json_t	*cdp_box_contexts(const struct cdp_box *);
void	 cdp_box_reset(struct cdp_box *);
const char *cdp_target_ctx(const char *target);
void	 cdp_target_add(const char *target, const char *ctx);
struct ws_session *cdp_dial(const char *path, const struct ws_ops *,
	    void *user);
int	 cdp_call(const char *method, json_t *params, cdp_call_fn, void *);
void	 cdp_call_forget(void *);
const char *cdp_bridge_id(void);
void	 api_cdp_json(struct http_req *);

/* cdp_live.c: watching a sandbox's browser (admin) */
extern const struct ws_ops cdp_live_ops;
void	 api_sandbox_browser(struct http_req *);

/* cdp_relay.c: the bridge's WebSocket sessions */
extern const struct ws_ops cdp_browser_ops;
extern const struct ws_ops cdp_page_ops;
void	 cdp_relay_close_all(void);
void	 cdp_relay_tick(uint64_t now);
void	 cdp_relay_box_gone(struct cdp_box *);

/* browser.c: the browser backend the CDP bridge talks to */
enum browser_backend { BROWSER_AUTO, BROWSER_LOCAL, BROWSER_REMOTE,
	BROWSER_OFF };
enum browser_backend browser_backend(const struct config *);
int	 browser_start(const struct config *);
void	 browser_stop(void);
int	 browser_endpoint(char *, size_t, char *err, size_t);
pid_t	 browser_local_pid(void);
json_t	*browser_status(void);
void	 api_browser(struct http_req *);
void	 api_browser_start(struct http_req *);

/* doctor.c */
int	 doctor_run(const struct config_overrides *);

/* util */
uint64_t now_ms(void);
long long now_wall_ms(void);
double	 now_seconds(void);
extern const char *pincer_version;

#endif
