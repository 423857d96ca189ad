/* SPDX-License-Identifier: MIT */
/* test_ratelimit.c: token buckets per client IP in a fixed table. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pincer.h"
#include "tap.h"

static void	ip_n(struct ipaddr *, uint32_t);
static void	sleep_ms(long);
static void	test_burst(void);
static void	test_refill(void);
static void	test_many(void);

int
main(void)
{
	if (ratelimit_init(4096) == -1) {
		printf("Bail out! ratelimit_init failed\n");
		return 1;
	}
	test_burst();
	test_refill();
	test_many();
	ratelimit_free();
	return done_testing();
}

/* 10.x.y.z from a number, v4-mapped like net_ipaddr makes it. */
static void
ip_n(struct ipaddr *ip, uint32_t n)
{
	memset(ip, 0, sizeof(*ip));
	ip->b[10] = ip->b[11] = 0xff;
	ip->b[12] = 10;
	ip->b[13] = (uint8_t)(n >> 16);
	ip->b[14] = (uint8_t)(n >> 8);
	ip->b[15] = (uint8_t)n;
}

static void
sleep_ms(long ms)
{
	struct timespec	 ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1)
		;
}

static void
test_burst(void)
{
	struct ipaddr	 a, b;
	long		 w;
	int		 i, allowed = 0;

	ip_n(&a, 1);
	ip_n(&b, 2);
	/* 1 request a second: nothing refills during the test. */
	for (i = 0; i < 5; i++)
		allowed += ratelimit_take(&a, 1, 5) == 0;
	is_int(allowed, 5, "a burst of 5 allowed");
	w = ratelimit_take(&a, 1, 5);
	ok(w > 0, "the 6th is refused with a positive wait (%ld)", w);
	ok(w <= 2, "the wait is about a second at 1 rps (%ld)", w);
	ok(ratelimit_take(&a, 1, 5) > 0, "and the 7th");
	is_int(ratelimit_take(&b, 1, 5), 0, "another IP is independent");
	for (i = 0, allowed = 1; i < 4; i++)
		allowed += ratelimit_take(&b, 1, 5) == 0;
	is_int(allowed, 5, "the other IP has its own full burst");
	ok(ratelimit_take(&b, 1, 5) > 0, "then it is refused too");
	ok(ratelimit_take(&a, 1, 5) > 0, "the first IP is still refused");

	ip_n(&a, 3);
	is_int(ratelimit_take(&a, 1, 1), 0, "burst 1: the first is allowed");
	w = ratelimit_take(&a, 1, 1);
	ok(w >= 1 && w <= 2, "burst 1: the second waits a second or two "
	    "(%ld)", w);
}

static void
test_refill(void)
{
	struct ipaddr	 a;
	int		 i, allowed = 0;

	ip_n(&a, 100);
	for (i = 0; i < 10; i++)
		allowed += ratelimit_take(&a, 20, 10) == 0;
	is_int(allowed, 10, "rps 20: burst of 10");
	ok(ratelimit_take(&a, 20, 10) > 0, "rps 20: then refused");
	sleep_ms(100);
	/* 100 ms at 20 rps is 2 tokens, more only if the machine is slow. */
	for (i = 0, allowed = 0; i < 10; i++)
		allowed += ratelimit_take(&a, 20, 10) == 0;
	ok(allowed >= 2 && allowed <= 4, "100 ms refilled ~2 tokens (%d)",
	    allowed);

	ip_n(&a, 101);
	for (i = 0; i < 3; i++)
		ratelimit_take(&a, 20, 3);
	ok(ratelimit_take(&a, 20, 3) > 0, "burst 3 used up");
	sleep_ms(400);
	/* 400 ms is 8 tokens, but a bucket holds no more than the burst. */
	for (i = 0, allowed = 0; i < 10; i++)
		allowed += ratelimit_take(&a, 20, 3) == 0;
	is_int(allowed, 3, "refill is capped at the burst");
}

static void
test_many(void)
{
	struct ipaddr	 ip;
	uint32_t	 n;
	int		 first_ok = 0, refused = 0;

	/* Far more addresses than the 4096 slots: each is new, so allowed. */
	for (n = 0; n < 50000; n++) {
		ip_n(&ip, 1000 + n);
		first_ok += ratelimit_take(&ip, 1, 2) == 0;
	}
	is_int(first_ok, 50000, "50000 distinct IPs each get their first");
	/* The latest address is still in the table with one token left. */
	is_int(ratelimit_take(&ip, 1, 2), 0, "the last IP's second request");
	refused = ratelimit_take(&ip, 1, 2) > 0;
	ok(refused, "and its third is refused: its bucket was kept");
	memset(&ip, 0, sizeof(ip));
	ip.b[0] = 0x20;
	ip.b[1] = 0x01;
	is_int(ratelimit_take(&ip, 1, 1), 0, "an IPv6 client after the flood");
	ok(ratelimit_take(&ip, 1, 1) > 0, "IPv6 client limited too");
}
