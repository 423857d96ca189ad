/* SPDX-License-Identifier: MIT */
/*
 * egress_policy.c: a sandbox's named egress policy, parsed once from
 * config (egress.policies.NAME) into the rules that egress_match.c
 * weighs for each outbound request or CONNECT tunnel.
 *
 * A policy is {"default": "allow"|"deny" (deny if absent), "rules": [...]}.
 * A rule's fields:
 *   host	"name" exactly, "*.name" any name ending in ".name" (not
 *		"name" itself), or "*" any host; case-insensitive, and one
 *		trailing '.' of the asked host is ignored.
 *   port	an integer or an array of them.
 *   cidr	a CIDR or an array of them (a bare address is /32 or /128);
 *		matches only a resolved address inside one. An IPv4 CIDR
 *		also matches that address in IPv4-mapped form.
 *   methods	an array of methods, case-insensitive.
 *   path_prefix the path starts with it, percent-escapes of unreserved
 *		characters read as the characters (RFC 3986 §6.2.2.2).
 *		A CONNECT has no path, so a rule with path_prefix, or with
 *		methods not naming CONNECT, never matches one.
 *   action	"allow", "deny" or "inject"; required.
 *   reason	deny only: what the agent is told (at most 180 bytes).
 *   set_headers, set_query  inject only, at least one: objects of
 *		strings; a value may name a secret as ${secret:NAME}.
 * Unknown fields are errors, so a typo cannot widen or narrow a policy.
 *
 * How the rules decide a request (their order, dot segments, private
 * and special addresses, checking before resolving) is in the top
 * comment of egress_match.c.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"
#include "egress_policy.h"

#define RULES_MAX	1024
#define LIST_MAX	64	/* ports, cidrs, methods, headers in a rule */
#define REASON_MAX	180
#define PATH_MAX_LEN	1024
#define HOST_MAX	253

/* Where a parse error is: the policy, and the rule (-1: none). */
struct perr {
	char		*err;
	size_t		 errsz;
	const char	*policy;
	int		 rule;
};

struct field {
	const char	*name;
	int		(*parse)(struct rule *, json_t *, struct perr *);
};

static int	 perr(struct perr *, const char *, ...) PINCER_PRINTF(2, 3);
static int	 parse_rule(struct rule *, json_t *, struct perr *);
static int	 parse_host(struct rule *, json_t *, struct perr *);
static int	 parse_port(struct rule *, json_t *, struct perr *);
static int	 parse_cidr(struct rule *, json_t *, struct perr *);
static int	 parse_methods(struct rule *, json_t *, struct perr *);
static int	 parse_path(struct rule *, json_t *, struct perr *);
static int	 parse_action(struct rule *, json_t *, struct perr *);
static int	 parse_reason(struct rule *, json_t *, struct perr *);
static int	 parse_headers(struct rule *, json_t *, struct perr *);
static int	 parse_query(struct rule *, json_t *, struct perr *);
static int	 check_value(const char *, const char *, json_t *,
		    struct perr *);
static void	 rule_free(struct rule *);
static int	 cidr_parse(const char *, struct cidr *);
static bool	 is_token(const char *, size_t);

static const struct field fields[] = {
	{ "host", parse_host },
	{ "port", parse_port },
	{ "cidr", parse_cidr },
	{ "methods", parse_methods },
	{ "path_prefix", parse_path },
	{ "action", parse_action },
	{ "reason", parse_reason },
	{ "set_headers", parse_headers },
	{ "set_query", parse_query },
};

/*
 * Headers that frame the request or steer the hop: set by a policy they
 * would let one request smuggle another, or aim it at another host.
 */
static const char *const unsettable[] = {
	"host", "content-length", "transfer-encoding", "connection",
	"upgrade", "te", "trailer", "keep-alive", "proxy-connection",
};

struct eg_policy *
eg_policy_parse(const char *name, json_t *obj, char *err, size_t errsz)
{
	struct eg_policy	*p;
	struct perr		 pe = { err, errsz, name ? name : "", -1 };
	const char		*k, *s;
	json_t			*v, *rules = NULL;
	size_t			 i;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->name = strdup(pe.policy)) == NULL)
		goto nomem;
	p->dflt = EG_DENY;
	if (!json_is_object(obj)) {
		perr(&pe, "is not an object");
		goto fail;
	}
	json_object_foreach(obj, k, v) {
		if (!strcmp(k, "rules") && json_is_array(v))
			rules = v;
		else if (!strcmp(k, "rules")) {
			perr(&pe, "\"rules\" is not an array");
			goto fail;
		} else if (!strcmp(k, "default")) {
			s = json_string_value(v);
			if (s == NULL || (strcmp(s, "allow") &&
			    strcmp(s, "deny"))) {
				perr(&pe, "\"default\" is not \"allow\" or "
				    "\"deny\"");
				goto fail;
			}
			p->dflt = !strcmp(s, "allow") ? EG_ALLOW : EG_DENY;
		} else {
			perr(&pe, "unknown field \"%s\"", k);
			goto fail;
		}
	}
	if (json_array_size(rules) > RULES_MAX) {
		perr(&pe, "more than %d rules", RULES_MAX);
		goto fail;
	}
	if (json_array_size(rules) > 0 && (p->rules =
	    calloc(json_array_size(rules), sizeof(*p->rules))) == NULL)
		goto nomem;
	p->nrules = json_array_size(rules);
	json_array_foreach(rules, i, v) {
		pe.rule = (int)i;
		if (parse_rule(&p->rules[i], v, &pe) == -1)
			goto fail;
		if (p->rules[i].ncidrs > 0)
			p->needs_addr = true;
	}
	return p;
nomem:
	snprintf(err, errsz, "egress policy \"%s\": out of memory", pe.policy);
fail:
	eg_policy_free(p);
	return NULL;
}

void
eg_policy_free(struct eg_policy *p)
{
	size_t	 i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nrules; i++)
		rule_free(&p->rules[i]);
	free(p->rules);
	free(p->name);
	free(p);
}

static int
perr(struct perr *pe, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (pe->rule >= 0)
		n = snprintf(pe->err, pe->errsz, "egress policy \"%s\": "
		    "rule %d: ", pe->policy, pe->rule);
	else
		n = snprintf(pe->err, pe->errsz, "egress policy \"%s\": ",
		    pe->policy);
	if (n >= 0 && (size_t)n < pe->errsz) {
		va_start(ap, fmt);
		vsnprintf(pe->err + n, pe->errsz - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
parse_rule(struct rule *r, json_t *obj, struct perr *pe)
{
	const char	*k;
	json_t		*v;
	size_t		 i;

	if (!json_is_object(obj))
		return perr(pe, "is not an object");
	if (json_object_get(obj, "action") == NULL)
		return perr(pe, "\"action\" is missing");
	json_object_foreach(obj, k, v) {
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (!strcmp(k, fields[i].name))
				break;
		if (i == sizeof(fields) / sizeof(fields[0]))
			return perr(pe, "unknown field \"%s\"", k);
		if (fields[i].parse(r, v, pe) == -1)
			return -1;
	}
	if (r->reason != NULL && r->action != EG_DENY)
		return perr(pe, "\"reason\" is only for a deny rule");
	if ((r->set_headers != NULL || r->set_query != NULL) &&
	    r->action != EG_INJECT)
		return perr(pe, "\"set_headers\" and \"set_query\" are only "
		    "for an inject rule");
	if (r->action == EG_INJECT && r->set_headers == NULL &&
	    r->set_query == NULL)
		return perr(pe, "an inject rule needs \"set_headers\" or "
		    "\"set_query\"");
	return 0;
}

/*
 * A name's characters, or "*." then one, or "*". Anything else (a URL,
 * a space, a '*' inside) is a mistake that would otherwise match nothing
 * or, worse, the wrong thing.
 */
static int
parse_host(struct rule *r, json_t *v, struct perr *pe)
{
	const char	*s = json_string_value(v), *name;
	size_t		 i, len;

	if (s == NULL)
		return perr(pe, "\"host\" is not a string");
	len = json_string_length(v);
	if (len >= 2 && s[len - 1] == '.' && s[len - 2] != '*')
		len--;
	if (len == 1 && s[0] == '*') {
		r->hkind = H_ANY;
		return 0;
	}
	r->hkind = len > 2 && !strncmp(s, "*.", 2) ? H_SUFFIX : H_EXACT;
	name = r->hkind == H_SUFFIX ? s + 2 : s;
	for (i = 0; name + i < s + len; i++)
		if (!(name[i] >= 'a' && name[i] <= 'z') &&
		    !(name[i] >= 'A' && name[i] <= 'Z') &&
		    !(name[i] >= '0' && name[i] <= '9') &&
		    (name[i] == '\0' || strchr("-_.:[]", name[i]) == NULL))
			break;
	if (len == 0 || len > HOST_MAX || name + i < s + len ||
	    name[0] == '.' || s[len - 1] == '.' ||
	    memmem(s, len, "..", 2) != NULL)
		return perr(pe, "\"host\" \"%s\" is not a host pattern (a "
		    "name, \"*.name\" or \"*\")", s);
	/* Kept as ".name" for "*.name", so a match is a suffix compare. */
	if (r->hkind == H_SUFFIX)
		name--;
	r->hostlen = s + len - name;
	if ((r->host = strndup(name, r->hostlen)) == NULL)
		return perr(pe, "out of memory");
	for (i = 0; i < r->hostlen; i++)
		if (r->host[i] >= 'A' && r->host[i] <= 'Z')
			r->host[i] += 'a' - 'A';
	return 0;
}

static int
parse_port(struct rule *r, json_t *v, struct perr *pe)
{
	json_t		*e;
	size_t		 i, n = json_is_array(v) ? json_array_size(v) : 1;
	json_int_t	 port;

	if (n == 0 || n > LIST_MAX)
		return perr(pe, "\"port\" is not 1 to %d ports", LIST_MAX);
	if ((r->ports = calloc(n, sizeof(*r->ports))) == NULL)
		return perr(pe, "out of memory");
	for (i = 0; i < n; i++) {
		e = json_is_array(v) ? json_array_get(v, i) : v;
		if (!json_is_integer(e))
			return perr(pe, "\"port\" is not an integer or an "
			    "array of them");
		port = json_integer_value(e);
		if (port < 1 || port > 65535)
			return perr(pe, "\"port\" %lld is not a port "
			    "(1-65535)", (long long)port);
		r->ports[r->nports++] = (int)port;
	}
	return 0;
}

static int
parse_cidr(struct rule *r, json_t *v, struct perr *pe)
{
	json_t		*e;
	const char	*s;
	size_t		 i, n = json_is_array(v) ? json_array_size(v) : 1;
	int		 rc;

	if (n == 0 || n > LIST_MAX)
		return perr(pe, "\"cidr\" is not 1 to %d CIDRs", LIST_MAX);
	if ((r->cidrs = calloc(n, sizeof(*r->cidrs))) == NULL)
		return perr(pe, "out of memory");
	for (i = 0; i < n; i++) {
		e = json_is_array(v) ? json_array_get(v, i) : v;
		if ((s = json_string_value(e)) == NULL)
			return perr(pe, "\"cidr\" is not a string or an "
			    "array of them");
		if ((rc = cidr_parse(s, &r->cidrs[i])) == -1)
			return perr(pe, "\"cidr\" %s is not a CIDR", s);
		if (rc == -2)
			return perr(pe, "\"cidr\" %s has bits set past its "
			    "prefix length", s);
		r->ncidrs++;
	}
	return 0;
}

static int
parse_methods(struct rule *r, json_t *v, struct perr *pe)
{
	json_t		*e;
	const char	*s;
	size_t		 i, n = json_array_size(v);

	if (!json_is_array(v) || n == 0 || n > LIST_MAX)
		return perr(pe, "\"methods\" is not an array of 1 to %d "
		    "methods", LIST_MAX);
	if ((r->methods = calloc(n, sizeof(*r->methods))) == NULL)
		return perr(pe, "out of memory");
	json_array_foreach(v, i, e) {
		s = json_string_value(e);
		if (s == NULL || !is_token(s, json_string_length(e)) ||
		    strlen(s) > 32)
			return perr(pe, "\"methods\" entry %zu is not a "
			    "method", i);
		if ((r->methods[i] = strdup(s)) == NULL)
			return perr(pe, "out of memory");
		r->nmethods++;
	}
	return 0;
}

static int
parse_path(struct rule *r, json_t *v, struct perr *pe)
{
	const char	*s = json_string_value(v);
	size_t		 i, len = json_string_length(v);

	if (s == NULL || s[0] != '/' || len > PATH_MAX_LEN)
		return perr(pe, "\"path_prefix\" is not a path starting "
		    "with '/'");
	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f)
			return perr(pe, "\"path_prefix\" has a space or a "
			    "byte that is not printable ASCII");
	if (eg_dot_segment(s))
		return perr(pe, "\"path_prefix\" has a \".\" or \"..\" "
		    "segment");
	if ((r->path_prefix = strdup(s)) == NULL)
		return perr(pe, "out of memory");
	return 0;
}

static int
parse_action(struct rule *r, json_t *v, struct perr *pe)
{
	const char	*s = json_string_value(v);

	if (s != NULL && !strcmp(s, "allow"))
		r->action = EG_ALLOW;
	else if (s != NULL && !strcmp(s, "deny"))
		r->action = EG_DENY;
	else if (s != NULL && !strcmp(s, "inject"))
		r->action = EG_INJECT;
	else
		return perr(pe, "\"action\" is not \"allow\", \"deny\" or "
		    "\"inject\"");
	return 0;
}

static int
parse_reason(struct rule *r, json_t *v, struct perr *pe)
{
	const char	*s = json_string_value(v);
	size_t		 i, len = json_string_length(v);

	if (s == NULL)
		return perr(pe, "\"reason\" is not a string");
	if (len > REASON_MAX)
		return perr(pe, "\"reason\" is longer than %d bytes",
		    REASON_MAX);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			return perr(pe, "\"reason\" has a control character");
	if ((r->reason = strdup(s)) == NULL)
		return perr(pe, "out of memory");
	return 0;
}

static int
parse_headers(struct rule *r, json_t *v, struct perr *pe)
{
	const char	*k;
	json_t		*e;
	size_t		 i;

	if (!json_is_object(v) || json_object_size(v) == 0 ||
	    json_object_size(v) > LIST_MAX)
		return perr(pe, "\"set_headers\" is not an object of 1 to %d "
		    "headers", LIST_MAX);
	json_object_foreach(v, k, e) {
		if (!is_token(k, strlen(k)))
			return perr(pe, "\"set_headers\": \"%s\" is not a "
			    "header name", k);
		for (i = 0; i < sizeof(unsettable) / sizeof(*unsettable); i++)
			if (strlen(k) == strlen(unsettable[i]) &&
			    eg_ieq(k, unsettable[i], strlen(k)))
				return perr(pe, "\"set_headers\": %s may not "
				    "be set", k);
		if (check_value("set_headers", k, e, pe) == -1)
			return -1;
	}
	r->set_headers = json_incref(v);
	return 0;
}

static int
parse_query(struct rule *r, json_t *v, struct perr *pe)
{
	const char	*k;
	json_t		*e;

	if (!json_is_object(v) || json_object_size(v) == 0 ||
	    json_object_size(v) > LIST_MAX)
		return perr(pe, "\"set_query\" is not an object of 1 to %d "
		    "parameters", LIST_MAX);
	json_object_foreach(v, k, e) {
		if (*k == '\0')
			return perr(pe, "\"set_query\" has an empty name");
		if (check_value("set_query", k, e, pe) == -1)
			return -1;
	}
	r->set_query = json_incref(v);
	return 0;
}

/*
 * A string with no CR, LF or NUL (which would end a header early and
 * start another), whose every "${" is a ${secret:NAME} of a valid name,
 * so a misspelt reference fails here rather than going out as text.
 */
static int
check_value(const char *field, const char *k, json_t *e, struct perr *pe)
{
	const char	*s = json_string_value(e), *ref, *end;
	char		 name[80];

	if (s == NULL)
		return perr(pe, "\"%s\": %s is not a string", field, k);
	if (strlen(s) != json_string_length(e) || strpbrk(s, "\r\n") != NULL)
		return perr(pe, "\"%s\": %s has a CR, LF or NUL", field, k);
	for (ref = s; (ref = strstr(ref, "${")) != NULL; ref = end) {
		end = strchr(ref, '}');
		if (strncmp(ref, "${secret:", 9) || end == NULL ||
		    end - ref - 9 >= (long)sizeof(name))
			return perr(pe, "\"%s\": %s has a \"${\" that is not "
			    "${secret:NAME}", field, k);
		snprintf(name, sizeof(name), "%.*s", (int)(end - ref - 9),
		    ref + 9);
		if (!secrets_name_valid(name))
			return perr(pe, "\"%s\": %s names \"%s\", not a "
			    "secret's name", field, k, name);
	}
	return 0;
}

static void
rule_free(struct rule *r)
{
	size_t	 i;

	for (i = 0; i < r->nmethods; i++)
		free(r->methods[i]);
	free(r->methods);
	free(r->host);
	free(r->ports);
	free(r->cidrs);
	free(r->path_prefix);
	free(r->reason);
	json_decref(r->set_headers);
	json_decref(r->set_query);
}

/* 0, -1: not a CIDR, -2: bits set past the prefix. */
static int
cidr_parse(const char *s, struct cidr *c)
{
	char		 a[64];
	const char	*slash = strchr(s, '/'), *d;
	int		 max, i;

	memset(c, 0, sizeof(*c));
	if (snprintf(a, sizeof(a), "%.*s", slash != NULL ?
	    (int)(slash - s) : (int)strlen(s), s) >= (int)sizeof(a))
		return -1;
	c->family = strchr(a, ':') != NULL ? AF_INET6 : AF_INET;
	max = c->family == AF_INET ? 32 : 128;
	if (inet_pton(c->family, a, c->net) != 1)
		return -1;
	c->bits = max;
	if (slash != NULL) {
		for (d = slash + 1, c->bits = 0; *d >= '0' && *d <= '9' &&
		    c->bits <= max; d++)
			c->bits = c->bits * 10 + (*d - '0');
		if (d == slash + 1 || d - slash > 4 || *d != '\0' ||
		    c->bits > max)
			return -1;
	}
	for (i = c->bits; i < max; i++)
		if (c->net[i / 8] & (0x80 >> (i % 8)))
			return -2;
	return 0;
}

/* RFC 9110 §5.6.2: a token, as method and header names are. */
static bool
is_token(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') &&
		    !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') &&
		    (s[i] == '\0' || strchr("!#$%&'*+-.^_`|~", s[i]) == NULL))
			return false;
	return len > 0 && strlen(s) == len;
}
