/* SPDX-License-Identifier: MIT */
/*
 * egress_sni.c: the server name a TLS client asks for in its ClientHello
 * (RFC 8446 §4.1.2, RFC 6066 §3), read from the first bytes of a tunnel.
 * A tunnel the policy allowed for one host must not carry a handshake
 * for another: behind a shared front (a CDN, a load balancer) the name
 * in the ClientHello picks the site, whatever the CONNECT line said.
 */
#include <stdio.h>
#include <string.h>

#include "pincer.h"
#include "egress.h"

/* Big-endian integers of 1 to 3 bytes. */
static size_t
be(const unsigned char *p, size_t n)
{
	size_t	 v = 0;

	while (n-- > 0)
		v = v << 8 | *p++;
	return v;
}

/*
 * p, n: what the client sent so far. 1: a ClientHello naming a host,
 * copied to name; 0: a ClientHello without one; -1: not a TLS
 * ClientHello (another protocol through the tunnel, or one spread over
 * several records); -2: a ClientHello not all here yet.
 */
int
eg_sni(const unsigned char *p, size_t n, char *name, size_t namesz)
{
	const unsigned char	*h, *end, *x, *xe;
	size_t			 rlen, hlen, k, t, l;

	if (n < 5)
		return n > 0 && p[0] != 0x16 ? -1 : -2;
	if (p[0] != 0x16 || p[1] != 0x03)
		return -1;
	rlen = be(p + 3, 2);
	if (n < 5 + rlen)
		return -2;
	h = p + 5;
	end = h + rlen;
	if (rlen < 4 || h[0] != 0x01)
		return -1;
	hlen = be(h + 1, 3);
	if (hlen > rlen - 4)
		return -1;
	end = h + 4 + hlen;
	/* version, random; then session id, ciphers, compression. */
	x = h + 4 + 2 + 32;
	if (x + 1 > end || (x += 1 + x[0]) + 2 > end ||
	    (x += 2 + be(x, 2)) + 1 > end || (x += 1 + x[0]) > end)
		return -1;
	if (x == end)
		return 0;
	if (x + 2 > end || x + 2 + be(x, 2) > end)
		return -1;
	xe = x + 2 + be(x, 2);
	for (x += 2; x + 4 <= xe; x += 4 + l) {
		t = be(x, 2);
		l = be(x + 2, 2);
		if (x + 4 + l > xe)
			return -1;
		if (t != 0)
			continue;
		/* server_name_list: type 0 (host_name), length, name. */
		if (l < 5 || x[6] != 0 || (k = be(x + 7, 2)) + 5 > l ||
		    k == 0 || k >= namesz || memchr(x + 9, '\0', k) != NULL)
			return -1;
		memcpy(name, x + 9, k);
		name[k] = '\0';
		return 1;
	}
	return 0;
}
