/* SPDX-License-Identifier: MIT */
/* config.c: the options table, and loading pincer.json plus PINCER_* vars. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "pincer.h"

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/local/share/pincer"
#endif
#define DEFAULT_CONFIG	"/etc/pincer/pincer.json"

enum opt_type { OPT_STR, OPT_INT, OPT_BOOL, OPT_ENUM, OPT_LIST, OPT_JSON };

struct option {
	const char		*name;	/* dotted path in pincer.json */
	const char		*env;	/* NULL: PINCER_ + name, '.' as '_' */
	enum opt_type		 type;
	size_t			 offset;
	const char		*def;	/* default, written as in the env */
	long			 min;
	long			 max;
	const char *const	*values;	/* OPT_ENUM */
	int			(*check)(const char *, char *, size_t);
	bool			 restart;	/* SIGHUP cannot change it */
	const char		*help;
};

static int	opt_set_json(struct config *, const struct option *,
		    json_t *, char *, size_t);
static int	opt_set_string(struct config *, const struct option *,
		    const char *, char *, size_t);
static int	opt_set_value(struct config *, const struct option *,
		    json_t *, char *, size_t);
static void	opt_expected(const struct option *, char *, size_t);
static void	opt_env_name(const struct option *, char *, size_t);
static const struct option *opt_find(const char *);
static bool	opt_is_prefix(const char *);
static void	walk_object(struct config *, json_t *, const char *,
		    const char *, struct buf *);
static void	add_error(struct buf *, const char *, ...) PINCER_PRINTF(2, 3);
static int	check_listen(const char *, char *, size_t);
static int	check_cdp_url(const char *, char *, size_t);
static int	check_cidr(const char *, char *, size_t);
static int	check_origin(const char *, char *, size_t);
static int	check_url(const char *, char *, size_t);
static int	check_jwt_alg(const char *, char *, size_t);
static int	check_abs_path(const char *, char *, size_t);
static void	check_llm(const struct config *, const char *, struct buf *);
static void	check_channels(const struct config *, const char *,
		    struct buf *);
static void	check_objstore(const struct config *, const char *,
		    struct buf *);
static struct config *config_defaults(void);
static void	free_list(char **);
static json_t	*opt_value(const struct option *, const struct config *);
static bool	opt_from_cli(const struct option *,
		    const struct config_overrides *);

static const char *const log_levels[] = { "debug", "info", "warn", "error",
	NULL };
static const char *const log_formats[] = { "logfmt", "json", NULL };
/* In the order of enum browser_backend. */
static const char *const browser_backends[] = { "auto", "local", "remote",
	"off", NULL };
/* In the order of the os_backend and os_url_style numbers. */
static const char *const os_backends[] = { "local", "s3", "off", NULL };
static const char *const url_styles[] = { "path", "virtual", NULL };
static const char *const token_places[] = { "header", "query", NULL };
static const char *const sandbox_scopes[] = { "owner", "conversation",
	"channel", NULL };
static const char *const provision_roles[] = { "none", "member", "admin",
	NULL };

#define O(f)	offsetof(struct config, f)
static const struct option options[] = {
	{ .name = "listen", .type = OPT_STR, .offset = O(listen),
	  .def = "127.0.0.1:8787", .check = check_listen, .restart = true,
	  .help = "address:port to listen on; [::]:PORT listens on IPv4 "
	  "and IPv6. Non-loopback needs authentication" },
	{ .name = "state_dir", .env = "PINCER_STATE", .type = OPT_STR,
	  .offset = O(state_dir), .def = "/var/lib/pincer", .restart = true,
	  .help = "folder for the database, keys and sandboxes" },
	{ .name = "log.level", .type = OPT_ENUM, .offset = O(log_level),
	  .def = "info", .values = log_levels,
	  .help = "least severe level written to the log" },
	{ .name = "log.format", .type = OPT_ENUM, .offset = O(log_format),
	  .def = "logfmt", .values = log_formats,
	  .help = "one line per event: logfmt or json" },
	{ .name = "log.requests", .type = OPT_BOOL, .offset = O(log_requests),
	  .def = "true", .help = "log one line per HTTP request" },
	{ .name = "http.max_header_bytes", .type = OPT_INT,
	  .offset = O(max_header_bytes), .def = "8192", .min = 1024,
	  .max = 65536, .help = "largest request head (line and headers); "
	  "larger gets 431" },
	{ .name = "http.max_body_bytes", .type = OPT_INT,
	  .offset = O(max_body_bytes), .def = "1048576", .min = 0,
	  .max = 1073741824, .help = "largest request body; larger gets 413" },
	{ .name = "http.max_connections", .type = OPT_INT,
	  .offset = O(max_connections), .def = "512", .min = 1,
	  .max = 65536, .help = "open connections at most (HTTP and "
	  "WebSocket); more get 503" },
	{ .name = "http.idle_timeout_s", .type = OPT_INT,
	  .offset = O(idle_timeout_s), .def = "60", .min = 1, .max = 86400,
	  .help = "seconds a connection may stay silent before it is closed" },
	{ .name = "http.header_timeout_s", .type = OPT_INT,
	  .offset = O(header_timeout_s), .def = "10", .min = 1, .max = 300,
	  .help = "seconds a new connection has to send a complete request "
	  "head (cuts off slowloris clients)" },
	{ .name = "http.rate_limit_rps", .type = OPT_INT,
	  .offset = O(rate_limit_rps), .def = "50", .min = 0,
	  .max = 100000000, .help = "requests per second per client IP, "
	  "sustained; 0 turns the limit off" },
	{ .name = "http.rate_limit_burst", .type = OPT_INT,
	  .offset = O(rate_limit_burst), .def = "200", .min = 1,
	  .max = 100000000, .help = "requests a client IP may make at once "
	  "before the per-second rate applies" },
	{ .name = "http.threads", .type = OPT_INT, .offset = O(http_threads),
	  .def = "2", .min = 1, .max = 64, .restart = true,
	  .help = "worker threads: each runs its share of the HTTP "
	  "connections and their outbound calls" },
	{ .name = "http.shutdown_timeout_s", .type = OPT_INT,
	  .offset = O(shutdown_timeout_s), .def = "10", .min = 0, .max = 600,
	  .help = "seconds SIGTERM waits for requests in flight" },
	{ .name = "http.trusted_proxies", .type = OPT_LIST,
	  .offset = O(trusted_proxies), .def = "", .check = check_cidr,
	  .help = "addresses or CIDRs of reverse proxies whose "
	  "X-Forwarded-For is believed (comma-separated in the env)" },
	{ .name = "ws.max_message_bytes", .type = OPT_INT,
	  .offset = O(ws_max_message_bytes), .def = "1048576", .min = 125,
	  .max = 67108864, .help = "largest WebSocket message; larger "
	  "closes the socket with 1009" },
	{ .name = "admin_ui.dir", .type = OPT_STR, .offset = O(admin_ui_dir),
	  .def = PKGDATADIR "/admin-ui",
	  .help = "folder of the admin UI's static files" },
	{ .name = "store.busy_timeout_ms", .type = OPT_INT,
	  .offset = O(busy_timeout_ms), .def = "5000", .min = 0,
	  .max = 600000, .restart = true,
	  .help = "milliseconds SQLite waits on a locked database" },
	{ .name = "public_url", .type = OPT_STR, .offset = O(public_url),
	  .def = "", .check = check_origin,
	  .help = "the origin people reach pincer at, e.g. "
	  "https://pincer.example.org: the CSRF check's allowed origin, and "
	  "https makes cookies Secure. Empty: the request's Host" },
	{ .name = "metrics.public", .type = OPT_BOOL,
	  .offset = O(metrics_public), .def = "false",
	  .help = "serve /metrics without authentication (for a local "
	  "Prometheus); otherwise it needs the read scope" },
	{ .name = "auth.session_ttl_s", .type = OPT_INT,
	  .offset = O(session_ttl_s), .def = "3600", .min = 2,
	  .max = 2592000, .help = "lifetime of a session cookie; it is "
	  "renewed past half of it while in use" },
	{ .name = "auth.skew_s", .type = OPT_INT, .offset = O(skew_s),
	  .def = "60", .min = 0, .max = 600,
	  .help = "clock skew allowed on exp, nbf and iat of every JWT" },
	{ .name = "auth.argon2_memory_kib", .type = OPT_INT,
	  .offset = O(argon2_memory_kib), .def = "19456", .min = 1024,
	  .max = 4194304, .help = "argon2id memory per password hash; "
	  "raising it rehashes each password at its next login" },
	{ .name = "auth.argon2_iterations", .type = OPT_INT,
	  .offset = O(argon2_iterations), .def = "2", .min = 1, .max = 20,
	  .help = "argon2id passes per password hash" },
	{ .name = "auth.external_jwt.jwks_url", .type = OPT_STR,
	  .offset = O(ext_jwks_url), .def = "", .check = check_url,
	  .help = "JWKS of a zero-trust proxy whose signed JWT identifies "
	  "users (e.g. https://TEAM.cloudflareaccess.com/cdn-cgi/access/"
	  "certs); empty: off" },
	{ .name = "auth.external_jwt.header", .type = OPT_STR,
	  .offset = O(ext_header), .def = "Cf-Access-Jwt-Assertion",
	  .help = "request header carrying the proxy's JWT" },
	{ .name = "auth.external_jwt.cookie", .type = OPT_STR,
	  .offset = O(ext_cookie), .def = "CF_Authorization",
	  .help = "cookie carrying the proxy's JWT, when the header is "
	  "absent" },
	{ .name = "auth.external_jwt.issuer", .type = OPT_STR,
	  .offset = O(ext_issuer), .def = "",
	  .help = "required iss claim (empty: not checked)" },
	{ .name = "auth.external_jwt.audience", .type = OPT_STR,
	  .offset = O(ext_audience), .def = "",
	  .help = "required aud claim (empty: not checked)" },
	{ .name = "auth.external_jwt.email_claim", .type = OPT_STR,
	  .offset = O(ext_email_claim), .def = "email",
	  .help = "claim holding the user's email" },
	{ .name = "auth.external_jwt.algorithms", .type = OPT_LIST,
	  .offset = O(ext_algorithms), .def = "RS256,ES256",
	  .check = check_jwt_alg, .help = "algorithms accepted: RS256, "
	  "ES256" },
	{ .name = "auth.external_jwt.auto_provision_role", .type = OPT_ENUM,
	  .offset = O(ext_auto_role), .def = "none",
	  .values = provision_roles, .help = "role given to an unknown "
	  "email; none refuses it" },
	{ .name = "sandbox.launcher", .type = OPT_STR,
	  .offset = O(sbx_launcher), .def = "",
	  .help = "path of pincer-sandbox; empty: next to the pincer "
	  "executable" },
	{ .name = "sandbox.init", .type = OPT_STR, .offset = O(sbx_init),
	  .def = "", .help = "path of pincer-init (PID 1 of each sandbox); "
	  "empty: next to the pincer executable" },
	{ .name = "agent.sandbox_scope", .type = OPT_ENUM,
	  .offset = O(agent_sandbox_scope), .def = "owner",
	  .values = sandbox_scopes, .help = "which conversations share a "
	  "sandbox: owner (one per person), conversation, or channel" },
	{ .name = "agent.max_turns", .type = OPT_INT,
	  .offset = O(agent_max_turns), .def = "4", .min = 1, .max = 64,
	  .restart = true, .help = "agent turns run at the same time (of "
	  "different conversations)" },
	{ .name = "agent.turn_timeout_s", .type = OPT_INT,
	  .offset = O(agent_turn_timeout_s), .def = "600", .min = 5,
	  .max = 3600, .help = "a turn is stopped after this long" },
	{ .name = "agent.command", .type = OPT_STR,
	  .offset = O(agent_command), .def = "/opt/pincer/pincer-agent",
	  .help = "the program run in the sandbox for a turn (with the "
	  "argument \"turn\"; sandbox/agent/README.md has the protocol)" },
	{ .name = "agent.runtime", .type = OPT_STR, .offset = O(agent_runtime),
	  .def = "", .check = check_abs_path,
	  .help = "path of pincer-agent, given read-only to every sandbox at "
	  "/opt/pincer/pincer-agent; empty: next to the pincer executable" },
	{ .name = "agent.skills_dir", .type = OPT_STR,
	  .offset = O(agent_skills_dir), .def = PKGDATADIR "/skills",
	  .check = check_abs_path,
	  .help = "the bundled skills, given read-only to every sandbox at "
	  "/opt/pincer/skills (skipped when missing)" },
	{ .name = "sandbox.rootfs", .type = OPT_STR, .offset = O(sbx_rootfs),
	  .def = "", .check = check_abs_path,
	  .help = "a root file system folder (with usr/ and etc/) to use "
	  "instead of the host's /usr and a filtered /etc; empty: the host's" },
	{ .name = "sandbox.memory_mb", .type = OPT_INT,
	  .offset = O(sbx_memory_mb), .def = "1024", .min = 0,
	  .max = 1048576, .help = "memory limit of each sandbox in MiB; "
	  "0: none (applies at its next start)" },
	{ .name = "sandbox.pids_max", .type = OPT_INT,
	  .offset = O(sbx_pids_max), .def = "512", .min = 0, .max = 4194304,
	  .help = "most processes and threads in each sandbox; 0: no limit" },
	{ .name = "sandbox.cpu_weight", .type = OPT_INT,
	  .offset = O(sbx_cpu_weight), .def = "100", .min = 0, .max = 10000,
	  .help = "cgroup cpu weight of each sandbox (100 is a fair share; "
	  "0: not set)" },
	{ .name = "sandbox.cpu_quota_percent", .type = OPT_INT,
	  .offset = O(sbx_cpu_quota), .def = "0", .min = 0, .max = 100000,
	  .help = "most CPU each sandbox may use, in percent of one core "
	  "(200: two cores); 0: no quota" },
	{ .name = "sandbox.tmp_mb", .type = OPT_INT, .offset = O(sbx_tmp_mb),
	  .def = "256", .min = 1, .max = 65536,
	  .help = "size of each sandbox's /tmp (a tmpfs) in MiB" },
	{ .name = "sandbox.idle_sleep_s", .type = OPT_INT,
	  .offset = O(sbx_idle_s), .def = "900", .min = 0, .max = 2592000,
	  .help = "seconds without a request before a sandbox is put to "
	  "sleep (processes stopped, /workspace and /data kept); 0: never" },
	{ .name = "sandbox.max_running", .type = OPT_INT,
	  .offset = O(sbx_max_running), .def = "16", .min = 1, .max = 4096,
	  .help = "most sandboxes running at once; the least recently used "
	  "idle one is put to sleep to make room" },
	{ .name = "sandbox.uid_base", .type = OPT_INT,
	  .offset = O(sbx_uid_base), .def = "100000", .min = 1,
	  .max = 2000000000, .restart = true,
	  .help = "as root: first host uid of the sandboxes' ranges (65536 "
	  "each, one per sandbox)" },
	{ .name = "snapshots.keep", .type = OPT_INT, .offset = O(snap_keep),
	  .def = "10", .min = 0, .max = 100000,
	  .help = "snapshots kept per sandbox: after a new one, older ones "
	  "beyond this many are deleted; 0: no count limit" },
	{ .name = "snapshots.max_age_days", .type = OPT_INT,
	  .offset = O(snap_max_age_days), .def = "0", .min = 0,
	  .max = 36500, .help = "snapshots older than this many days are "
	  "deleted (checked hourly and after each snapshot); 0: never" },
	{ .name = "snapshots.on_sleep", .type = OPT_BOOL,
	  .offset = O(snap_on_sleep), .def = "false",
	  .help = "take a snapshot when a sandbox goes to sleep (idle or "
	  "stopped); a wake meanwhile cancels it" },
	{ .name = "snapshots.compression_level", .type = OPT_INT,
	  .offset = O(snap_level), .def = "3", .min = 1, .max = 19,
	  .help = "zstd level of snapshot archives: higher is smaller and "
	  "slower" },
	{ .name = "llm.providers", .type = OPT_JSON,
	  .offset = O(llm_providers), .def = "[]",
	  .help = "LLM providers: [{name, kind: openai|anthropic|"
	  "openai-compatible, base_url, key (a secret's name), headers, "
	  "models, timeout_ms, prices}] (see README, LLM proxy)" },
	{ .name = "llm.routes", .type = OPT_JSON, .offset = O(llm_routes),
	  .def = "{}", .help = "model names and aliases mapped to ordered "
	  "targets: {\"default\": [\"PROVIDER/MODEL\", …]} or "
	  "{\"fast\": {\"targets\": […], \"cache_ttl_s\": N}}" },
	{ .name = "llm.budgets", .type = OPT_JSON, .offset = O(llm_budgets),
	  .def = "[{\"caller\":\"all\",\"period\":\"day\","
	  "\"tokens\":10000000}]",
	  .help = "token and dollar caps: [{caller: all|each|user:NAME|"
	  "sandbox:NAME, period: day|month, tokens, usd}]; over one, calls "
	  "get 429 until the period ends (UTC)" },
	{ .name = "channels", .type = OPT_JSON, .offset = O(channels),
	  .def = "[]", .restart = true,
	  .help = "chat channels: [{name, kind: slack|telegram|whatsapp|"
	  "discord|generic, owner, dm_policy: pairing|allowlist|open|"
	  "disabled, allow, api_base, …}] (see README, Channels)" },
	{ .name = "browser.backend", .type = OPT_ENUM,
	  .offset = O(browser_backend), .def = "auto",
	  .values = browser_backends, .restart = true,
	  .help = "the browser behind the CDP bridge: local (pincerd runs "
	  "Chromium headless), remote (browser.remote_url), off; auto: "
	  "remote when a URL is set, else local when Chromium is installed" },
	{ .name = "browser.chromium", .type = OPT_STR,
	  .offset = O(browser_chromium), .def = "/usr/bin/chromium",
	  .restart = true, .help = "the Chromium a local backend runs" },
	{ .name = "browser.remote_url", .type = OPT_STR,
	  .offset = O(browser_remote_url), .def = "", .restart = true,
	  .check = check_cdp_url,
	  .help = "a CDP endpoint for the remote backend: http://HOST:9222 "
	  "of a Chromium, or a ws(s):// URL of a hosted browser" },
	{ .name = "browser.remote_token", .type = OPT_STR,
	  .offset = O(browser_remote_token), .def = "", .restart = true,
	  .help = "the name of a secret (pincer secret set) holding a hosted "
	  "browser's token, for the remote backend" },
	{ .name = "browser.remote_token_in", .type = OPT_ENUM,
	  .offset = O(browser_remote_token_in), .def = "header",
	  .values = token_places, .restart = true,
	  .help = "how the token goes: header (Authorization: Bearer) or "
	  "query (?token=, as browserless takes it)" },
	{ .name = "browser.max_message_bytes", .type = OPT_INT,
	  .offset = O(browser_max_message), .def = "67108864",
	  .min = 1048576, .max = 1073741824,
	  .help = "largest CDP message either way (a full-page screenshot "
	  "is one message); larger closes the session with 1009" },
	{ .name = "browser.max_sessions", .type = OPT_INT,
	  .offset = O(browser_max_sessions), .def = "8", .min = 1,
	  .max = 1000, .help = "CDP connections one sandbox may hold at "
	  "once; more wait (browser.queue_timeout_s) for one to end" },
	{ .name = "browser.max_sessions_total", .type = OPT_INT,
	  .offset = O(browser_max_sessions_total), .def = "32", .min = 1,
	  .max = 10000, .help = "CDP connections of all sandboxes at once "
	  "(queued the same way)" },
	{ .name = "browser.queue_timeout_s", .type = OPT_INT,
	  .offset = O(browser_queue_timeout_s), .def = "30", .min = 1,
	  .max = 3600, .help = "seconds a CDP connection over a limit waits "
	  "for a slot before it is refused (1013)" },
	{ .name = "browser.session_idle_s", .type = OPT_INT,
	  .offset = O(browser_session_idle_s), .def = "900", .min = 1,
	  .max = 604800, .help = "seconds a CDP connection may pass with no "
	  "message either way before it is closed (1001)" },
	{ .name = "browser.context_idle_s", .type = OPT_INT,
	  .offset = O(browser_context_idle_s), .def = "600", .min = 10,
	  .max = 604800, .help = "seconds a sandbox's browser context (its "
	  "tabs, cookies, storage) is kept with no CDP connection" },
	{ .name = "objstore.backend", .type = OPT_ENUM,
	  .offset = O(os_backend), .def = "local", .values = os_backends,
	  .restart = true, .help = "where /data, snapshots and backups are "
	  "kept: local (a folder, objstore.path), s3 (any S3-compatible "
	  "store: AWS, R2, MinIO, B2, Garage), off" },
	{ .name = "objstore.path", .type = OPT_STR, .offset = O(os_path),
	  .def = "", .restart = true, .check = check_abs_path,
	  .help = "the local backend's folder; empty: STATE/objstore. Put "
	  "it on another disk, or it dies with the machine" },
	{ .name = "objstore.endpoint", .type = OPT_STR,
	  .offset = O(os_endpoint), .def = "", .restart = true,
	  .check = check_url, .help = "the s3 backend's URL, e.g. "
	  "https://s3.eu-west-1.amazonaws.com, https://ACCOUNT.r2."
	  "cloudflarestorage.com, http://127.0.0.1:9000" },
	{ .name = "objstore.region", .type = OPT_STR,
	  .offset = O(os_region), .def = "us-east-1", .restart = true,
	  .help = "the region signed into every request (R2: auto)" },
	{ .name = "objstore.bucket", .type = OPT_STR,
	  .offset = O(os_bucket), .def = "", .restart = true,
	  .help = "the s3 backend's bucket (it must exist)" },
	{ .name = "objstore.prefix", .type = OPT_STR,
	  .offset = O(os_prefix), .def = "", .restart = true,
	  .help = "put in front of every key, e.g. \"pincer/\", to share "
	  "a bucket" },
	{ .name = "objstore.url_style", .type = OPT_ENUM,
	  .offset = O(os_url_style), .def = "path", .values = url_styles,
	  .restart = true, .help = "path (ENDPOINT/BUCKET/KEY) or virtual "
	  "(BUCKET.HOST/KEY, which AWS prefers)" },
	{ .name = "objstore.access_key_id", .type = OPT_STR,
	  .offset = O(os_access_key), .def = "objstore_access_key_id",
	  .restart = true, .help = "the name of the secret (pincer secret "
	  "set) holding the s3 backend's access key id" },
	{ .name = "objstore.secret_access_key", .type = OPT_STR,
	  .offset = O(os_secret_key), .def = "objstore_secret_access_key",
	  .restart = true, .help = "the name of the secret holding the s3 "
	  "backend's secret access key" },
	{ .name = "objstore.part_mb", .type = OPT_INT,
	  .offset = O(os_part_mb), .def = "8", .min = 5, .max = 5120,
	  .restart = true, .help = "objects larger than this go up in parts "
	  "of this size (S3's smallest part is 5 MiB)" },
	{ .name = "objstore.max_attempts", .type = OPT_INT,
	  .offset = O(os_max_attempts), .def = "5", .min = 1, .max = 50,
	  .restart = true, .help = "tries per request when the store "
	  "answers 5xx or 429 or cannot be reached" },
	{ .name = "objstore.retry_base_ms", .type = OPT_INT,
	  .offset = O(os_retry_base_ms), .def = "200", .min = 0,
	  .max = 60000, .restart = true, .help = "the first wait before a "
	  "retry; doubled each time, with jitter" },
	{ .name = "objstore.timeout_s", .type = OPT_INT,
	  .offset = O(os_timeout_s), .def = "60", .min = 1, .max = 3600,
	  .restart = true, .help = "a request that moves no byte for this "
	  "long is abandoned (and retried)" },
	{ .name = "objstore.list_page", .type = OPT_INT,
	  .offset = O(os_list_page), .def = "1000", .min = 1, .max = 1000,
	  .restart = true, .help = "keys asked for per list request" },
	{ .name = "sync.enabled", .type = OPT_BOOL, .offset = O(sync_enabled),
	  .def = "true", .restart = true, .help = "keep each sandbox's /data "
	  "in the object store: changes go up within seconds, and a "
	  "sandbox started on a machine without its /data gets it back" },
	{ .name = "sync.debounce_ms", .type = OPT_INT,
	  .offset = O(sync_debounce_ms), .def = "500", .min = 0,
	  .max = 600000, .restart = true, .help = "a sync starts when /data "
	  "has been quiet this long after a change…" },
	{ .name = "sync.max_delay_ms", .type = OPT_INT,
	  .offset = O(sync_max_delay_ms), .def = "2000", .min = 0,
	  .max = 3600000, .restart = true, .help = "…or this long after the "
	  "first change, even if writes go on" },
	{ .name = "sync.scan_s", .type = OPT_INT, .offset = O(sync_scan_s),
	  .def = "60", .min = 1, .max = 86400, .restart = true,
	  .help = "a running sandbox's /data is also compared with the "
	  "store this often (changes inotify missed, or another machine's)" },
	{ .name = "backup.interval_h", .type = OPT_INT,
	  .offset = O(backup_interval_h), .def = "24", .min = 0, .max = 8760,
	  .help = "hours between pincerd's backups of pincer.db to the "
	  "object store (backups/db/); 0: none (pincer backup now still "
	  "works)" },
	{ .name = "backup.interval_s", .type = OPT_INT,
	  .offset = O(backup_interval_s), .def = "0", .min = 0,
	  .max = 31536000, .help = "when not 0: seconds between backups, "
	  "instead of backup.interval_h (tests, or a gateway whose "
	  "database changes fast)" },
	{ .name = "backup.keep", .type = OPT_INT, .offset = O(backup_keep),
	  .def = "14", .min = 1, .max = 100000, .help = "backups kept: "
	  "after each new one, the oldest beyond this many are deleted "
	  "(the newest is never deleted)" },
	{ .name = "browser.spin_us", .type = OPT_INT,
	  .offset = O(browser_spin_us), .def = "300", .min = 0,
	  .max = 10000, .help = "after relaying a CDP message, the relay "
	  "thread looks for the next one this many microseconds without "
	  "sleeping (waking costs tens of µs a hop on a VM); uses up to "
	  "that much CPU per message; 0: always sleep" },
	{ .name = "egress.policy", .type = OPT_STR,
	  .offset = O(egress_policy), .def = "default",
	  .help = "the egress policy sandboxes get, a name in "
	  "egress.policies; \"default\" with none configured allows no "
	  "host" },
	{ .name = "egress.policies", .type = OPT_JSON,
	  .offset = O(egress_policies), .def = "{}",
	  .help = "named egress policies: {NAME: {default: allow|deny, "
	  "rules: [{host, port, cidr, methods, path_prefix, action: "
	  "allow|deny|inject, reason, set_headers, set_query}]}} "
	  "(see README, Egress)" },
	{ .name = "egress.max_connections", .type = OPT_INT,
	  .offset = O(egress_max_connections), .def = "256", .min = 1,
	  .max = 65536, .help = "connections through the egress proxy at "
	  "once, all sandboxes; more are answered 503" },
	{ .name = "egress.connect_timeout_s", .type = OPT_INT,
	  .offset = O(egress_connect_timeout_s), .def = "10", .min = 1,
	  .max = 300, .help = "time to connect to a host, per address" },
	{ .name = "egress.idle_timeout_s", .type = OPT_INT,
	  .offset = O(egress_idle_timeout_s), .def = "300", .min = 1,
	  .max = 86400, .help = "a proxied connection with no bytes "
	  "either way for this long is closed" },
	{ .name = "egress.upstream_ca_file", .type = OPT_STR,
	  .offset = O(egress_upstream_ca_file), .def = "",
	  .help = "a PEM file of extra CA certificates trusted for the "
	  "hosts behind intercepted (inject) connections, besides the "
	  "system's; empty: the system's only" },
	{ .name = "egress.log_retention_days", .type = OPT_INT,
	  .offset = O(egress_log_retention_days), .def = "14", .min = 0,
	  .max = 3650, .help = "egress requests are kept in the store this "
	  "many days (GET /api/v1/egress/log); 0: not kept" },
	{ .name = "egress.log_max_rows", .type = OPT_INT,
	  .offset = O(egress_log_max_rows), .def = "100000", .min = 0,
	  .max = 100000000, .help = "at most this many egress requests are "
	  "kept in the store; the oldest go first" },
	{ .name = "sync.max_file_mb", .type = OPT_INT,
	  .offset = O(sync_max_file_mb), .def = "1024", .min = 1,
	  .max = 1048576, .restart = true, .help = "a file in /data larger "
	  "than this is not synced (and the status says so)" },
	{ .name = "llm.rate_limit_rpm", .type = OPT_INT,
	  .offset = O(llm_rate_rpm), .def = "600", .min = 0,
	  .max = 100000000, .help = "LLM calls per minute per caller; "
	  "0: no limit" },
	{ .name = "llm.max_attempts", .type = OPT_INT,
	  .offset = O(llm_max_attempts), .def = "3", .min = 1, .max = 20,
	  .help = "upstream tries per call, over every target of its route" },
	{ .name = "llm.retry_base_ms", .type = OPT_INT,
	  .offset = O(llm_retry_base_ms), .def = "250", .min = 0,
	  .max = 60000, .help = "first backoff before trying a target "
	  "again; doubled each round, with jitter" },
	{ .name = "llm.retry_max_wait_s", .type = OPT_INT,
	  .offset = O(llm_retry_max_wait_s), .def = "30", .min = 0,
	  .max = 3600, .help = "longest wait before a retry (a longer "
	  "Retry-After is passed on to the client instead)" },
	{ .name = "llm.max_body_bytes", .type = OPT_INT,
	  .offset = O(llm_max_body), .def = "33554432", .min = 1024,
	  .max = 1073741824, .help = "largest LLM request body (images "
	  "inline make them big)" },
	{ .name = "llm.max_answer_bytes", .type = OPT_INT,
	  .offset = O(llm_max_answer), .def = "67108864", .min = 65536,
	  .max = 1073741824, .help = "largest answer that is read whole "
	  "(not streamed, or translated); a larger one is a 502" },
	{ .name = "llm.cache.max_mb", .type = OPT_INT,
	  .offset = O(llm_cache_max_mb), .def = "256", .min = 0,
	  .max = 1048576, .help = "size of the response cache in MiB; 0: "
	  "no cache" },
	{ .name = "llm.cache.max_entry_kb", .type = OPT_INT,
	  .offset = O(llm_cache_entry_kb), .def = "1024", .min = 1,
	  .max = 1048576, .help = "largest answer the cache keeps, in KiB" },
	{ .name = "llm.cache.max_ttl_s", .type = OPT_INT,
	  .offset = O(llm_cache_max_ttl), .def = "86400", .min = 1,
	  .max = 31536000, .help = "longest a cached answer is kept, "
	  "whatever a request asks" },
	{ .name = "auth.external_jwt.refetch_interval_s", .type = OPT_INT,
	  .offset = O(ext_refetch_s), .def = "30", .min = 0, .max = 86400,
	  .help = "least seconds between JWKS refetches for an unknown key "
	  "id" },
};
#define NOPTIONS	(sizeof(options) / sizeof(options[0]))
#undef O

static pthread_mutex_t	 cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct config	*cfg_live;
static struct config	**cfg_old;	/* replaced, freed at exit */
static size_t		 cfg_nold;

const char *
config_path(const struct config_overrides *ov)
{
	const char	*p;

	if (ov != NULL && ov->config_file != NULL)
		return ov->config_file;
	if ((p = getenv("PINCER_CONFIG")) != NULL && *p != '\0')
		return p;
	return DEFAULT_CONFIG;
}

/*
 * Defaults, then the file, then the environment, then the command line.
 * Every error is collected so that one run of `pincer config check` shows
 * them all.
 */
struct config *
config_load(const struct config_overrides *ov, char **err)
{
	struct config	*c = NULL;
	struct buf	 errs;
	const char	*path = config_path(ov);
	bool		 explicit = path != NULL && strcmp(path, DEFAULT_CONFIG);
	json_t		*root;
	json_error_t	 jerr;
	char		 name[128], msg[256];
	const char	*v;
	size_t		 i;

	buf_init(&errs, 64 * 1024);
	*err = NULL;
	if ((c = config_defaults()) == NULL) {
		*err = strdup("out of memory");
		return NULL;
	}
	if (!explicit && access(path, F_OK) == -1 && errno == ENOENT)
		root = json_object();	/* no file at the default place */
	else
		root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (jerr.line == -1)
			add_error(&errs, "%s: %s", path, jerr.text);
		else
			add_error(&errs, "%s:%d:%d: %s", path, jerr.line,
			    jerr.column, jerr.text);
	} else if (!json_is_object(root)) {
		add_error(&errs, "%s: the config must be a JSON object", path);
	} else
		walk_object(c, root, "", path, &errs);
	json_decref(root);

	for (i = 0; i < NOPTIONS; i++) {
		opt_env_name(&options[i], name, sizeof(name));
		if ((v = getenv(name)) == NULL)
			continue;
		if (opt_set_string(c, &options[i], v, msg, sizeof(msg)) == -1)
			add_error(&errs, "environment %s (%s): %s", name,
			    options[i].name, msg);
	}
	if (ov != NULL && ov->state_dir != NULL &&
	    opt_set_string(c, opt_find("state_dir"), ov->state_dir, msg,
	    sizeof(msg)) == -1)
		add_error(&errs, "--state: %s", msg);
	if (ov != NULL && ov->listen != NULL &&
	    opt_set_string(c, opt_find("listen"), ov->listen, msg,
	    sizeof(msg)) == -1)
		add_error(&errs, "--listen: %s", msg);
	if (errs.len == 0)
		check_llm(c, path, &errs);
	if (errs.len == 0)
		check_channels(c, path, &errs);
	if (errs.len == 0)
		check_objstore(c, path, &errs);

	if (errs.len > 0) {
		config_free(c);
		*err = buf_steal(&errs);
		return NULL;
	}
	buf_free(&errs);
	return c;
}

/* Only the JSON text, no environment: what the fuzzer and tests drive. */
struct config *
config_parse(const char *text, size_t len, const char *origin, char **err)
{
	struct config	*c;
	struct buf	 errs;
	json_t		*root;
	json_error_t	 jerr;

	*err = NULL;
	if ((c = config_defaults()) == NULL)
		return NULL;
	buf_init(&errs, 64 * 1024);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		add_error(&errs, "%s:%d:%d: %s", origin, jerr.line, jerr.column,
		    jerr.text);
	else if (!json_is_object(root))
		add_error(&errs, "%s: the config must be a JSON object",
		    origin);
	else
		walk_object(c, root, "", origin, &errs);
	json_decref(root);
	if (errs.len == 0)
		check_llm(c, origin, &errs);
	if (errs.len == 0)
		check_channels(c, origin, &errs);
	if (errs.len == 0)
		check_objstore(c, origin, &errs);
	if (errs.len > 0) {
		config_free(c);
		*err = buf_steal(&errs);
		return NULL;
	}
	buf_free(&errs);
	return c;
}

void
config_free(struct config *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	for (i = 0; i < NOPTIONS; i++) {
		void	*field = (char *)c + options[i].offset;

		if (options[i].type == OPT_STR)
			free(*(char **)field);
		else if (options[i].type == OPT_LIST)
			free_list(*(char ***)field);
		else if (options[i].type == OPT_JSON)
			json_decref(*(json_t **)field);
	}
	free(c);
}

const struct config *
config_current(void)
{
	return __atomic_load_n(&cfg_live, __ATOMIC_ACQUIRE);
}

/*
 * Readers take the pointer without a lock and may hold it for the length of
 * a request, so a replaced config is kept until exit. Reloads are rare.
 */
void
config_publish(struct config *c)
{
	struct config	**p;

	pthread_mutex_lock(&cfg_lock);
	if (cfg_live != NULL) {
		p = realloc(cfg_old, (cfg_nold + 1) * sizeof(*p));
		if (p != NULL) {
			cfg_old = p;
			cfg_old[cfg_nold++] = cfg_live;
		}
	}
	__atomic_store_n(&cfg_live, c, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&cfg_lock);
}

void
config_release_all(void)
{
	size_t	 i;

	pthread_mutex_lock(&cfg_lock);
	for (i = 0; i < cfg_nold; i++)
		config_free(cfg_old[i]);
	free(cfg_old);
	cfg_old = NULL;
	cfg_nold = 0;
	config_free(cfg_live);
	cfg_live = NULL;
	pthread_mutex_unlock(&cfg_lock);
}

/* `pincer config options`: the table, as documentation. */
void
config_print_options(void)
{
	char	 env[128], expect[256];
	size_t	 i;

	for (i = 0; i < NOPTIONS; i++) {
		opt_env_name(&options[i], env, sizeof(env));
		opt_expected(&options[i], expect, sizeof(expect));
		printf("%s\n    %s\n    type: %s; default: %s; env: %s%s\n",
		    options[i].name, options[i].help, expect,
		    *options[i].def ? options[i].def : "(none)", env,
		    options[i].restart ? "; needs a restart" : "");
	}
}

/*
 * Compare two configs and warn about changes SIGHUP cannot apply; the live
 * values of those options are carried over into the new config.
 */
void
config_carry_restart(struct config *next, const struct config *prev,
    json_t *changed)
{
	size_t	 i;

	for (i = 0; i < NOPTIONS; i++) {
		const struct option	*o = &options[i];
		char			*nf = (char *)next + o->offset;
		const char		*pf = (const char *)prev + o->offset;
		bool			 same;

		if (!o->restart)
			continue;
		if (o->type == OPT_STR) {
			same = strcmp(*(char **)nf, *(char *const *)pf) == 0;
			if (!same) {
				free(*(char **)nf);
				*(char **)nf = strdup(*(char *const *)pf);
			}
		} else if (o->type == OPT_JSON) {
			/* Each config holds its own reference. */
			same = json_equal(*(json_t **)nf, *(json_t *const *)pf);
			json_decref(*(json_t **)nf);
			*(json_t **)nf = json_incref(*(json_t *const *)pf);
		} else {
			same = *(long *)nf == *(const long *)pf;
			*(long *)nf = *(const long *)pf;
		}
		if (same)
			continue;
		log_warn("config option needs a restart", "%s changed; the "
		    "running value is kept until pincerd restarts", o->name);
		if (changed != NULL)
			json_array_append_new(changed, json_string(o->name));
	}
}

/*
 * The options table as the API shows it (GET /api/v1/config): each
 * option's type, limits and help, whether a PINCER_* variable or the
 * command line sets it (the file's value is then not the one in effect),
 * its default and the value cur holds. No option holds a credential
 * itself (keys and tokens are secrets' names), so every value is shown.
 */
json_t *
config_describe(const struct config *cur, const struct config_overrides *ov)
{
	static const char *const types[] = { "string", "int", "bool", "enum",
		"list", "json" };
	const struct option	*p;
	struct config		*d;
	json_t			*a, *o, *vals;
	char			 env[128];
	size_t			 i, j;

	if ((d = config_defaults()) == NULL || (a = json_array()) == NULL) {
		config_free(d);
		return NULL;
	}
	for (i = 0; i < NOPTIONS; i++) {
		p = &options[i];
		opt_env_name(p, env, sizeof(env));
		o = json_pack("{s:s, s:s, s:o?, s:b, s:s, s:s, s:b, s:b, s:o?}",
		    "name", p->name, "type", types[p->type], "default",
		    opt_value(p, d), "restart", p->restart, "help", p->help,
		    "env", env, "from_env", getenv(env) != NULL, "from_cli",
		    opt_from_cli(p, ov), "value", opt_value(p, cur));
		if (o != NULL && p->type == OPT_INT) {
			json_object_set_new(o, "min", json_integer(p->min));
			json_object_set_new(o, "max", json_integer(p->max));
		}
		if (o != NULL && p->type == OPT_ENUM) {
			vals = json_array();
			for (j = 0; p->values[j] != NULL; j++)
				json_array_append_new(vals,
				    json_string(p->values[j]));
			json_object_set_new(o, "values", vals);
		}
		json_array_append_new(a, o);
	}
	config_free(d);
	return a;
}

/* Providers, routes and budgets refer to each other: checked together. */
static void
check_llm(const struct config *c, const char *origin, struct buf *errs)
{
	struct llm_conf	*lc;
	char		 msg[512];

	if ((lc = llm_conf_build(c, msg, sizeof(msg))) == NULL)
		add_error(errs, "%s: %s", origin, msg);
	llm_conf_free(lc);
}

static void
check_channels(const struct config *c, const char *origin, struct buf *errs)
{
	char	 msg[512];

	if (channel_check(c->channels, msg, sizeof(msg)) == -1)
		add_error(errs, "%s: %s", origin, msg);
}

/* What an s3 backend cannot work without; the secrets are checked when
 * the store opens (they live in the database, not here). */
static void
check_objstore(const struct config *c, const char *origin, struct buf *errs)
{
	const char	*p = c->os_prefix;

	if (c->os_backend == 1 && *c->os_endpoint == '\0')
		add_error(errs, "%s: objstore.endpoint: the s3 backend needs "
		    "the store's URL", origin);
	if (c->os_backend == 1 && *c->os_bucket == '\0')
		add_error(errs, "%s: objstore.bucket: the s3 backend needs a "
		    "bucket", origin);
	if (*p != '\0' && (*p == '/' || p[strlen(p) - 1] != '/' ||
	    strstr(p, "//") != NULL || strlen(p) > 128))
		add_error(errs, "%s: objstore.prefix: expected folders ending "
		    "in '/' like \"pincer/\", without a leading '/'", origin);
}

static struct config *
config_defaults(void)
{
	struct config	*c;
	char		 msg[256];
	size_t		 i;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	for (i = 0; i < NOPTIONS; i++)
		if (opt_set_string(c, &options[i], options[i].def, msg,
		    sizeof(msg)) == -1)
			abort();	/* a bad default is a build bug */
	return c;
}

static void
walk_object(struct config *c, json_t *obj, const char *prefix,
    const char *origin, struct buf *errs)
{
	const char		*key;
	json_t			*val;
	const struct option	*o;
	char			 name[256], msg[256];

	json_object_foreach(obj, key, val) {
		/* "http.threads" as one key would dodge duplicate checks. */
		if (strchr(key, '.') != NULL || *key == '\0') {
			add_error(errs, "%s: %s%s%s: unknown option (nest "
			    "objects instead of dotted keys)", origin, prefix,
			    *prefix ? "." : "", key);
			continue;
		}
		snprintf(name, sizeof(name), "%s%s%s", prefix,
		    *prefix ? "." : "", key);
		if ((o = opt_find(name)) != NULL) {
			if (opt_set_json(c, o, val, msg, sizeof(msg)) == -1)
				add_error(errs, "%s: %s: %s", origin, name,
				    msg);
		} else if (opt_is_prefix(name)) {
			if (json_is_object(val))
				walk_object(c, val, name, origin, errs);
			else
				add_error(errs, "%s: %s: expected an object",
				    origin, name);
		} else
			add_error(errs, "%s: %s: unknown option (see `pincer "
			    "config options`)", origin, name);
	}
}

static int
opt_set_json(struct config *c, const struct option *o, json_t *v, char *msg,
    size_t msgsz)
{
	struct buf	 list;
	json_t		*item;
	size_t		 i;
	int		 rc;
	char		 num[32];

	switch (o->type) {
	case OPT_STR:
	case OPT_ENUM:
		if (!json_is_string(v))
			break;
		return opt_set_string(c, o, json_string_value(v), msg, msgsz);
	case OPT_BOOL:
		if (!json_is_boolean(v))
			break;
		return opt_set_string(c, o, json_is_true(v) ? "true" : "false",
		    msg, msgsz);
	case OPT_INT:
		if (!json_is_integer(v))
			break;
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return opt_set_string(c, o, num, msg, msgsz);
	case OPT_LIST:
		if (!json_is_array(v))
			break;
		/* Join into the env syntax so one parser checks both. */
		buf_init(&list, 64 * 1024);
		json_array_foreach(v, i, item) {
			if (!json_is_string(item) ||
			    strchr(json_string_value(item), ',') != NULL ||
			    *json_string_value(item) == '\0') {
				buf_free(&list);
				goto bad;
			}
			if ((i > 0 && buf_puts(&list, ",") == -1) ||
			    buf_puts(&list, json_string_value(item)) == -1) {
				buf_free(&list);
				snprintf(msg, msgsz, "list too long");
				return -1;
			}
		}
		rc = opt_set_string(c, o, list.data ? list.data : "", msg,
		    msgsz);
		buf_free(&list);
		return rc;
	case OPT_JSON:
		return opt_set_value(c, o, v, msg, msgsz);
	}
bad:
	opt_expected(o, msg, msgsz);
	return -1;
}

static int
opt_set_string(struct config *c, const struct option *o, const char *s,
    char *msg, size_t msgsz)
{
	void		*field = (char *)c + o->offset;
	char		*end, *copy, *tok, *save, **list;
	long long	 n;
	size_t		 i, count;
	json_t		*v;

	switch (o->type) {
	case OPT_STR:
		if (o->check != NULL && o->check(s, msg, msgsz) == -1)
			return -1;
		if ((copy = strdup(s)) == NULL)
			goto nomem;
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	case OPT_INT:
		errno = 0;
		n = strtoll(s, &end, 10);
		if (*s == '\0' || *end != '\0' || errno != 0 || n < o->min ||
		    n > o->max)
			goto bad;
		*(long *)field = (long)n;
		return 0;
	case OPT_BOOL:
		if (!strcmp(s, "true") || !strcmp(s, "1"))
			*(bool *)field = true;
		else if (!strcmp(s, "false") || !strcmp(s, "0"))
			*(bool *)field = false;
		else
			goto bad;
		return 0;
	case OPT_ENUM:
		for (i = 0; o->values[i] != NULL; i++)
			if (!strcmp(s, o->values[i])) {
				*(int *)field = (int)i;
				return 0;
			}
		goto bad;
	case OPT_LIST:
		for (count = 1, i = 0; s[i]; i++)
			count += s[i] == ',';
		if ((list = calloc(count + 1, sizeof(*list))) == NULL ||
		    (copy = strdup(s)) == NULL) {
			free(list);
			goto nomem;
		}
		for (i = 0, tok = strtok_r(copy, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			while (isspace((unsigned char)*tok))
				tok++;
			if (*tok == '\0')
				continue;
			if ((o->check != NULL &&
			    o->check(tok, msg, msgsz) == -1) ||
			    (list[i] = strdup(tok)) == NULL) {
				free(copy);
				free_list(list);
				return -1;
			}
			i++;
		}
		free(copy);
		free_list(*(char ***)field);
		*(char ***)field = list;
		return 0;
	case OPT_JSON:
		if ((v = json_loads(s, JSON_REJECT_DUPLICATES, NULL)) == NULL)
			goto bad;
		n = opt_set_value(c, o, v, msg, msgsz);
		json_decref(v);
		return (int)n;
	}
bad:
	opt_expected(o, msg, msgsz);
	return -1;
nomem:
	snprintf(msg, msgsz, "out of memory");
	return -1;
}

/* A JSON option keeps the value as given; llm_conf.c reads it. */
static int
opt_set_value(struct config *c, const struct option *o, json_t *v,
    char *msg, size_t msgsz)
{
	json_t	**field = (json_t **)((char *)c + o->offset);

	if ((o->def[0] == '[' && !json_is_array(v)) ||
	    (o->def[0] == '{' && !json_is_object(v))) {
		opt_expected(o, msg, msgsz);
		return -1;
	}
	json_decref(*field);
	*field = json_incref(v);
	return 0;
}

static void
opt_expected(const struct option *o, char *msg, size_t msgsz)
{
	size_t	 i, n;

	switch (o->type) {
	case OPT_STR:
		snprintf(msg, msgsz, "expected a string");
		break;
	case OPT_INT:
		snprintf(msg, msgsz, "expected an integer from %ld to %ld",
		    o->min, o->max);
		break;
	case OPT_BOOL:
		snprintf(msg, msgsz, "expected true or false");
		break;
	case OPT_LIST:
		snprintf(msg, msgsz, "expected a list of non-empty strings "
		    "without commas");
		break;
	case OPT_JSON:
		snprintf(msg, msgsz, "expected JSON: %s", o->def[0] == '[' ?
		    "an array" : "an object");
		break;
	case OPT_ENUM:
		n = (size_t)snprintf(msg, msgsz, "expected one of");
		for (i = 0; o->values[i] != NULL && n < msgsz; i++)
			n += (size_t)snprintf(msg + n, msgsz - n, "%s \"%s\"",
			    i ? "," : "", o->values[i]);
		break;
	}
}

static void
opt_env_name(const struct option *o, char *out, size_t outsz)
{
	size_t	 i, n;

	if (o->env != NULL) {
		snprintf(out, outsz, "%s", o->env);
		return;
	}
	n = (size_t)snprintf(out, outsz, "PINCER_");
	for (i = 0; o->name[i] && n + 1 < outsz; i++)
		out[n++] = o->name[i] == '.' ? '_' :
		    (char)toupper((unsigned char)o->name[i]);
	out[n] = '\0';
}

static const struct option *
opt_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < NOPTIONS; i++)
		if (!strcmp(options[i].name, name))
			return &options[i];
	return NULL;
}

static bool
opt_is_prefix(const char *name)
{
	size_t	 i, n = strlen(name);

	for (i = 0; i < NOPTIONS; i++)
		if (!strncmp(options[i].name, name, n) &&
		    options[i].name[n] == '.')
			return true;
	return false;
}

/*
 * One error, one line: jansson quotes the raw input near a syntax error,
 * so control bytes from the file are replaced before they reach a
 * terminal or the log.
 */
static void
add_error(struct buf *errs, const char *fmt, ...)
{
	char	 line[512], *p;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	buf_puts(errs, line);
	buf_puts(errs, "\n");
}

static int
check_listen(const char *s, char *msg, size_t msgsz)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;

	if (net_parse_listen(s, &ss, &len) == 0)
		return 0;
	snprintf(msg, msgsz, "expected ADDRESS:PORT with a numeric IPv4 "
	    "address, [IPv6] or localhost, and a port from 0 to 65535");
	return -1;
}

/* A CDP endpoint: empty (none), or http(s):// or ws(s):// and a host. */
static int
check_cdp_url(const char *s, char *msg, size_t msgsz)
{
	static const char *const schemes[] = { "http://", "https://", "ws://",
		"wss://", NULL };
	size_t	 i, n;

	if (*s == '\0')
		return 0;
	for (i = 0; schemes[i] != NULL; i++) {
		n = strlen(schemes[i]);
		if (!strncasecmp(s, schemes[i], n) && s[n] != '\0' &&
		    s[n] != '/' && strpbrk(s, " \t\r\n") == NULL)
			return 0;
	}
	snprintf(msg, msgsz, "expected an http://, https://, ws:// or wss:// "
	    "URL with a host (a Chromium's http://HOST:9222, or a hosted "
	    "browser's WebSocket URL)");
	return -1;
}

static int
check_cidr(const char *s, char *msg, size_t msgsz)
{
	struct ipaddr	 ip;
	char		 addr[64], *slash, *end;
	long		 bits;

	if ((size_t)snprintf(addr, sizeof(addr), "%s", s) >= sizeof(addr))
		goto bad;
	if ((slash = strchr(addr, '/')) != NULL) {
		*slash++ = '\0';
		bits = strtol(slash, &end, 10);
		if (!isdigit((unsigned char)*slash) || strlen(slash) > 3 ||
		    *end != '\0' || bits < 0 || bits > 128)
			goto bad;
		if (strchr(addr, ':') == NULL && bits > 32)
			goto bad;
	}
	if (net_ipaddr_parse(addr, &ip) == 0)
		return 0;
bad:
	snprintf(msg, msgsz, "\"%s\" is not an IP address or CIDR", s);
	return -1;
}

/* A field of c as JSON, typed as the file writes it. */
static json_t *
opt_value(const struct option *o, const struct config *c)
{
	const char	*f = (const char *)c + o->offset;
	char *const	*l;
	json_t		*a;

	switch (o->type) {
	case OPT_STR:
		return json_string(*(char *const *)f);
	case OPT_INT:
		return json_integer(*(const long *)f);
	case OPT_BOOL:
		return json_boolean(*(const bool *)f);
	case OPT_ENUM:
		return json_string(o->values[*(const int *)f]);
	case OPT_LIST:
		a = json_array();
		for (l = *(char **const *)f; l != NULL && *l != NULL; l++)
			json_array_append_new(a, json_string(*l));
		return a;
	case OPT_JSON:
		/* A copy: the live config's tree is read by other threads. */
		return json_deep_copy(*(json_t *const *)f);
	}
	return NULL;
}

static bool
opt_from_cli(const struct option *o, const struct config_overrides *ov)
{
	if (ov == NULL)
		return false;
	return (ov->state_dir != NULL && !strcmp(o->name, "state_dir")) ||
	    (ov->listen != NULL && !strcmp(o->name, "listen"));
}

static void
free_list(char **list)
{
	size_t	 i;

	for (i = 0; list != NULL && list[i] != NULL; i++)
		free(list[i]);
	free(list);
}

/* scheme://host[:port] and nothing after it. */
static int
check_origin(const char *s, char *msg, size_t msgsz)
{
	const char	*h;

	if (*s == '\0')
		return 0;
	h = !strncmp(s, "https://", 8) ? s + 8 : !strncmp(s, "http://", 7) ?
	    s + 7 : NULL;
	if (h != NULL && *h != '\0' && strcspn(h, "/?#@ ") == strlen(h))
		return 0;
	snprintf(msg, msgsz, "expected an origin like https://host[:port], "
	    "without a path");
	return -1;
}

static int
check_url(const char *s, char *msg, size_t msgsz)
{
	if (*s == '\0' || !strncmp(s, "https://", 8) ||
	    !strncmp(s, "http://", 7))
		return 0;
	snprintf(msg, msgsz, "expected an http:// or https:// URL");
	return -1;
}

static int
check_jwt_alg(const char *s, char *msg, size_t msgsz)
{
	if (!strcmp(s, "RS256") || !strcmp(s, "ES256"))
		return 0;
	snprintf(msg, msgsz, "\"%s\": expected RS256 or ES256", s);
	return -1;
}

/* Empty, or an absolute path (the launcher runs from another folder). */
static int
check_abs_path(const char *v, char *err, size_t errsz)
{
	if (*v == '\0' || (*v == '/' && strchr(v, ',') == NULL))
		return 0;
	snprintf(err, errsz, "expected an absolute path without ','");
	return -1;
}
