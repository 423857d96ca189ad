/* SPDX-License-Identifier: MIT */
/*
 * egress_match.c: the decision a parsed egress policy (egress_policy.c
 * holds its JSON format) gives each outbound request or CONNECT tunnel;
 * no socket, no DNS.
 *
 * Rules are tried in order; the first whose present fields all match
 * decides, and none matching leaves the default.
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
#include <stdio.h>
#include <string.h>

#include "egress_policy.h"

#define ESCAPED		0x100	/* url_char(): %XX of a reserved byte */

struct range {
	struct cidr	 c;
	const char	*name;
};

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
static int	 url_char(const char **);
static void	 show(char *, size_t, const char *);
static bool	 opens(const struct rule *, const struct range *,
		    const struct cidr *);
static void	 verdict_rule(const struct eg_policy *, int,
		    const struct eg_req *, struct eg_verdict *);
static void	 verdict_default(const struct eg_policy *,
		    const struct eg_req *, struct eg_verdict *);
static void	 verdict_special(const struct eg_policy *, const struct rule *,
		    const struct eg_req *, struct eg_verdict *);

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
		return hlen == r->hostlen && eg_ieq(host, r->host, hlen);
	case H_SUFFIX:
		return hlen > r->hostlen &&
		    eg_ieq(host + hlen - r->hostlen, r->host, r->hostlen);
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
		    eg_ieq(method, r->methods[i], len))
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
	if (eg_dot_segment(path))
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
bool
eg_dot_segment(const char *path)
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

/* ASCII case-insensitive, unlike strncasecmp whatever the locale. */
bool
eg_ieq(const char *a, const char *b, size_t n)
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

/*
 * Before a tunnel whose requests are checked one by one is opened to
 * addr: could any request there be allowed? Rules are read in order as
 * for a request whose method and path are not known: a deny that holds
 * for every request (no methods, no path_prefix) ends the search; an
 * allow or inject that could match must also open a special address
 * (the same test as for a request). Each request is still checked.
 */
bool
eg_policy_addr_ok(const struct eg_policy *p, const char *host, int port,
    const struct sockaddr *addr, struct eg_verdict *v)
{
	struct eg_req		 q = { host, port, "CONNECT", NULL, addr };
	const struct rule	*r;
	struct eg_verdict	 w;
	size_t			 i, hlen = strlen(host != NULL ? host : "");
	bool			 refused = false;

	q.host = host != NULL ? host : "";
	if (hlen > 0 && q.host[hlen - 1] == '.')
		hlen--;
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		if (!host_match(r, q.host, hlen) || !port_match(r, port) ||
		    (r->ncidrs > 0 && !addr_match(r, addr)))
			continue;
		if (r->action == EG_DENY) {
			if (r->nmethods > 0 || r->path_prefix != NULL)
				continue;
			if (!refused)
				verdict_rule(p, (int)i, &q, v);
			return false;
		}
		verdict_rule(p, (int)i, &q, &w);
		verdict_special(p, r, &q, &w);
		if (w.action != EG_DENY) {
			*v = w;
			v->set_headers = v->set_query = NULL;
			return true;
		}
		if (!refused)
			*v = w;
		refused = true;
		if (r->nmethods == 0 && r->path_prefix == NULL)
			return false;
	}
	if (refused)
		return false;
	verdict_default(p, &q, v);
	if (v->action != EG_DENY)
		verdict_special(p, NULL, &q, v);
	v->set_headers = v->set_query = NULL;
	return v->action != EG_DENY;
}
