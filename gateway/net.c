/* SPDX-License-Identifier: MIT */
/* net.c: socket addresses: listen syntax, loopback, client IPs, CIDRs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

static int	parse_port(const char *, in_port_t *);

/* "127.0.0.1:8787", "[::1]:8787", "[::]:8787" or "localhost:8787". */
int
net_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[64];
	const char		*colon, *end;
	in_port_t		 port;
	size_t			 n;

	memset(ss, 0, sizeof(*ss));
	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return -1;
		n = (size_t)(end - s - 1);
		if (n == 0 || n >= sizeof(host))
			return -1;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		if (parse_port(end + 2, &port) == -1 ||
		    inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	if ((colon = strrchr(s, ':')) == NULL)
		return -1;
	n = (size_t)(colon - s);
	if (n == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (parse_port(colon + 1, &port) == -1 ||
	    inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	*len = sizeof(*sin);
	return 0;
}

/* 127.0.0.0/8, ::1, and v4-mapped loopback. */
bool
net_is_loopback(const struct sockaddr *sa)
{
	struct ipaddr	 ip;
	static const uint8_t v6lo[16] = { [15] = 1 };
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	net_ipaddr(sa, &ip);
	if (!memcmp(ip.b, v6lo, 16))
		return true;
	return !memcmp(ip.b, mapped, 12) && ip.b[12] == 127;
}

void
net_ipaddr(const struct sockaddr *sa, struct ipaddr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (sa->sa_family == AF_INET) {
		ip->b[10] = ip->b[11] = 0xff;
		memcpy(ip->b + 12, &((const struct sockaddr_in *)sa)->sin_addr,
		    4);
	} else if (sa->sa_family == AF_INET6)
		memcpy(ip->b, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    16);
}

int
net_ipaddr_parse(const char *s, struct ipaddr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET6, s, ip->b) == 1)
		return 0;
	ip->b[10] = ip->b[11] = 0xff;
	if (inet_pton(AF_INET, s, ip->b + 12) == 1)
		return 0;
	return -1;
}

void
net_ipaddr_str(const struct ipaddr *ip, char *out, size_t outsz)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (!memcmp(ip->b, mapped, 12))
		inet_ntop(AF_INET, ip->b + 12, out, (socklen_t)outsz);
	else
		inet_ntop(AF_INET6, ip->b, out, (socklen_t)outsz);
}

void
net_sockaddr_str(const struct sockaddr *sa, char *out, size_t outsz)
{
	char	 host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_UNIX) {
		snprintf(out, outsz, "unix");
		return;
	}
	if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    host, sizeof(host));
		snprintf(out, outsz, "[%s]:%u", host,
		    ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    host, sizeof(host));
		snprintf(out, outsz, "%s:%u", host,
		    ntohs(((const struct sockaddr_in *)sa)->sin_port));
	}
}

/* "10.0.0.0/8", "::1", "fd00::/8"; a v4 prefix counts in mapped space. */
bool
net_cidr_match(const char *cidr, const struct ipaddr *ip)
{
	struct ipaddr	 net;
	char		 addr[64], *slash;
	long		 bits = 128;
	int		 i, full;

	if ((size_t)snprintf(addr, sizeof(addr), "%s", cidr) >= sizeof(addr))
		return false;
	if ((slash = strchr(addr, '/')) != NULL) {
		*slash++ = '\0';
		bits = strtol(slash, NULL, 10);
	}
	if (net_ipaddr_parse(addr, &net) == -1)
		return false;
	if (strchr(addr, ':') == NULL)
		bits = (slash != NULL ? bits : 32) + 96;
	if (bits < 0 || bits > 128)
		return false;
	full = (int)(bits / 8);
	for (i = 0; i < full; i++)
		if (net.b[i] != ip->b[i])
			return false;
	if (bits % 8 == 0)
		return true;
	return ((net.b[full] ^ ip->b[full]) &
	    (uint8_t)(0xff << (8 - bits % 8))) == 0;
}

/*
 * The client is the peer, unless the peer is a trusted reverse proxy and
 * said who it forwards for. Only the right-most X-Forwarded-For entry is
 * used: the proxy appended it; anything left of it the client could forge.
 */
void
net_client_ip(const struct sockaddr *peer, const char *fwd, struct ipaddr *out)
{
	const struct config	*c = config_current();
	struct ipaddr		 claimed;
	size_t			 i;

	net_ipaddr(peer, out);
	if (fwd == NULL || *fwd == '\0' || c == NULL ||
	    c->trusted_proxies == NULL)
		return;
	for (i = 0; c->trusted_proxies[i] != NULL; i++)
		if (net_cidr_match(c->trusted_proxies[i], out)) {
			if (net_ipaddr_parse(fwd, &claimed) == 0)
				*out = claimed;
			return;
		}
}

static int
parse_port(const char *s, in_port_t *port)
{
	char	*end;
	long	 n;

	/* Digits only: strtol alone would take " 80", "+80" and "-0". */
	if (*s < '0' || *s > '9' || strlen(s) > 5)
		return -1;
	n = strtol(s, &end, 10);
	if (*end != '\0' || n < 0 || n > 65535)
		return -1;
	*port = (in_port_t)n;
	return 0;
}

bool
net_trusted_proxy(const struct sockaddr *peer)
{
	const struct config	*c = config_current();
	struct ipaddr		 ip;
	size_t			 i;

	net_ipaddr(peer, &ip);
	for (i = 0; c != NULL && c->trusted_proxies != NULL &&
	    c->trusted_proxies[i] != NULL; i++)
		if (net_cidr_match(c->trusted_proxies[i], &ip))
			return true;
	return false;
}
