/* SPDX-License-Identifier: MIT */
/*
 * egress_policy.c: a sandbox's named egress policy, parsed once from
 * config (egress.policies.NAME), and the decision for each outbound
 * request or CONNECT tunnel; no socket, no DNS.
 *
 * A policy is {"default": "allow"|"deny" (deny if absent), "rules": [...]}.
 * Rules are tried in order; the first whose present fields all match
 * decides, and none matching leaves the default. A rule's fields:
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
 * A path with a "." or ".." segment (also as %2e, or before ';', or
 * between backslashes) is one a server may read as another path: it
 * matches no allow or inject rule with a path_prefix, and every deny
 * rule with one, whatever the prefix.
 *
 * Private and special addresses (the tables below, and IPv4 ones in
 * IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96 or 6to4 form) are
 * where a sandbox could reach pincerd's own host, its network or a
 * cloud metadata service by naming a host that resolves there. So when
 * the rules allow a resolved address in one, it is refused (rule -2),
 * unless the deciding rule has a cidr that contains the address and
 * lies inside that range: "127.0.0.1/32" opens 127.0.0.1, while a host
 * rule, or "0.0.0.0/0", opens nothing special.
 *
 * The proxy may check before resolving (addr NULL) to refuse early by
 * host. Then rules with a cidr cannot match and no address is special,
 * and a deny is only given when no allow or inject rule with a cidr,
 * matching in its other fields, comes first (otherwise that rule's
 * verdict is given). Any verdict but deny is provisional: check again
 * with the address. When eg_policy_intercepts() is true for a tunnel,
 * check each request inside it, not the CONNECT.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"
#include "egress.h"

#define RULES_MAX	1024
#define LIST_MAX	64	/* ports, cidrs, methods, headers in a rule */
#define REASON_MAX	180
#define PATH_MAX_LEN	1024
#define HOST_MAX	253
#define ESCAPED		0x100	/* url_char(): %XX of a reserved byte */

enum host_kind { H_NONE, H_ANY, H_EXACT, H_SUFFIX };

struct cidr {
	int		 family;	/* AF_INET, AF_INET6; 0: none */
	unsigned char	 net[16];	/* bits past the prefix are zero */
	int		 bits;
};

struct range {
	struct cidr	 c;
	const char	*name;
};

struct rule {
	enum host_kind	 hkind;
	char		*host;		/* owned, lower-case; "*.a" as ".a" */
	size_t		 hostlen;
	int		*ports;		/* owned */
	size_t		 nports;
	struct cidr	*cidrs;		/* owned */
	size_t		 ncidrs;
	char		**methods;	/* owned, each owned */
	size_t		 nmethods;
	char		*path_prefix;	/* owned, or NULL */
	enum eg_action	 action;
	char		*reason;	/* owned, or NULL */
	json_t		*set_headers;	/* a reference, or NULL */
	json_t		*set_query;	/* a reference, or NULL */
};

struct eg_policy {
	char		*name;		/* owned */
	enum eg_action	 dflt;
	struct rule	*rules;		/* owned */
	size_t		 nrules;
	bool		 needs_addr;
};

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
static bool	 rule_matches(const struct rule *, const struct eg_req *,
		    const char *, size_t);
static bool	 host_match(const struct rule *, const char *, size_t);
static bool	 port_match(const struct rule *, int);
static bool	 method_match(const struct rule *, const char *);
static bool	 path_match(const struct rule *, const char *);
static bool	 addr_match(const struct rule *, const struct sockaddr *);
static const struct range *special_find(const struct sockaddr *,
		    struct cidr *);
static int	 ip_of(const struct sockaddr *, struct cidr *);
static bool	 cidr_has(const struct cidr *, const struct cidr *);
static int	 cidr_parse(const char *, struct cidr *);
static int	 url_char(const char **);
static bool	 dot_segment(const char *);
static bool	 is_token(const char *, size_t);
static bool	 ieq(const char *, const char *, size_t);
static void	 show(char *, size_t, const char *);
static bool	 opens(const struct rule *, const struct range *,
		    const struct cidr *);
static void	 verdict_rule(const struct eg_policy *, int,
		    const struct eg_req *, struct eg_verdict *);
static void	 verdict_default(const struct eg_policy *,
		    const struct eg_req *, struct eg_verdict *);
static void	 verdict_special(const struct eg_policy *, const struct rule *,
		    const struct eg_req *, struct eg_verdict *);

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

static const struct range special4[] = {
	{ { AF_INET, { 0 }, 8 }, "0.0.0.0/8" },
	{ { AF_INET, { 10 }, 8 }, "10.0.0.0/8" },
	{ { AF_INET, { 100, 64 }, 10 }, "100.64.0.0/10" },
	{ { AF_INET, { 127 }, 8 }, "127.0.0.0/8" },
	{ { AF_INET, { 169, 254 }, 16 }, "169.254.0.0/16" },
	{ { AF_INET, { 172, 16 }, 12 }, "172.16.0.0/12" },
	{ { AF_INET, { 192, 168 }, 16 }, "192.168.0.0/16" },
	{ { AF_INET, { 224 }, 4 }, "224.0.0.0/4" },
	{ { AF_INET, { 255, 255, 255, 255 }, 32 }, "255.255.255.255/32" },
};

static const struct range special6[] = {
	{ { AF_INET6, { 0 }, 128 }, "::/128" },
	{ { AF_INET6, { [15] = 1 }, 128 }, "::1/128" },
	{ { AF_INET6, { 0xfc }, 7 }, "fc00::/7" },
	{ { AF_INET6, { 0xfe, 0x80 }, 10 }, "fe80::/10" },
	{ { AF_INET6, { 0xff }, 8 }, "ff00::/8" },
};

/* IPv6 forms that carry an IPv4 address at byte .at, which is checked. */
static const struct embed {
	struct cidr	 c;
	int		 at;
} embeds[] = {
	{ { AF_INET6, { [10] = 0xff, [11] = 0xff }, 96 }, 12 },	/* mapped */
	{ { AF_INET6, { 0 }, 96 }, 12 },		/* IPv4-compatible */
	{ { AF_INET6, { 0, 0x64, 0xff, 0x9b }, 96 }, 12 },	/* NAT64 */
	{ { AF_INET6, { 0x20, 0x02 }, 16 }, 2 },	/* 6to4 */
};

static const struct range nonip = { { 0, { 0 }, 0 }, "non-IP address" };

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

void
eg_policy_check(const struct eg_policy *p, const struct eg_req *q,
    struct eg_verdict *v)
{
	const struct rule	*r;
	const char		*host = q->host != NULL ? q->host : "";
	size_t			 i, hlen = strlen(host);
	int			 pending = -1, decided = -1;

	memset(v, 0, sizeof(*v));
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	for (i = 0; i < p->nrules && decided == -1; i++) {
		r = &p->rules[i];
		if (!rule_matches(r, q, host, hlen))
			continue;
		if (r->ncidrs > 0 && q->addr == NULL) {
			if (pending == -1 && r->action != EG_DENY)
				pending = (int)i;
		} else if (r->ncidrs == 0 || addr_match(r, q->addr))
			decided = (int)i;
	}
	if (decided != -1)
		verdict_rule(p, decided, q, v);
	else
		verdict_default(p, q, v);
	/* Before resolution, a deny is final only if no cidr rule could
	 * still allow the request once the address is known. */
	if (v->action == EG_DENY && pending != -1)
		verdict_rule(p, pending, q, v);
	/* Whatever allowed it, a name must not lead into pincerd's own host
	 * or network unless a cidr rule opened that range on purpose. */
	if (v->action != EG_DENY && q->addr != NULL)
		verdict_special(p, decided != -1 ? &p->rules[decided] : NULL,
		    q, v);
}

bool
eg_addr_special(const struct sockaddr *sa, const char **range)
{
	const struct range	*r;
	struct cidr		 view;

	if (sa == NULL || (r = special_find(sa, &view)) == NULL)
		return false;
	if (range != NULL)
		*range = r->name;
	return true;
}

bool
eg_policy_needs_addr(const struct eg_policy *p)
{
	return p->needs_addr;
}

/*
 * Inside a tunnel every request may be checked alone; the CONNECT itself
 * carries nothing. So a rule that could match some request inside (its
 * methods or path or address not known yet) and injects means
 * intercepting; the first rule that matches the CONNECT outright decides
 * for the whole tunnel.
 */
bool
eg_policy_intercepts(const struct eg_policy *p, const char *host, int port)
{
	const char		*h = host != NULL ? host : "";
	struct eg_req		 q = { h, port, "CONNECT", NULL, NULL };
	const struct rule	*r;
	size_t			 i, hlen = strlen(h);

	if (hlen > 0 && h[hlen - 1] == '.')
		hlen--;
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		if (!host_match(r, h, hlen) || !port_match(r, port))
			continue;
		if (r->ncidrs == 0 && rule_matches(r, &q, h, hlen))
			return r->action == EG_INJECT;
		if (r->action == EG_INJECT)
			return true;
	}
	return false;
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
	if (dot_segment(s))
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
			    ieq(k, unsettable[i], strlen(k)))
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

/* Every field but cidr, which is for the caller to weigh. */
static bool
rule_matches(const struct rule *r, const struct eg_req *q, const char *host,
    size_t hlen)
{
	return host_match(r, host, hlen) && port_match(r, q->port) &&
	    method_match(r, q->method) && path_match(r, q->path);
}

static bool
host_match(const struct rule *r, const char *host, size_t hlen)
{
	switch (r->hkind) {
	case H_EXACT:
		return hlen == r->hostlen && ieq(host, r->host, hlen);
	case H_SUFFIX:
		return hlen > r->hostlen &&
		    ieq(host + hlen - r->hostlen, r->host, r->hostlen);
	default:
		return true;
	}
}

static bool
port_match(const struct rule *r, int port)
{
	size_t	 i;

	for (i = 0; i < r->nports; i++)
		if (r->ports[i] == port)
			return true;
	return r->nports == 0;
}

static bool
method_match(const struct rule *r, const char *method)
{
	size_t	 i, len = strlen(method != NULL ? method : "");

	for (i = 0; i < r->nmethods && method != NULL; i++)
		if (strlen(r->methods[i]) == len &&
		    ieq(method, r->methods[i], len))
			return true;
	return r->nmethods == 0;
}

/* A dot segment fails closed both ways: see the top comment. */
static bool
path_match(const struct rule *r, const char *path)
{
	const char	*pfx = r->path_prefix;

	if (pfx == NULL)
		return true;
	if (path == NULL)
		return false;
	if (dot_segment(path))
		return r->action == EG_DENY;
	while (*pfx != '\0')
		if (url_char(&pfx) != url_char(&path))
			return false;
	return true;
}

/* The address, and for an IPv4-mapped one its IPv4 form, in a cidr. */
static bool
addr_match(const struct rule *r, const struct sockaddr *sa)
{
	struct cidr	 ip, ip4 = { 0 };
	size_t		 i;

	if (ip_of(sa, &ip) == -1)
		return false;
	if (cidr_has(&embeds[0].c, &ip)) {
		ip4.family = AF_INET;
		ip4.bits = 32;
		memcpy(ip4.net, ip.net + 12, 4);
	}
	for (i = 0; i < r->ncidrs; i++)
		if (cidr_has(&r->cidrs[i], &ip) || cidr_has(&r->cidrs[i], &ip4))
			return true;
	return false;
}

/*
 * Opened only by a cidr that contains the address and lies inside the
 * special range: naming the range on purpose, not by a wide net.
 */
static bool
opens(const struct rule *r, const struct range *sr, const struct cidr *view)
{
	size_t	 i;

	for (i = 0; r != NULL && r->action != EG_DENY && i < r->ncidrs; i++)
		if (cidr_has(&r->cidrs[i], view) &&
		    r->cidrs[i].bits >= sr->c.bits)
			return true;
	return false;
}

/* The special range sa is in, and *view the address as the range sees
 * it (the IPv4 address inside an IPv6 form); NULL: none. */
static const struct range *
special_find(const struct sockaddr *sa, struct cidr *view)
{
	struct cidr	 ip;
	size_t		 i, j;

	if (ip_of(sa, &ip) == -1) {
		memset(view, 0, sizeof(*view));
		return &nonip;
	}
	*view = ip;
	for (i = 0; ip.family == AF_INET6 &&
	    i < sizeof(special6) / sizeof(*special6); i++)
		if (cidr_has(&special6[i].c, &ip))
			return &special6[i];
	for (j = 0; ip.family == AF_INET6 &&
	    j < sizeof(embeds) / sizeof(*embeds); j++)
		if (cidr_has(&embeds[j].c, &ip)) {
			memset(view, 0, sizeof(*view));
			view->family = AF_INET;
			view->bits = 32;
			memcpy(view->net, ip.net + embeds[j].at, 4);
			break;
		}
	for (i = 0; view->family == AF_INET &&
	    i < sizeof(special4) / sizeof(*special4); i++)
		if (cidr_has(&special4[i].c, view))
			return &special4[i];
	return NULL;
}

static int
ip_of(const struct sockaddr *sa, struct cidr *ip)
{
	const struct sockaddr_in	*s4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6	*s6 = (const struct sockaddr_in6 *)sa;

	memset(ip, 0, sizeof(*ip));
	if (sa->sa_family == AF_INET) {
		ip->family = AF_INET;
		ip->bits = 32;
		memcpy(ip->net, &s4->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		ip->family = AF_INET6;
		ip->bits = 128;
		memcpy(ip->net, &s6->sin6_addr, 16);
	} else
		return -1;
	return 0;
}

/* c contains the whole of ip (itself a cidr, usually one address). */
static bool
cidr_has(const struct cidr *c, const struct cidr *ip)
{
	int	 full = c->bits / 8, rest = c->bits % 8;

	if (c->family == 0 || c->family != ip->family || ip->bits < c->bits ||
	    memcmp(c->net, ip->net, full) != 0)
		return false;
	return rest == 0 ||
	    ((c->net[full] ^ ip->net[full]) & (0xff00 >> rest) & 0xff) == 0;
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

/*
 * The next character of a URL path as a server reads it: %XX of an
 * unreserved character is that character (RFC 3986 §6.2.2.2); any other
 * %XX is ESCAPED | byte, apart from the literal byte; 0 at the end.
 */
static int
url_char(const char **sp)
{
	const char	*s = *sp, *hex = "0123456789abcdef0123456789ABCDEF";
	const char	*hi, *lo;
	int		 c;

	if (s[0] == '%' && s[1] != '\0' && s[2] != '\0' &&
	    (hi = strchr(hex, s[1])) != NULL &&
	    (lo = strchr(hex, s[2])) != NULL) {
		*sp = s + 3;
		c = ((hi - hex) % 16) << 4 | (lo - hex) % 16;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c != 0 && strchr("-._~", c)))
			return c;
		return ESCAPED | c;
	}
	if (*s != '\0')
		*sp = s + 1;
	return (unsigned char)*s;
}

/*
 * A "." or ".." segment, which a server resolves into another path (RFC
 * 3986 §5.2.4). Segments are split at '/' and '\' (escaped or not), and
 * end at ';' (Tomcat reads "..;" as ".."); the path ends at '?' or '#'.
 */
static bool
dot_segment(const char *path)
{
	size_t	 len = 0, dots = 0;
	bool	 params = false;
	int	 c;

	for (;;) {
		c = url_char(&path);
		if (c == 0 || c == '?' || c == '#' || c == '/' || c == '\\' ||
		    c == (ESCAPED | '/') || c == (ESCAPED | '\\')) {
			if (len > 0 && len == dots && dots <= 2)
				return true;
			if (c == 0 || c == '?' || c == '#')
				return false;
			len = dots = 0;
			params = false;
		} else if (c == ';')
			params = true;
		else if (!params) {
			len++;
			dots += c == '.';
		}
	}
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

/* ASCII case-insensitive, unlike strncasecmp whatever the locale. */
static bool
ieq(const char *a, const char *b, size_t n)
{
	size_t	 i;
	int	 x, y;

	for (i = 0; i < n; i++) {
		x = a[i] >= 'A' && a[i] <= 'Z' ? a[i] + 'a' - 'A' : a[i];
		y = b[i] >= 'A' && b[i] <= 'Z' ? b[i] + 'a' - 'A' : b[i];
		if (x != y)
			return false;
	}
	return true;
}

/* A name from the request, for a reason: printable, and not too long. */
static void
show(char *out, size_t outsz, const char *s)
{
	size_t	 i;

	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < outsz; i++)
		out[i] = s[i] > ' ' && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
	if (s != NULL && s[i] != '\0' && i >= 3)
		memcpy(out + i - 3, "...", 3);
}

static void
verdict_rule(const struct eg_policy *p, int i, const struct eg_req *q,
    struct eg_verdict *v)
{
	const struct rule	*r = &p->rules[i];
	char			 host[72], method[24];

	memset(v, 0, sizeof(*v));
	v->action = r->action;
	v->rule = i;
	v->set_headers = r->set_headers;
	v->set_query = r->set_query;
	if (r->action != EG_DENY)
		return;
	show(host, sizeof(host), q->host);
	show(method, sizeof(method), q->method);
	if (r->reason != NULL)
		snprintf(v->reason, sizeof(v->reason), "%s", r->reason);
	else
		snprintf(v->reason, sizeof(v->reason), "egress policy "
		    "\"%.40s\" rule %d denies %s to %s port %d", p->name, i,
		    method, host, q->port);
}

static void
verdict_default(const struct eg_policy *p, const struct eg_req *q,
    struct eg_verdict *v)
{
	char	 host[72], method[24];

	memset(v, 0, sizeof(*v));
	v->action = p->dflt;
	v->rule = EG_RULE_DEFAULT;
	if (p->dflt != EG_DENY)
		return;
	show(host, sizeof(host), q->host);
	show(method, sizeof(method), q->method);
	snprintf(v->reason, sizeof(v->reason), "egress policy \"%.40s\" "
	    "allows no other request: %s to %s port %d", p->name, method,
	    host, q->port);
}

static void
verdict_special(const struct eg_policy *p, const struct rule *r,
    const struct eg_req *q, struct eg_verdict *v)
{
	const struct range	*sr;
	struct cidr		 view;
	char			 host[72], addr[INET6_ADDRSTRLEN];

	if ((sr = special_find(q->addr, &view)) == NULL || opens(r, sr, &view))
		return;
	show(host, sizeof(host), q->host);
	addr[0] = '\0';
	if (q->addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)q->addr)->
		    sin_addr, addr, sizeof(addr));
	else if (q->addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)q->addr)->
		    sin6_addr, addr, sizeof(addr));
	memset(v, 0, sizeof(*v));
	v->action = EG_DENY;
	v->rule = EG_RULE_SPECIAL;
	snprintf(v->reason, sizeof(v->reason), "%s resolved to %s, in %s: a "
	    "private or special address that egress policy \"%.40s\" does "
	    "not open", host, addr[0] ? addr : "?", sr->name, p->name);
}
