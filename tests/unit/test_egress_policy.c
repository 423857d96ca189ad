/* SPDX-License-Identifier: MIT */
/* test_egress_policy.c: what a sandbox may reach (egress_policy.c). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "egress.h"
#include "tap.h"

static void	test_example(void);
static void	test_host(void);
static void	test_port(void);
static void	test_methods_path(void);
static void	test_dot_segments(void);
static void	test_order_default(void);
static void	test_special(void);
static void	test_special_opened(void);
static void	test_unresolved(void);
static void	test_inject(void);
static void	test_intercepts(void);
static void	test_addr_ok(void);
static void	test_parse_errors(void);
static void	test_reason_length(size_t, bool);
static struct eg_policy *pol(const char *, const char *);
static const struct sockaddr *ip(const char *);
static struct eg_verdict *check(const struct eg_policy *, const char *, int,
		    const char *, const char *, const char *);

/* The brief's own example: order, suffixes, inject, cidr, catch-all. */
static const char *example = "{\"default\": \"deny\", \"rules\": ["
    "{\"host\": \"github.com\", \"action\": \"allow\"},"
    "{\"host\": \"*.npmjs.org\", \"port\": 443, \"action\": \"allow\"},"
    "{\"host\": \"api.github.com\", \"action\": \"inject\", \"set_headers\":"
    " {\"Authorization\": \"Bearer ${secret:github_token}\"}},"
    "{\"host\": \"example.com\", \"methods\": [\"GET\",\"HEAD\"],"
    " \"path_prefix\": \"/public/\", \"action\": \"allow\"},"
    "{\"cidr\": [\"127.0.0.1/32\", \"::1/128\"], \"port\": 8443,"
    " \"action\": \"allow\"},"
    "{\"host\": \"*\", \"action\": \"deny\","
    " \"reason\": \"only the listed hosts\"}]}";

int
main(void)
{
	test_example();
	test_host();
	test_port();
	test_methods_path();
	test_dot_segments();
	test_order_default();
	test_special();
	test_special_opened();
	test_unresolved();
	test_inject();
	test_intercepts();
	test_parse_errors();
	return done_testing();
}

static void
test_example(void)
{
	struct eg_policy	*p = pol("dev", example);
	struct eg_verdict	*v;

	ok(p != NULL, "the example parses");
	if (p == NULL)
		return;
	v = check(p, "github.com", 443, "CONNECT", NULL, "140.82.112.3");
	ok(v->action == EG_ALLOW && v->rule == 0, "github.com by rule 0");
	v = check(p, "registry.npmjs.org", 443, "CONNECT", NULL, NULL);
	ok(v->action == EG_ALLOW && v->rule == 1, "a *.npmjs.org name");
	v = check(p, "registry.npmjs.org", 80, "GET", "/", NULL);
	ok(v->action == EG_DENY && v->rule == 5, "not on port 80");
	is_str(v->reason, "only the listed hosts", "the rule's reason");
	v = check(p, "api.github.com", 443, "GET", "/user", "140.82.112.5");
	ok(v->action == EG_INJECT && v->rule == 2, "api.github.com injects");
	v = check(p, "example.com", 80, "GET", "/public/a", "93.184.216.34");
	ok(v->action == EG_ALLOW && v->rule == 3, "a public GET");
	v = check(p, "localhost", 8443, "GET", "/", "127.0.0.1");
	ok(v->action == EG_ALLOW && v->rule == 4, "loopback by its cidr");
	v = check(p, "localhost", 8443, "GET", "/", "::1");
	ok(v->action == EG_ALLOW && v->rule == 4, "::1 by its cidr");
	v = check(p, "localhost", 8444, "GET", "/", "127.0.0.1");
	ok(v->action == EG_DENY && v->rule == 5, "not on another port");
	ok(eg_policy_needs_addr(p), "the example needs the address");
	eg_policy_free(p);
}

static void
test_host(void)
{
	struct eg_policy	*p = pol("h", "{\"rules\": ["
	    "{\"host\": \"GitHub.COM\", \"action\": \"allow\"},"
	    "{\"host\": \"*.Example.org.\", \"action\": \"allow\"}]}");
	struct eg_verdict	*v;

	if (p == NULL)
		return;
	v = check(p, "github.com", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, 0, "an exact host, pattern lower-cased");
	v = check(p, "GITHUB.Com", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, 0, "host case is ignored");
	v = check(p, "github.com.", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, 0, "one trailing dot is ignored");
	v = check(p, "github.com..", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, -1, "two trailing dots are not");
	v = check(p, "api.github.com", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, -1, "an exact host is not a suffix");
	v = check(p, "evilgithub.com", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, -1, "nor a longer name");
	v = check(p, "github.co", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, -1, "nor a shorter one");
	v = check(p, "www.example.org", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, 1, "*.example.org matches a subdomain");
	v = check(p, "a.b.EXAMPLE.org.", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, 1, "and a deeper one, any case, trailing dot");
	v = check(p, "example.org", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, -1, "but not the bare suffix");
	v = check(p, "evilexample.org", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, -1, "nor a name merely ending in it");
	v = check(p, "example.org.evil.com", 443, "CONNECT", NULL, NULL);
	is_int(v->rule, -1, "nor a name containing it");
	v = check(p, NULL, 443, "CONNECT", NULL, NULL);
	ok(v->rule == -1 && v->action == EG_DENY, "no host: the default");
	ok(!eg_policy_needs_addr(p), "host rules do not need the address");
	eg_policy_free(p);

	p = pol("any", "{\"rules\": [{\"host\": \"*\","
	    " \"action\": \"allow\"}]}");
	v = check(p, "anything.at.all", 1, "GET", "/", NULL);
	is_int(v->rule, 0, "* matches any host");
	eg_policy_free(p);
}

static void
test_port(void)
{
	struct eg_policy	*p = pol("p", "{\"rules\": ["
	    "{\"port\": [80, 443], \"action\": \"allow\"},"
	    "{\"host\": \"x.test\", \"port\": 22, \"action\": \"allow\"}]}");
	struct eg_verdict	*v;

	if (p == NULL)
		return;
	is_int(check(p, "a.test", 80, "GET", "/", NULL)->rule, 0,
	    "first port of an array");
	is_int(check(p, "a.test", 443, "CONNECT", NULL, NULL)->rule, 0,
	    "second port of an array");
	v = check(p, "a.test", 8080, "GET", "/", NULL);
	ok(v->rule == -1 && v->action == EG_DENY, "a port not listed");
	is_int(check(p, "x.test", 22, "CONNECT", NULL, NULL)->rule, 1,
	    "a single port with its host");
	is_int(check(p, "y.test", 22, "CONNECT", NULL, NULL)->rule, -1,
	    "the port without the host");
	eg_policy_free(p);
}

static void
test_methods_path(void)
{
	struct eg_policy	*p = pol("m", "{\"rules\": ["
	    "{\"host\": \"e.test\", \"methods\": [\"get\", \"HEAD\"],"
	    " \"path_prefix\": \"/public/\", \"action\": \"allow\"},"
	    "{\"host\": \"e.test\", \"path_prefix\": \"/up/\","
	    " \"action\": \"allow\"},"
	    "{\"host\": \"t.test\", \"methods\": [\"CONNECT\"],"
	    " \"action\": \"allow\"},"
	    "{\"host\": \"g.test\", \"methods\": [\"GET\"],"
	    " \"action\": \"allow\"}]}");
	struct eg_verdict	*v;

	if (p == NULL)
		return;
	is_int(check(p, "e.test", 80, "GET", "/public/x", NULL)->rule, 0,
	    "GET under the prefix");
	is_int(check(p, "e.test", 80, "head", "/public/", NULL)->rule, 0,
	    "head, any case, at the prefix itself");
	is_int(check(p, "e.test", 80, "POST", "/public/x", NULL)->rule, -1,
	    "POST is not listed");
	is_int(check(p, "e.test", 80, "GET", "/public", NULL)->rule, -1,
	    "the prefix is matched whole");
	is_int(check(p, "e.test", 80, "GET", "/private/x", NULL)->rule, -1,
	    "a path outside the prefix");
	is_int(check(p, "e.test", 80, "GET", "/Public/x", NULL)->rule, -1,
	    "paths are case-sensitive");
	is_int(check(p, "e.test", 80, "GET", "/%70ublic/x", NULL)->rule, 0,
	    "an escaped unreserved character is itself");
	is_int(check(p, "e.test", 80, "GET", "/public%2fx", NULL)->rule, -1,
	    "an escaped '/' is not a '/'");
	is_int(check(p, "e.test", 80, "PUT", "/up/f", NULL)->rule, 1,
	    "path_prefix without methods: any method");
	is_int(check(p, "e.test", 443, "CONNECT", NULL, NULL)->rule, -1,
	    "a path rule never matches a CONNECT");
	v = check(p, "t.test", 443, "CONNECT", NULL, NULL);
	ok(v->rule == 2 && v->action == EG_ALLOW, "methods naming CONNECT do");
	is_int(check(p, "t.test", 80, "GET", "/", NULL)->rule, -1,
	    "and then match nothing else");
	is_int(check(p, "g.test", 443, "CONNECT", NULL, NULL)->rule, -1,
	    "methods without CONNECT do not match a CONNECT");
	is_int(check(p, "g.test", 80, "GET", "/", NULL)->rule, 3,
	    "but match their method");
	is_int(check(p, "g.test", 80, NULL, "/", NULL)->rule, -1,
	    "no method matches no methods rule");
	eg_policy_free(p);
}

static void
test_dot_segments(void)
{
	struct eg_policy	*p = pol("d", "{\"default\": \"allow\","
	    " \"rules\": ["
	    "{\"host\": \"a.test\", \"path_prefix\": \"/admin\","
	    " \"action\": \"deny\"},"
	    "{\"host\": \"b.test\", \"path_prefix\": \"/pub/\","
	    " \"action\": \"allow\"},"
	    "{\"host\": \"b.test\", \"action\": \"deny\"}]}");
	const char	*bad[] = { "/pub/../admin", "/pub/./x", "/pub/%2e%2E/x",
	    "/pub/..", "/pub/..;x/admin", "/pub/..\\admin", "/pub%2f..%2fx",
	    "/pub/.%2e?q=1" };
	size_t		 i;

	if (p == NULL)
		return;
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		is_int(check(p, "b.test", 80, "GET", bad[i], NULL)->rule, 2,
		    "%s: no allow path rule matches", bad[i]);
		is_int(check(p, "a.test", 80, "GET", bad[i], NULL)->rule, 0,
		    "%s: a deny path rule matches", bad[i]);
	}
	is_int(check(p, "b.test", 80, "GET", "/pub/a..b/.x?../", NULL)->rule,
	    1, "dots inside names, or in the query, are not segments");
	is_int(check(p, "a.test", 80, "GET", "/pub/x", NULL)->rule, -1,
	    "a clean path outside the deny prefix passes by");
	eg_policy_free(p);
}

static void
test_order_default(void)
{
	struct eg_policy	*p = pol("o", "{\"default\": \"allow\","
	    " \"rules\": ["
	    "{\"host\": \"a.test\", \"action\": \"deny\"},"
	    "{\"host\": \"a.test\", \"action\": \"allow\"},"
	    "{\"host\": \"*.a.test\", \"action\": \"allow\"},"
	    "{\"host\": \"x.a.test\", \"action\": \"deny\"}]}");
	struct eg_verdict	*v;

	if (p == NULL)
		return;
	v = check(p, "a.test", 443, "CONNECT", NULL, NULL);
	ok(v->action == EG_DENY && v->rule == 0, "the first match wins");
	ok(strstr(v->reason, "\"o\"") && strstr(v->reason, "rule 0") &&
	    strstr(v->reason, "a.test"), "a reason without one names all: %s",
	    v->reason);
	v = check(p, "x.a.test", 443, "CONNECT", NULL, NULL);
	ok(v->action == EG_ALLOW && v->rule == 2, "a later deny is shadowed");
	v = check(p, "b.test", 443, "CONNECT", NULL, NULL);
	ok(v->action == EG_ALLOW && v->rule == -1, "default allow");
	is_str(v->reason, "", "no reason to allow");
	eg_policy_free(p);

	p = pol("dev", "{\"rules\": [{\"host\": \"a.test\","
	    " \"action\": \"allow\"}]}");
	v = check(p, "evil.test", 443, "CONNECT", NULL, NULL);
	ok(v->action == EG_DENY && v->rule == -1, "deny is the default");
	ok(strstr(v->reason, "policy \"dev\"") != NULL &&
	    strstr(v->reason, "evil.test") != NULL,
	    "naming policy and host: %s", v->reason);
	v = check(p, "evil\r\n.test", 443, "CONNECT", NULL, NULL);
	ok(strchr(v->reason, '\r') == NULL && strchr(v->reason, '\n') == NULL,
	    "control characters are not echoed: %s", v->reason);
	eg_policy_free(p);

	p = pol("empty", "{}");
	is_int(check(p, "a.test", 1, "GET", "/", NULL)->action, EG_DENY,
	    "an empty policy denies");
	eg_policy_free(p);
}

/* Each refused range, with a name that resolves there and a host rule. */
static void
test_special(void)
{
	static const char *const refused[][2] = {
		{ "10.1.2.3", "10.0.0.0/8" }, { "172.16.0.1", "172.16.0.0/12" },
		{ "172.31.255.255", "172.16.0.0/12" },
		{ "192.168.1.1", "192.168.0.0/16" },
		{ "127.0.0.1", "127.0.0.0/8" }, { "127.9.9.9", "127.0.0.0/8" },
		{ "169.254.169.254", "169.254.0.0/16" },
		{ "0.0.0.0", "0.0.0.0/8" }, { "0.1.2.3", "0.0.0.0/8" },
		{ "100.64.0.1", "100.64.0.0/10" },
		{ "100.127.255.254", "100.64.0.0/10" },
		{ "224.0.0.1", "224.0.0.0/4" },
		{ "239.255.255.250", "224.0.0.0/4" },
		{ "255.255.255.255", "255.255.255.255/32" },
		{ "fc00::1", "fc00::/7" }, { "fd12:3456::1", "fc00::/7" },
		{ "fe80::1", "fe80::/10" }, { "febf::1", "fe80::/10" },
		{ "::1", "::1/128" }, { "::", "::/128" },
		{ "ff02::1", "ff00::/8" },
		{ "::ffff:127.0.0.1", "127.0.0.0/8" },
		{ "::ffff:169.254.169.254", "169.254.0.0/16" },
		{ "::ffff:10.0.0.1", "10.0.0.0/8" },
		{ "::127.0.0.1", "127.0.0.0/8" },
		{ "64:ff9b::169.254.169.254", "169.254.0.0/16" },
		{ "2002:c0a8:101::1", "192.168.0.0/16" },
	};
	static const char *const public[] = { "8.8.8.8", "172.15.255.255",
	    "172.32.0.1", "192.169.0.1", "100.63.255.255", "100.128.0.1",
	    "169.253.255.255", "11.0.0.1", "1.0.0.0", "223.255.255.255",
	    "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8",
	    "2002:808:808::1", "fec0::1", "fe00::1", "::2:0:0:1" };
	struct eg_policy	*p = pol("s", "{\"default\": \"allow\","
	    " \"rules\": ["
	    "{\"host\": \"named.test\", \"action\": \"allow\"}]}");
	struct eg_verdict	*v;
	struct sockaddr_un	 un = { .sun_family = AF_UNIX };
	const char		*range;
	size_t			 i;

	if (p == NULL)
		return;
	for (i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		range = NULL;
		ok(eg_addr_special(ip(refused[i][0]), &range), "%s is special",
		    refused[i][0]);
		is_str(range, refused[i][1], "%s is in %s", refused[i][0],
		    refused[i][1]);
		v = check(p, "named.test", 443, "CONNECT", NULL, refused[i][0]);
		ok(v->action == EG_DENY && v->rule == -2,
		    "%s: a host rule does not open it", refused[i][0]);
		ok(strstr(v->reason, "named.test resolved to") != NULL &&
		    strstr(v->reason, refused[i][1]) != NULL,
		    "the reason names the range: %s", v->reason);
		v = check(p, "other.test", 443, "CONNECT", NULL, refused[i][0]);
		ok(v->action == EG_DENY && v->rule == -2,
		    "%s: nor a default allow", refused[i][0]);
	}
	for (i = 0; i < sizeof(public) / sizeof(*public); i++) {
		ok(!eg_addr_special(ip(public[i]), NULL), "%s is not special",
		    public[i]);
		v = check(p, "named.test", 443, "CONNECT", NULL, public[i]);
		ok(v->action == EG_ALLOW && v->rule == 0, "%s: allowed",
		    public[i]);
	}
	ok(!eg_addr_special(NULL, &range), "no address is not special");
	ok(eg_addr_special((struct sockaddr *)&un, &range),
	    "an address not IP is refused (%s)", range);
	eg_policy_free(p);
}

static void
test_special_opened(void)
{
	struct eg_policy	*p = pol("o", "{\"default\": \"allow\","
	    " \"rules\": ["
	    "{\"cidr\": \"127.0.0.1/32\", \"port\": 8443,"
	    " \"action\": \"allow\"},"
	    "{\"cidr\": [\"192.168.0.0/16\", \"fd00::/8\"],"
	    " \"action\": \"allow\"},"
	    "{\"cidr\": \"169.254.169.254\", \"action\": \"deny\"},"
	    "{\"cidr\": \"0.0.0.0/0\", \"port\": 9000, \"action\": \"allow\"},"
	    "{\"cidr\": \"10.0.0.0/8\", \"host\": \"in.test\","
	    " \"action\": \"allow\"},"
	    "{\"host\": \"in.test\", \"action\": \"allow\"}]}");
	struct eg_verdict	*v;

	if (p == NULL)
		return;
	v = check(p, "x", 8443, "CONNECT", NULL, "127.0.0.1");
	ok(v->action == EG_ALLOW && v->rule == 0, "a cidr allow opens it");
	v = check(p, "x", 8443, "CONNECT", NULL, "::ffff:127.0.0.1");
	ok(v->action == EG_ALLOW && v->rule == 0, "also in mapped form");
	v = check(p, "x", 8443, "CONNECT", NULL, "127.0.0.2");
	ok(v->action == EG_DENY && v->rule == -2, "not an address outside it");
	v = check(p, "x", 8444, "CONNECT", NULL, "127.0.0.1");
	ok(v->action == EG_DENY && v->rule == -2, "not on another port");
	v = check(p, "x", 80, "GET", "/", "192.168.7.7");
	ok(v->action == EG_ALLOW && v->rule == 1, "a whole range, listed");
	v = check(p, "x", 80, "GET", "/", "fd00::7");
	ok(v->action == EG_ALLOW && v->rule == 1, "an IPv6 one too");
	v = check(p, "x", 80, "GET", "/", "fc00::7");
	ok(v->action == EG_DENY && v->rule == -2, "but not its neighbour");
	v = check(p, "x", 80, "GET", "/", "169.254.169.254");
	ok(v->action == EG_DENY && v->rule == 2, "a cidr deny decides itself");
	v = check(p, "x", 9000, "GET", "/", "10.0.0.1");
	ok(v->action == EG_DENY && v->rule == -2,
	    "0.0.0.0/0 contains it but does not open it");
	v = check(p, "x", 9000, "GET", "/", "8.8.8.8");
	ok(v->action == EG_ALLOW && v->rule == 3, "while allowing the rest");
	v = check(p, "in.test", 80, "GET", "/", "10.2.3.4");
	ok(v->action == EG_ALLOW && v->rule == 4, "host and cidr both match");
	v = check(p, "in.test", 80, "GET", "/", "172.16.0.1");
	ok(v->action == EG_DENY && v->rule == -2,
	    "a cidr not containing it leaves a host rule, which does not");
	v = check(p, "out.test", 80, "GET", "/", "10.2.3.4");
	ok(v->action == EG_DENY && v->rule == -2,
	    "the cidr rule needs its host");
	eg_policy_free(p);
}

static void
test_unresolved(void)
{
	struct eg_policy	*p = pol("u", "{\"rules\": ["
	    "{\"cidr\": \"203.0.113.0/24\", \"action\": \"allow\"},"
	    "{\"host\": \"a.test\", \"action\": \"allow\"},"
	    "{\"host\": \"*\", \"port\": 25, \"action\": \"deny\"}]}");
	struct eg_policy	*q = pol("u2", "{\"rules\": ["
	    "{\"host\": \"*\", \"port\": 25, \"action\": \"deny\"},"
	    "{\"cidr\": \"203.0.113.0/24\", \"action\": \"allow\"}]}");
	struct eg_verdict	*v;

	if (p == NULL || q == NULL)
		return;
	v = check(p, "a.test", 443, "CONNECT", NULL, "127.0.0.1");
	ok(v->action == EG_DENY && v->rule == -2, "resolved: refused");
	v = check(p, "a.test", 443, "CONNECT", NULL, NULL);
	ok(v->action == EG_ALLOW && v->rule == 1,
	    "unresolved: the cidr rule is skipped, no range checked");
	v = check(p, "b.test", 25, "CONNECT", NULL, NULL);
	ok(v->action == EG_ALLOW && v->rule == 0,
	    "a deny after a cidr allow is not final before resolution");
	v = check(p, "b.test", 25, "CONNECT", NULL, "203.0.113.9");
	ok(v->action == EG_ALLOW && v->rule == 0, "and the address allows it");
	v = check(p, "b.test", 25, "CONNECT", NULL, "198.51.100.1");
	ok(v->action == EG_DENY && v->rule == 2, "or not");
	v = check(q, "b.test", 25, "CONNECT", NULL, NULL);
	ok(v->action == EG_DENY && v->rule == 0, "a deny before it is final");
	v = check(q, "b.test", 443, "CONNECT", NULL, NULL);
	ok(v->action == EG_ALLOW && v->rule == 1,
	    "the default deny waits for the address too");
	v = check(q, "b.test", 443, "CONNECT", NULL, "198.51.100.1");
	ok(v->action == EG_DENY && v->rule == -1, "which decides it");
	eg_policy_free(p);
	eg_policy_free(q);
}

static void
test_inject(void)
{
	struct eg_policy	*p;
	struct eg_verdict	*v;
	json_t			*h;

	p = pol("i", "{\"rules\": [{\"host\": \"api.test\", \"action\":"
	    " \"inject\", \"set_headers\": {\"Authorization\":"
	    " \"Bearer ${secret:gh.token}\", \"X-A\": \"1\"},"
	    " \"set_query\": {\"key\": \"${secret:k}\"}}]}");
	if (p == NULL)
		return;
	v = check(p, "api.test", 443, "GET", "/x", "203.0.113.1");
	ok(v->action == EG_INJECT && v->rule == 0, "an inject verdict");
	h = v->set_headers;
	is_str(json_string_value(json_object_get(h, "Authorization")),
	    "Bearer ${secret:gh.token}", "the header, its reference unfilled");
	is_int(json_object_size(h), 2, "both headers");
	is_str(json_string_value(json_object_get(v->set_query, "key")),
	    "${secret:k}", "the query parameter");
	is_str(v->reason, "", "no reason");
	v = check(p, "api.test", 443, "GET", "/x", "10.0.0.1");
	ok(v->action == EG_DENY && v->rule == -2 && v->set_headers == NULL,
	    "an inject by host is refused a private address, headers gone");
	eg_policy_free(p);
}

static void
test_intercepts(void)
{
	struct eg_policy	*p = pol("dev", example);
	struct eg_policy	*q = pol("i", "{\"rules\": ["
	    "{\"host\": \"a.test\", \"methods\": [\"CONNECT\"],"
	    " \"action\": \"deny\"},"
	    "{\"host\": \"*.test\", \"path_prefix\": \"/x\", \"action\":"
	    " \"allow\"},"
	    "{\"host\": \"*.test\", \"port\": 443, \"path_prefix\": \"/y\","
	    " \"action\": \"inject\", \"set_query\": {\"k\": \"v\"}},"
	    "{\"cidr\": \"203.0.113.0/24\", \"port\": 8443, \"action\":"
	    " \"inject\", \"set_query\": {\"k\": \"v\"}}]}");

	if (p == NULL || q == NULL)
		return;
	ok(eg_policy_intercepts(p, "api.github.com", 443), "an inject host");
	ok(eg_policy_intercepts(p, "API.github.com.", 443), "any case, dot");
	ok(!eg_policy_intercepts(p, "github.com", 443), "an allow host");
	ok(!eg_policy_intercepts(p, "evil.test", 443), "a denied host");
	ok(!eg_policy_intercepts(q, "a.test", 443),
	    "a rule deciding the CONNECT comes first");
	ok(eg_policy_intercepts(q, "b.test", 443),
	    "an inject rule with a path behind an allow with one");
	ok(!eg_policy_intercepts(q, "b.test", 80), "not on its port");
	ok(eg_policy_intercepts(q, "b.example", 8443),
	    "an inject cidr rule could match any host");
	ok(eg_policy_needs_addr(q), "a cidr rule needs the address");
	eg_policy_free(p);
	eg_policy_free(q);
	test_addr_ok();
}

/* Before an intercepted tunnel is opened to an address. */
static void
test_addr_ok(void)
{
	struct eg_policy	*p = pol("a", "{\"rules\": ["
	    "{\"host\": \"x.test\", \"path_prefix\": \"/no\", \"action\":"
	    " \"deny\"},"
	    "{\"host\": \"x.test\", \"path_prefix\": \"/y\", \"action\":"
	    " \"inject\", \"set_query\": {\"k\": \"v\"}},"
	    "{\"host\": \"l.test\", \"cidr\": \"127.0.0.1/32\", \"action\":"
	    " \"inject\", \"set_query\": {\"k\": \"v\"}},"
	    "{\"host\": \"d.test\", \"action\": \"deny\", \"reason\":"
	    " \"no d\"}]}");
	struct eg_verdict	 v;

	if (p == NULL)
		return;
	ok(eg_policy_addr_ok(p, "x.test", 443, ip("203.0.113.5"), &v) &&
	    v.rule == 1 && v.set_query == NULL, "a public address behind "
	    "a conditional deny: some request could go (rule %d)", v.rule);
	ok(!eg_policy_addr_ok(p, "x.test", 443, ip("10.1.2.3"), &v) &&
	    v.rule == EG_RULE_SPECIAL && strstr(v.reason, "10.0.0.0/8"),
	    "a private address no cidr opens: refused: %s", v.reason);
	ok(eg_policy_addr_ok(p, "l.test", 443, ip("127.0.0.1"), &v),
	    "a loopback address the rule's cidr opens");
	ok(!eg_policy_addr_ok(p, "l.test", 443, ip("127.0.0.2"), &v) &&
	    v.rule == -1, "another loopback address: the default denies");
	ok(!eg_policy_addr_ok(p, "d.test", 443, ip("203.0.113.5"), &v) &&
	    !strcmp(v.reason, "no d"), "an unconditional deny: its reason");
	ok(!eg_policy_addr_ok(p, "z.test", 443, ip("203.0.113.5"), &v) &&
	    v.rule == -1, "no rule: the default");
	eg_policy_free(p);
}

static void
test_parse_errors(void)
{
	static const char *const bad[][2] = {
		{ "{\"host\": \"a\", \"action\": \"allow\", \"hots\": 1}",
		    "unknown field \"hots\"" },
		{ "{\"host\": \"a\", \"action\": \"permit\"}", "\"action\"" },
		{ "{\"host\": \"a\"}", "\"action\" is missing" },
		{ "{\"cidr\": \"10.0.0.0/33\", \"action\": \"allow\"}",
		    "\"cidr\" 10.0.0.0/33 is not a CIDR" },
		{ "{\"cidr\": [\"::/129\"], \"action\": \"allow\"}",
		    "\"cidr\" ::/129 is not a CIDR" },
		{ "{\"cidr\": \"banana\", \"action\": \"allow\"}",
		    "\"cidr\" banana is not a CIDR" },
		{ "{\"cidr\": \"10.0.0.0/\", \"action\": \"allow\"}",
		    "is not a CIDR" },
		{ "{\"cidr\": \"10.0.0.0/8x\", \"action\": \"allow\"}",
		    "is not a CIDR" },
		{ "{\"cidr\": \"10.0.0.1/8\", \"action\": \"allow\"}",
		    "bits set past" },
		{ "{\"cidr\": [], \"action\": \"allow\"}", "\"cidr\"" },
		{ "{\"host\": \"a\", \"action\": \"inject\"}",
		    "needs \"set_headers\" or \"set_query\"" },
		{ "{\"host\": \"a\", \"action\": \"allow\", \"set_query\":"
		    " {\"a\": \"b\"}}", "only for an inject rule" },
		{ "{\"host\": \"a\", \"action\": \"inject\", \"set_headers\":"
		    " {\"X\": \"a\\r\\nEvil: 1\"}}", "CR, LF" },
		{ "{\"host\": \"a\", \"action\": \"inject\", \"set_headers\":"
		    " {\"X\": \"a\\nb\"}}", "CR, LF" },
		{ "{\"host\": \"a\", \"action\": \"inject\", \"set_headers\":"
		    " {\"X Y\": \"a\"}}", "not a header name" },
		{ "{\"host\": \"a\", \"action\": \"inject\", \"set_headers\":"
		    " {\"Host\": \"a\"}}", "may not be set" },
		{ "{\"host\": \"a\", \"action\": \"inject\", \"set_headers\":"
		    " {\"X\": \"${secret:}\"}}", "not a secret's name" },
		{ "{\"host\": \"a\", \"action\": \"inject\", \"set_headers\":"
		    " {\"X\": \"${secrte:a}\"}}", "not ${secret:NAME}" },
		{ "{\"host\": \"a\", \"action\": \"inject\", \"set_headers\":"
		    " {}}", "\"set_headers\"" },
		{ "{\"host\": \"git*hub.com\", \"action\": \"allow\"}",
		    "\"host\" \"git*hub.com\" is not a host pattern" },
		{ "{\"host\": \"a.*.com\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": \"**.com\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": \"*.\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": \"\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": \"a b\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": \" a\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": \"https://a.com\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": \"a..com\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": \"a.com..\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": \".a.com\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": \"a\\u0000b\", \"action\": \"allow\"}",
		    "is not a host pattern" },
		{ "{\"host\": 1, \"action\": \"allow\"}", "not a string" },
		{ "{\"host\": \"a\", \"action\": \"allow\", \"reason\": \"x\"}",
		    "only for a deny rule" },
		{ "{\"port\": 0, \"action\": \"allow\"}", "\"port\" 0" },
		{ "{\"port\": [80, 65536], \"action\": \"allow\"}",
		    "\"port\" 65536" },
		{ "{\"port\": \"80\", \"action\": \"allow\"}", "\"port\"" },
		{ "{\"methods\": \"GET\", \"action\": \"allow\"}",
		    "\"methods\"" },
		{ "{\"methods\": [\"G ET\"], \"action\": \"allow\"}",
		    "\"methods\" entry 0" },
		{ "{\"path_prefix\": \"public\", \"action\": \"allow\"}",
		    "\"path_prefix\"" },
		{ "{\"path_prefix\": \"/a/../b\", \"action\": \"allow\"}",
		    "\"..\" segment" },
	};
	char		 err[256], json[1024];
	json_t		*j;
	struct eg_policy *p;
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(json, sizeof(json), "{\"rules\": [{\"host\": \"ok\","
		    " \"action\": \"allow\"}, %s]}", bad[i][0]);
		err[0] = '\0';
		j = json_loads(json, JSON_ALLOW_NUL, NULL);
		ok(j != NULL, "test %zu is JSON", i);
		p = eg_policy_parse("dev", j, err, sizeof(err));
		ok(p == NULL, "refused: %s", bad[i][0]);
		eg_policy_free(p);
		json_decref(j);
		ok(!strncmp(err, "egress policy \"dev\": rule 1: ", 29) &&
		    strstr(err, bad[i][1]) != NULL, "says %s: %s", bad[i][1],
		    err);
	}
	j = json_loads("{\"default\": \"maybe\"}", 0, NULL);
	ok(eg_policy_parse("t", j, err, sizeof(err)) == NULL &&
	    !strcmp(err, "egress policy \"t\": \"default\" is not \"allow\" "
	    "or \"deny\""), "a bad default: %s", err);
	json_decref(j);
	j = json_loads("{\"rule\": []}", 0, NULL);
	ok(eg_policy_parse("t", j, err, sizeof(err)) == NULL &&
	    strstr(err, "unknown field \"rule\"") != NULL,
	    "an unknown policy field: %s", err);
	json_decref(j);
	j = json_loads("{\"rules\": [1]}", 0, NULL);
	ok(eg_policy_parse("t", j, err, sizeof(err)) == NULL &&
	    strstr(err, "rule 0: is not an object") != NULL,
	    "a rule not an object: %s", err);
	json_decref(j);
	ok(eg_policy_parse("t", NULL, err, sizeof(err)) == NULL,
	    "no object");
	test_reason_length(180, true);
	test_reason_length(181, false);
}

static void
test_reason_length(size_t len, bool fits)
{
	char			 reason[200], err[256] = "";
	json_t			*j;
	struct eg_policy	*p;

	memset(reason, 'r', len);
	reason[len] = '\0';
	j = json_pack("{s:[{s:s, s:s, s:s}]}", "rules", "host", "a",
	    "action", "deny", "reason", reason);
	p = eg_policy_parse("dev", j, err, sizeof(err));
	json_decref(j);
	if (fits) {
		ok(p != NULL, "a reason of %zu bytes: %s", len, err);
		is_str(p != NULL ? check(p, "a", 1, "GET", "/", NULL)->reason :
		    NULL, reason, "is given whole");
	} else
		ok(p == NULL && strstr(err, "egress policy \"dev\": rule 0: "
		    "\"reason\" is longer than 180") != NULL,
		    "a reason of %zu bytes: %s", len, err);
	eg_policy_free(p);
}

static struct eg_policy *
pol(const char *name, const char *text)
{
	json_error_t		 je;
	json_t			*j = json_loads(text, 0, &je);
	struct eg_policy	*p;
	char			 err[256] = "";

	if (j == NULL) {
		ok(0, "policy %s is JSON: %s", name, je.text);
		return NULL;
	}
	p = eg_policy_parse(name, j, err, sizeof(err));
	json_decref(j);
	if (p == NULL)
		ok(0, "policy %s parses: %s", name, err);
	return p;
}

/* An address, in one of a few slots so a test may hold several. */
static const struct sockaddr *
ip(const char *s)
{
	static struct sockaddr_storage	 ss[4];
	static int			 n;
	struct sockaddr_storage		*a = &ss[n++ % 4];
	struct sockaddr_in		*s4 = (struct sockaddr_in *)a;
	struct sockaddr_in6		*s6 = (struct sockaddr_in6 *)a;

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		abort();
	return (struct sockaddr *)a;
}

static struct eg_verdict *
check(const struct eg_policy *p, const char *host, int port,
    const char *method, const char *path, const char *addr)
{
	static struct eg_verdict	 v;
	struct eg_req			 q = { host, port, method, path,
	    addr != NULL ? ip(addr) : NULL };

	memset(&v, 0x5a, sizeof(v));
	eg_policy_check(p, &q, &v);
	return &v;
}
