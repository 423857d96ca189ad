/* SPDX-License-Identifier: MIT */
/* fuzz_config.c: config_parse() on arbitrary text; what it returns is sane. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	check_config(const struct config *);
static void	check_errors(const char *);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config	*defaults;
	struct config		*c;
	char			*err = NULL;

	if (defaults == NULL) {
		/* carry_restart warns on stderr for every difference. */
		log_setup(LOG_ERROR, LOG_LOGFMT);
		if ((defaults = config_parse("{}", 2, "defaults", &err)) ==
		    NULL)
			abort();
	}
	c = config_parse((const char *)data, size, "fuzz.json", &err);
	if (c != NULL) {
		if (err != NULL)
			abort();
		check_config(c);
		config_carry_restart(c, defaults, NULL);
		check_config(c);
		config_free(c);
	} else if (err != NULL) {
		check_errors(err);
		free(err);
	}
	return 0;
}

/* Whatever was accepted passed the same checks as the defaults. */
static void
check_config(const struct config *c)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	struct ipaddr		 ip;
	size_t			 i;

	if (c->listen == NULL || net_parse_listen(c->listen, &ss, &len) == -1)
		abort();
	if (c->state_dir == NULL || c->admin_ui_dir == NULL)
		abort();
	if (c->log_level < LOG_DEBUG || c->log_level > LOG_ERROR ||
	    c->log_format < LOG_LOGFMT || c->log_format > LOG_JSON)
		abort();
	if (c->max_header_bytes < 1024 || c->max_header_bytes > 65536 ||
	    c->max_body_bytes < 0 || c->max_body_bytes > 1073741824 ||
	    c->http_threads < 1 || c->http_threads > 64 ||
	    c->rate_limit_burst < 1 || c->ws_max_message_bytes < 125)
		abort();
	if (c->trusted_proxies == NULL)
		abort();
	memset(&ip, 0, sizeof(ip));
	for (i = 0; c->trusted_proxies[i] != NULL; i++) {
		if (c->trusted_proxies[i][0] == '\0' ||
		    strchr(c->trusted_proxies[i], ',') != NULL)
			abort();
		(void)net_cidr_match(c->trusted_proxies[i], &ip);
	}
}

/*
 * One error per line, each naming the origin: config.c replaces the
 * control bytes jansson may quote from the input (found by this target).
 */
static void
check_errors(const char *err)
{
	const char	*line = err;
	size_t		 n = strlen(err);

	if (n == 0 || err[n - 1] != '\n')
		abort();
	for (; *line != '\0'; line = strchr(line, '\n') + 1)
		if (strncmp(line, "fuzz.json:", 10) != 0)
			abort();
}
