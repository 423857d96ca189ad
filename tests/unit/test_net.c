/* SPDX-License-Identifier: MIT */
/* test_net.c: listen syntax, loopback, CIDRs and the client IP (net.c). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"
#include "tap.h"

static void	test_parse_listen(void);
static void	test_loopback(void);
static void	test_ipaddr(void);
static void	test_cidr(void);
static void	test_client_ip(void);
static bool	loopback(const char *);
static bool	cidr(const char *, const char *);
static const char *client(const char *, const char *);

int
main(void)
{
	test_parse_listen();
	test_loopback();
	test_ipaddr();
	test_cidr();
	test_client_ip();
	return done_testing();
}

static void
test_parse_listen(void)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len = 0;
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:", ":8787", "127.0.0.1:70000",
		"127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x",
		"example.com:80", "localhostx:80", "[::1]", "[::1]80",
		"[::1:80", "::1:80", "[]:80", "[127.0.0.1]:80", "1.2.3:80",
		"",
	};
	size_t			 i;

	is_int(net_parse_listen("127.0.0.1:8787", &ss, &len), 0,
	    "127.0.0.1:8787");
	ok(ss.ss_family == AF_INET && len == sizeof(*sin),
	    "IPv4 family and length");
	is_int(ntohs(sin->sin_port), 8787, "IPv4 port");
	is_int(ntohl(sin->sin_addr.s_addr), 0x7f000001, "IPv4 address");

	is_int(net_parse_listen("[::1]:0", &ss, &len), 0, "[::1]:0");
	ok(ss.ss_family == AF_INET6 && len == sizeof(*sin6),
	    "IPv6 family and length");
	is_int(ntohs(sin6->sin6_port), 0, "port 0 for an ephemeral port");
	ok(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr), "::1 parsed");

	is_int(net_parse_listen("[::]:80", &ss, &len), 0, "[::]:80");
	ok(ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr), "[::] is any");
	is_int(ntohs(sin6->sin6_port), 80, "[::] port");

	is_int(net_parse_listen("localhost:1", &ss, &len), 0, "localhost:1");
	ok(ss.ss_family == AF_INET &&
	    ntohl(sin->sin_addr.s_addr) == 0x7f000001,
	    "localhost is 127.0.0.1");
	is_int(ntohs(sin->sin_port), 1, "localhost port");
	is_int(net_parse_listen("0.0.0.0:65535", &ss, &len), 0,
	    "0.0.0.0:65535");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(net_parse_listen(bad[i], &ss, &len), -1,
		    "\"%s\" refused", bad[i]);
	ok(net_parse_listen("127.0.0.1: 80", &ss, &len) == -1 &&
	    net_parse_listen("127.0.0.1:+80", &ss, &len) == -1,
	    "a port with a space or a sign is refused");
}

static bool
loopback(const char *addr)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return false;
	return net_is_loopback((struct sockaddr *)&ss);
}

static void
test_loopback(void)
{
	ok(loopback("127.0.0.1"), "127.0.0.1 is loopback");
	ok(loopback("127.5.5.5"), "127.5.5.5 is loopback");
	ok(loopback("127.255.255.255"), "all of 127/8 is loopback");
	ok(loopback("::1"), "::1 is loopback");
	ok(loopback("::ffff:127.0.0.1"), "v4-mapped 127.0.0.1 is loopback");
	ok(!loopback("0.0.0.0"), "0.0.0.0 is not");
	ok(!loopback("10.0.0.1"), "10.0.0.1 is not");
	ok(!loopback("128.0.0.1"), "128.0.0.1 is not");
	ok(!loopback("::"), ":: is not");
	ok(!loopback("::2"), "::2 is not");
	ok(!loopback("::127.0.0.1"), "v4-compatible ::127.0.0.1 is not");
	ok(!loopback("::ffff:10.0.0.1"), "v4-mapped 10.0.0.1 is not");
}

static void
test_ipaddr(void)
{
	struct ipaddr		 ip;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 s[64];

	is_int(net_ipaddr_parse("192.0.2.1", &ip), 0, "parse IPv4");
	net_ipaddr_str(&ip, s, sizeof(s));
	is_str(s, "192.0.2.1", "IPv4 back to text");
	ok(ip.b[10] == 0xff && ip.b[11] == 0xff && ip.b[12] == 192,
	    "IPv4 is v4-mapped");
	is_int(net_ipaddr_parse("2001:db8::1", &ip), 0, "parse IPv6");
	net_ipaddr_str(&ip, s, sizeof(s));
	is_str(s, "2001:db8::1", "IPv6 back to text");
	is_int(net_ipaddr_parse("::ffff:192.0.2.1", &ip), 0,
	    "parse v4-mapped");
	net_ipaddr_str(&ip, s, sizeof(s));
	is_str(s, "192.0.2.1", "v4-mapped prints as IPv4");
	is_int(net_ipaddr_parse("1.2.3", &ip), -1, "short IPv4 refused");
	is_int(net_ipaddr_parse("localhost", &ip), -1, "names refused");
	is_int(net_ipaddr_parse("", &ip), -1, "empty refused");

	net_parse_listen("127.0.0.1:8787", &ss, &len);
	net_sockaddr_str((struct sockaddr *)&ss, s, sizeof(s));
	is_str(s, "127.0.0.1:8787", "sockaddr IPv4 text");
	net_parse_listen("[::1]:99", &ss, &len);
	net_sockaddr_str((struct sockaddr *)&ss, s, sizeof(s));
	is_str(s, "[::1]:99", "sockaddr IPv6 text");
}

static bool
cidr(const char *net, const char *addr)
{
	struct ipaddr	 ip;

	if (net_ipaddr_parse(addr, &ip) == -1)
		return false;
	return net_cidr_match(net, &ip);
}

static void
test_cidr(void)
{
	ok(cidr("10.0.0.0/8", "10.200.3.4"), "10/8 holds 10.200.3.4");
	ok(!cidr("10.0.0.0/8", "11.0.0.1"), "10/8 does not hold 11.0.0.1");
	ok(cidr("192.0.2.7/32", "192.0.2.7"), "/32 holds itself");
	ok(!cidr("192.0.2.7/32", "192.0.2.8"), "/32 holds nothing else");
	ok(cidr("192.0.2.7", "192.0.2.7"), "a bare IPv4 is a /32");
	ok(!cidr("192.0.2.7", "192.0.2.6"), "bare IPv4 is exact");
	ok(cidr("0.0.0.0/0", "203.0.113.1"), "v4 /0 holds any IPv4");
	ok(!cidr("0.0.0.0/0", "2001:db8::1"), "v4 /0 holds no IPv6");
	ok(cidr("2001:db8:1:2::/64", "2001:db8:1:2:aaaa::1"),
	    "v6 /64 holds an address in it");
	ok(!cidr("2001:db8:1:2::/64", "2001:db8:1:3::1"),
	    "v6 /64 not the next /64");
	ok(cidr("::1", "::1"), "bare IPv6 is a /128");
	ok(!cidr("::1", "::2"), "bare IPv6 is exact");
	ok(cidr("::/0", "2001:db8::1"), "v6 /0 holds any IPv6");
	ok(cidr("172.16.0.0/12", "172.31.255.255"), "/12 upper end");
	ok(!cidr("172.16.0.0/12", "172.32.0.0"), "/12 one past");
	ok(cidr("10.1.16.0/20", "10.1.31.200"), "/20 holds 10.1.31.200");
	ok(!cidr("10.1.16.0/20", "10.1.32.0"), "/20 does not hold 10.1.32.0");
	ok(!cidr("10.1.16.0/20", "10.1.15.255"),
	    "/20 does not hold 10.1.15.255");
	ok(cidr("10.0.0.0/7", "11.255.0.1"), "/7 holds 11.x");
	ok(!cidr("10.0.0.0/7", "12.0.0.1"), "/7 does not hold 12.x");
	ok(cidr("fd00::/7", "fdff::1"), "v6 /7 holds fdff::1");
	ok(cidr("fd00::/7", "fc00::1"), "v6 /7 holds fc00::1");
	ok(!cidr("fd00::/7", "fe00::1"), "v6 /7 does not hold fe00::1");
	ok(cidr("::ffff:10.0.0.0/104", "10.9.9.9"),
	    "a v4-mapped v6 CIDR holds IPv4");
	ok(!cidr("10.0.0.0/33", "10.0.0.0"), "v4 /33 matches nothing");
	ok(!cidr("::/129", "::"), "v6 /129 matches nothing");
	ok(!cidr("not-an-ip/8", "10.0.0.1"), "junk matches nothing");
}

/* The client IP as text, for a peer address and an X-Forwarded-For. */
static const char *
client(const char *peer, const char *fwd)
{
	static char		 out[64];
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	struct ipaddr		 ip;
	char			 listen[80];

	snprintf(listen, sizeof(listen), strchr(peer, ':') ? "[%s]:1" :
	    "%s:1", peer);
	if (net_parse_listen(listen, &ss, &len) == -1)
		return "(bad peer)";
	net_client_ip((struct sockaddr *)&ss, fwd, &ip);
	net_ipaddr_str(&ip, out, sizeof(out));
	return out;
}

static void
test_client_ip(void)
{
	static const char text[] = "{\"http\": {\"trusted_proxies\": "
	    "[\"10.0.0.0/8\", \"::1\"]}}";
	struct config	*c;
	char		*err = NULL;

	is_str(client("10.1.1.1", "203.0.113.5"), "10.1.1.1",
	    "no config published: the peer");
	c = config_parse("{}", 2, "test", &err);
	ok(c != NULL, "default config parses");
	config_publish(c);
	is_str(client("10.1.1.1", "203.0.113.5"), "10.1.1.1",
	    "no trusted proxies: X-Forwarded-For ignored");

	c = config_parse(text, strlen(text), "test", &err);
	ok(c != NULL, "config with trusted_proxies parses%s%s",
	    err ? ": " : "", err ? err : "");
	free(err);
	if (c == NULL)
		return;
	config_publish(c);
	ok(config_current() == c, "the new config is live");
	is_str(client("10.1.1.1", "203.0.113.5"), "203.0.113.5",
	    "trusted proxy: the forwarded address");
	is_str(client("10.1.1.1", "2001:db8::9"), "2001:db8::9",
	    "trusted proxy: a forwarded IPv6 address");
	is_str(client("::1", "198.51.100.2"), "198.51.100.2",
	    "trusted IPv6 proxy");
	is_str(client("192.0.2.1", "203.0.113.5"), "192.0.2.1",
	    "untrusted peer: X-Forwarded-For ignored");
	is_str(client("10.1.1.1", NULL), "10.1.1.1",
	    "trusted proxy without the header: the peer");
	is_str(client("10.1.1.1", ""), "10.1.1.1",
	    "trusted proxy, empty header: the peer");
	is_str(client("10.1.1.1", "not-an-ip"), "10.1.1.1",
	    "trusted proxy, junk header: the peer");
	config_release_all();
	ok(config_current() == NULL, "config_release_all clears the live one");
}

