/* SPDX-License-Identifier: MIT */
/* test_config.c: pincer.json, PINCER_* variables and overrides (config.c). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pincer.h"
#include "tap.h"

extern char **environ;

static struct config *parse(const char *, char **);
static bool	has(const char *, const char *);
static int	count_lines(const char *);
static void	clear_env(void);
static void	write_file(const char *, const char *);
static void	test_valid(void);
static void	test_errors(void);
static void	test_proxies(void);
static void	test_load(const char *);
static void	test_load_errors(const char *);
static void	test_carry(void);
static void	test_publish(void);
static void	test_known_bugs(void);

int
main(void)
{
	char	 dir[] = "/tmp/pincer-test-config.XXXXXX";

	/* carry_restart warns on stderr; keep the test log quiet. */
	log_setup(LOG_ERROR, LOG_LOGFMT);
	clear_env();
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	test_valid();
	test_errors();
	test_proxies();
	test_load(dir);
	test_load_errors(dir);
	test_carry();
	test_publish();
	test_known_bugs();
	ok(rmdir(dir) == 0, "the test folder is left empty");
	return done_testing();
}

static struct config *
parse(const char *text, char **err)
{
	*err = NULL;
	return config_parse(text, strlen(text), "test.json", err);
}

/* The error text holds the string; say what it was if not. */
static bool
has(const char *err, const char *want)
{
	if (err != NULL && strstr(err, want) != NULL)
		return true;
	printf("#   error text: %s\n#   wanted: %s\n", err ? err : "(null)",
	    want);
	return false;
}

static int
count_lines(const char *s)
{
	int	 n = 0;

	for (; s != NULL && *s; s++)
		n += *s == '\n';
	return n;
}

/* Unset every PINCER_* variable, so that no case leaks into the next. */
static void
clear_env(void)
{
	char	**e, *name;
	size_t	 n;

	for (;;) {
		for (e = environ; *e != NULL; e++)
			if (!strncmp(*e, "PINCER_", 7))
				break;
		if (*e == NULL)
			return;
		n = strcspn(*e, "=");
		if ((name = strndup(*e, n)) == NULL || unsetenv(name) == -1) {
			printf("Bail out! cannot unset %s\n", *e);
			exit(1);
		}
		free(name);
	}
}

static void
write_file(const char *path, const char *text)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) == EOF) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
}

static void
test_valid(void)
{
	struct config	*c;
	char		*err;
	static const char full[] = "{\"listen\": \"[::1]:9000\", "
	    "\"state_dir\": \"/srv/pincer\", "
	    "\"log\": {\"level\": \"debug\", \"format\": \"json\", "
	    "\"requests\": false}, "
	    "\"http\": {\"max_body_bytes\": 0, \"max_header_bytes\": 65536, "
	    "\"threads\": 8, \"trusted_proxies\": [\"10.0.0.0/8\", \"::1\"]}, "
	    "\"ws\": {\"max_message_bytes\": 125}, "
	    "\"admin_ui\": {\"dir\": \"/ui\"}, "
	    "\"store\": {\"busy_timeout_ms\": 0}}";

	c = parse("{}", &err);
	ok(c != NULL && err == NULL, "{} parses with no error");
	if (c != NULL) {
		is_str(c->listen, "127.0.0.1:8787", "default listen");
		is_str(c->state_dir, "/var/lib/pincer", "default state_dir");
		is_int(c->max_body_bytes, 1048576, "default max_body_bytes");
		is_int(c->log_level, LOG_INFO, "default level info");
		is_int(c->log_format, LOG_LOGFMT, "default format logfmt");
		ok(c->log_requests, "requests logged by default");
		is_int(c->rate_limit_burst, 200, "default burst");
		ok(c->trusted_proxies != NULL && c->trusted_proxies[0] == NULL,
		    "no trusted proxies by default, as an empty list");
		ok(c->admin_ui_dir != NULL && strlen(c->admin_ui_dir) > 9 &&
		    !strcmp(c->admin_ui_dir + strlen(c->admin_ui_dir) - 9,
		    "/admin-ui"), "default admin UI folder");
	}
	config_free(c);

	c = parse(full, &err);
	ok(c != NULL, "a full config parses%s%s", err ? ": " : "",
	    err ? err : "");
	free(err);
	if (c == NULL)
		return;
	is_str(c->listen, "[::1]:9000", "listen");
	is_str(c->state_dir, "/srv/pincer", "state_dir");
	is_int(c->log_level, LOG_DEBUG, "log.level");
	is_int(c->log_format, LOG_JSON, "log.format");
	ok(!c->log_requests, "log.requests false");
	is_int(c->max_body_bytes, 0, "max_body_bytes at its minimum");
	is_int(c->max_header_bytes, 65536, "max_header_bytes at its maximum");
	is_int(c->http_threads, 8, "threads");
	is_int(c->ws_max_message_bytes, 125, "ws.max_message_bytes");
	is_str(c->admin_ui_dir, "/ui", "admin_ui.dir");
	is_int(c->busy_timeout_ms, 0, "store.busy_timeout_ms");
	is_str(c->trusted_proxies[0], "10.0.0.0/8", "first proxy");
	is_str(c->trusted_proxies[1], "::1", "second proxy");
	ok(c->trusted_proxies[2] == NULL, "proxy list terminated");
	is_int(c->idle_timeout_s, 60, "unset options keep their defaults");
	config_free(c);
	config_free(NULL);
	ok(1, "config_free(NULL) is harmless");
}

static void
test_errors(void)
{
	struct config	*c;
	char		*err;

	c = parse("{\"http\": {\"max_bodyy\": 5}}", &err);
	ok(c == NULL, "unknown key refused");
	ok(has(err, "test.json: http.max_bodyy: unknown option"),
	    "the error names the dotted key");
	free(err);
	c = parse("{\"lisen\": \"127.0.0.1:1\"}", &err);
	ok(c == NULL && has(err, "lisen: unknown option"),
	    "unknown top-level key");
	free(err);
	c = parse("{\"http\": {\"max_body_bytes\": \"big\"}}", &err);
	ok(c == NULL, "string for an integer refused");
	ok(has(err, "http.max_body_bytes: expected an integer from 0 to "
	    "1073741824"), "the error names the key and the type");
	free(err);
	c = parse("{\"http\": {\"max_body_bytes\": 1.5}}", &err);
	ok(c == NULL && has(err, "expected an integer"), "a real refused");
	free(err);
	c = parse("{\"http\": {\"max_body_bytes\": 1073741825}}", &err);
	ok(c == NULL && has(err, "http.max_body_bytes: expected an integer "
	    "from 0 to 1073741824"), "one past the maximum refused");
	free(err);
	c = parse("{\"http\": {\"max_body_bytes\": -1}}", &err);
	ok(c == NULL && has(err, "http.max_body_bytes"),
	    "one below the minimum refused");
	free(err);
	c = parse("{\"http\": {\"max_header_bytes\": 1023}}", &err);
	ok(c == NULL && has(err, "expected an integer from 1024 to 65536"),
	    "max_header_bytes below 1024 refused");
	free(err);
	c = parse("{\"http\": {\"threads\": 99999999999999999999}}", &err);
	ok(c == NULL, "an integer too big for JSON refused");
	free(err);
	c = parse("{\"log\": {\"level\": \"verbose\"}}", &err);
	ok(c == NULL && has(err, "log.level: expected one of \"debug\", "
	    "\"info\", \"warn\", \"error\""), "enum error lists the values");
	free(err);
	c = parse("{\"log\": {\"format\": \"JSON\"}}", &err);
	ok(c == NULL && has(err, "\"logfmt\", \"json\""),
	    "enum values are case-sensitive");
	free(err);
	c = parse("{\"log\": {\"requests\": \"yes\"}}", &err);
	ok(c == NULL && has(err, "log.requests: expected true or false"),
	    "bool error");
	free(err);
	c = parse("{\"state_dir\": null}", &err);
	ok(c == NULL && has(err, "state_dir: expected a string"),
	    "null for a string refused");
	free(err);
	c = parse("{\"log\": 3}", &err);
	ok(c == NULL && has(err, "test.json: log: expected an object"),
	    "a scalar where an object is expected");
	free(err);
	c = parse("{\"http\": [1]}", &err);
	ok(c == NULL && has(err, "http: expected an object"),
	    "an array where an object is expected");
	free(err);
	c = parse("{\"listen\": \"example.com:80\"}", &err);
	ok(c == NULL && has(err, "listen: expected ADDRESS:PORT"),
	    "listen is checked");
	free(err);
	c = parse("{\"listen\": \"127.0.0.1:1\", \"listen\": "
	    "\"127.0.0.1:2\"}", &err);
	ok(c == NULL && has(err, "duplicate"), "duplicate keys refused");
	free(err);
	c = parse("{\"http\": {\"threads\": 2, \"threads\": 3}}", &err);
	ok(c == NULL && has(err, "duplicate"), "nested duplicate refused");
	free(err);
	c = parse("{\n  \"listen\": \"127.0.0.1:1\",\n  \"log\": ,\n}", &err);
	ok(c == NULL && has(err, "test.json:3:"),
	    "malformed JSON gives file:line:col");
	ok(err != NULL && strncmp(err, "test.json:3:", 12) == 0 &&
	    err[12] >= '1' && err[12] <= '9', "with a column");
	free(err);
	c = parse("", &err);
	ok(c == NULL && has(err, "test.json:"), "empty text refused");
	free(err);
	c = parse("[1, 2]", &err);
	ok(c == NULL && has(err, "test.json: the config must be a JSON "
	    "object"), "an array is not a config");
	free(err);
	c = config_parse("{}garbage", 2, "test.json", &err);
	ok(c != NULL && err == NULL, "only len bytes are read");
	config_free(c);

	c = parse("{\"foo\": 1, \"http\": {\"threads\": 0, "
	    "\"max_body_bytes\": \"x\"}, \"log\": {\"level\": \"loud\"}}",
	    &err);
	ok(c == NULL, "several errors refused");
	is_int(count_lines(err), 4, "all four reported, one per line");
	ok(has(err, "foo: unknown") && has(err, "http.threads: expected an "
	    "integer from 1 to 64") && has(err, "http.max_body_bytes") &&
	    has(err, "log.level"), "each names its key");
	free(err);
}

static void
test_proxies(void)
{
	struct config	*c;
	char		*err;
	static const char *const bad[] = {
		"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129",
		"10.0.0.0/-1", "proxy.example", "10.0.0.256", "1.2.3.4/8/8",
	};
	char		 text[256];
	size_t		 i;

	c = parse("{\"http\": {\"trusted_proxies\": [\"10.0.0.0/8\", "
	    "\"192.168.1.1\", \"fd00::/8\", \"::1/128\", \"0.0.0.0/0\"]}}",
	    &err);
	ok(c != NULL, "valid CIDRs and addresses accepted%s%s",
	    err ? ": " : "", err ? err : "");
	free(err);
	if (c != NULL)
		is_str(c->trusted_proxies[4], "0.0.0.0/0", "all five kept");
	config_free(c);
	c = parse("{\"http\": {\"trusted_proxies\": []}}", &err);
	ok(c != NULL && c->trusted_proxies != NULL &&
	    c->trusted_proxies[0] == NULL, "an empty list is allowed");
	config_free(c);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"http\": {\"trusted_proxies\": "
		    "[\"10.0.0.1\", \"%s\"]}}", bad[i]);
		c = parse(text, &err);
		snprintf(text, sizeof(text), "\"%s\" is not an IP address or "
		    "CIDR", bad[i]);
		ok(c == NULL && has(err, text) &&
		    has(err, "http.trusted_proxies"), "%s refused", bad[i]);
		config_free(c);
		free(err);
	}
	c = parse("{\"http\": {\"trusted_proxies\": \"10.0.0.1\"}}", &err);
	ok(c == NULL && has(err, "expected a list"), "a string is not a list");
	free(err);
	c = parse("{\"http\": {\"trusted_proxies\": [\"10.0.0.1,10.0.0.2\"]}}",
	    &err);
	ok(c == NULL && has(err, "without commas"), "commas refused in JSON");
	free(err);
	c = parse("{\"http\": {\"trusted_proxies\": [\"\"]}}", &err);
	ok(c == NULL && has(err, "non-empty"), "an empty entry refused");
	free(err);
	c = parse("{\"http\": {\"trusted_proxies\": [7]}}", &err);
	ok(c == NULL && has(err, "expected a list"), "a number refused");
	free(err);
}

static void
test_load(const char *dir)
{
	struct config_overrides	 ov = { 0 };
	struct config		*c;
	char			 path[256], *err = NULL;

	snprintf(path, sizeof(path), "%s/pincer.json", dir);
	write_file(path, "{\"listen\": \"127.0.0.1:1111\", \"http\": "
	    "{\"max_body_bytes\": 2048, \"threads\": 3}}\n");
	ov.config_file = path;
	is_str(config_path(&ov), path, "config_path is --config");
	c = config_load(&ov, &err);
	ok(c != NULL && err == NULL, "load a config file");
	if (c != NULL) {
		is_str(c->listen, "127.0.0.1:1111", "listen from the file");
		is_int(c->max_body_bytes, 2048, "max_body_bytes from the file");
		is_str(c->state_dir, "/var/lib/pincer", "state_dir default");
	}
	config_free(c);

	setenv("PINCER_HTTP_MAX_BODY_BYTES", "4096", 1);
	setenv("PINCER_STATE", "/tmp/pincer-state", 1);
	setenv("PINCER_LISTEN", "127.0.0.1:2222", 1);
	setenv("PINCER_LOG_LEVEL", "warn", 1);
	setenv("PINCER_LOG_REQUESTS", "0", 1);
	setenv("PINCER_HTTP_TRUSTED_PROXIES", "10.0.0.0/8, ::1,", 1);
	c = config_load(&ov, &err);
	ok(c != NULL, "load with the environment%s%s", err ? ": " : "",
	    err ? err : "");
	free(err);
	if (c != NULL) {
		is_int(c->max_body_bytes, 4096, "env wins over the file");
		is_int(c->http_threads, 3, "the file still counts elsewhere");
		is_str(c->state_dir, "/tmp/pincer-state",
		    "PINCER_STATE sets state_dir");
		is_str(c->listen, "127.0.0.1:2222", "PINCER_LISTEN");
		is_int(c->log_level, LOG_WARN, "PINCER_LOG_LEVEL");
		ok(!c->log_requests, "PINCER_LOG_REQUESTS=0");
		ok(c->trusted_proxies[0] && !strcmp(c->trusted_proxies[0],
		    "10.0.0.0/8") && c->trusted_proxies[1] &&
		    !strcmp(c->trusted_proxies[1], "::1") &&
		    c->trusted_proxies[2] == NULL,
		    "comma-separated proxies, trimmed, empty entries dropped");
	}
	config_free(c);

	ov.listen = "[::1]:3333";
	ov.state_dir = "/tmp/pincer-flag";
	c = config_load(&ov, &err);
	ok(c != NULL, "load with overrides");
	if (c != NULL) {
		is_str(c->listen, "[::1]:3333", "--listen wins over env and "
		    "file");
		is_str(c->state_dir, "/tmp/pincer-flag",
		    "--state wins over env");
	}
	config_free(c);
	clear_env();

	ov.config_file = NULL;
	ov.listen = ov.state_dir = NULL;
	setenv("PINCER_CONFIG", path, 1);
	is_str(config_path(&ov), path, "PINCER_CONFIG names the file");
	c = config_load(&ov, &err);
	ok(c != NULL && c->max_body_bytes == 2048,
	    "the file named by PINCER_CONFIG is read");
	config_free(c);
	clear_env();
	is_str(config_path(NULL), "/etc/pincer/pincer.json",
	    "the default path");
	unlink(path);
}

static void
test_load_errors(const char *dir)
{
	struct config_overrides	 ov = { 0 };
	struct config		*c;
	char			 path[256], *err = NULL;

	snprintf(path, sizeof(path), "%s/missing.json", dir);
	ov.config_file = path;
	c = config_load(&ov, &err);
	ok(c == NULL, "an explicit --config that is missing is an error");
	ok(has(err, path), "the error names the file");
	free(err);

	snprintf(path, sizeof(path), "%s/pincer.json", dir);
	write_file(path, "{\"http\": {}}\n");
	setenv("PINCER_HTTP_MAX_BODY_BYTES", "lots", 1);
	c = config_load(&ov, &err);
	ok(c == NULL, "a bad env value is an error");
	ok(has(err, "environment PINCER_HTTP_MAX_BODY_BYTES "
	    "(http.max_body_bytes): expected an integer from 0 to 1073741824"),
	    "the error names the variable, the option and the type");
	free(err);
	clear_env();
	setenv("PINCER_STATE", "", 1);
	setenv("PINCER_LOG_FORMAT", "xml", 1);
	c = config_load(&ov, &err);
	ok(c == NULL && has(err, "PINCER_LOG_FORMAT (log.format)"),
	    "a bad enum in the environment");
	free(err);
	clear_env();

	ov.listen = "nowhere";
	c = config_load(&ov, &err);
	ok(c == NULL && has(err, "--listen: expected ADDRESS:PORT"),
	    "a bad --listen is an error");
	free(err);
	ov.listen = NULL;

	write_file(path, "{\n\"http\": {\n\"threads\": 1,\n}\n}\n");
	setenv("PINCER_HTTP_THREADS", "100", 1);
	c = config_load(&ov, &err);
	ok(c == NULL && has(err, path) && has(err, ":4:"),
	    "malformed file: path:line:col");
	ok(has(err, "PINCER_HTTP_THREADS"), "and the env error as well");
	is_int(count_lines(err), 2, "both errors, one per line");
	free(err);
	clear_env();

	write_file(path, "{\"log\": {\"level\": \"x\"}, \"ws\": 1}\n");
	c = config_load(&ov, &err);
	ok(c == NULL && has(err, "log.level") && has(err, "ws: expected an "
	    "object"), "every error in the file is reported");
	is_int(count_lines(err), 2, "two lines");
	free(err);
	write_file(path, "[1, 2]\n");
	c = config_load(&ov, &err);
	ok(c == NULL && has(err, "must be a JSON object"),
	    "a file that is not an object");
	free(err);
	unlink(path);
}

static void
test_carry(void)
{
	struct config	*prev, *next;
	char		*err;

	prev = parse("{\"listen\": \"127.0.0.1:1\", \"state_dir\": \"/a\", "
	    "\"http\": {\"threads\": 4, \"max_body_bytes\": 100}, "
	    "\"store\": {\"busy_timeout_ms\": 10}}", &err);
	next = parse("{\"listen\": \"127.0.0.1:2\", \"state_dir\": \"/b\", "
	    "\"http\": {\"threads\": 8, \"max_body_bytes\": 200}, "
	    "\"store\": {\"busy_timeout_ms\": 20}, "
	    "\"log\": {\"level\": \"debug\"}}", &err);
	ok(prev != NULL && next != NULL, "two configs to compare");
	if (prev == NULL || next == NULL) {
		config_free(prev);
		config_free(next);
		return;
	}
	config_carry_restart(next, prev, NULL);
	is_str(next->listen, "127.0.0.1:1", "listen needs a restart: kept");
	is_str(next->state_dir, "/a", "state_dir kept");
	is_int(next->http_threads, 4, "http.threads kept");
	is_int(next->busy_timeout_ms, 10, "store.busy_timeout_ms kept");
	is_int(next->max_body_bytes, 200, "max_body_bytes takes effect");
	is_int(next->log_level, LOG_DEBUG, "log.level takes effect");
	ok(next->listen != prev->listen, "strings are copied, not shared");
	config_free(prev);
	config_free(next);
}

static void
test_publish(void)
{
	struct config	*a, *b;
	char		*err;

	ok(config_current() == NULL, "nothing live at first");
	a = parse("{}", &err);
	b = parse("{\"http\": {\"threads\": 5}}", &err);
	config_publish(a);
	ok(config_current() == a, "published config is live");
	config_publish(b);
	ok(config_current() == b, "a reload replaces it");
	is_int(a->http_threads, 2, "the old one is still readable");
	config_release_all();
	ok(config_current() == NULL, "release_all frees them all");
}

static void
test_known_bugs(void)
{
	struct config	*c;
	char		*err;
	static const char nl[] = "{\"admin_ui\": {\"dir\": \"\\ud94d\\\n";
	static const char cidr[] = "{\"http\": {\"trusted_proxies\": "
	    "[\"10.0.0.1/000000000000000000000000000000000000000000000000000000"
	    "008x\"]}}";

	/* Found by fuzz_config: jansson quotes the input near the error. */
	c = config_parse(nl, sizeof(nl) - 1, "test.json", &err);
	ok(c == NULL && err != NULL, "an invalid escape is refused");
	ok(err != NULL && count_lines(err) == 1, "one error is one line");
	free(err);

	/* check_cidr and net_cidr_match both cut the text at 63 bytes. */
	c = parse(cidr, &err);
	ok(c == NULL, "an over-long CIDR with junk at the end is refused");
	config_free(c);
	free(err);
}
