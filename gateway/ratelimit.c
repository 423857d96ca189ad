/* SPDX-License-Identifier: MIT */
/*
 * ratelimit.c: a token bucket per client IP, in a fixed table. The table
 * never grows: when a stripe is full the bucket seen longest ago is
 * reused, so a flood of new addresses costs no memory.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

#define STRIPES	64
#define PROBES	8

struct bucket {
	struct ipaddr	 ip;
	bool		 used;
	double		 tokens;
	double		 last;		/* seconds, monotonic */
};

static uint64_t	hash_ip(const struct ipaddr *);

static struct bucket	*buckets;
static size_t		 per_stripe;
static pthread_mutex_t	 locks[STRIPES];

int
ratelimit_init(size_t slots)
{
	size_t	 i;

	per_stripe = slots / STRIPES > PROBES ? slots / STRIPES : PROBES;
	if ((buckets = calloc(per_stripe * STRIPES, sizeof(*buckets))) == NULL)
		return -1;
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_init(&locks[i], NULL);
	return 0;
}

void
ratelimit_free(void)
{
	free(buckets);
	buckets = NULL;
}

long
ratelimit_take(const struct ipaddr *ip, long rps, long burst)
{
	uint64_t	 h = hash_ip(ip);
	size_t		 stripe = h % STRIPES, i, idx;
	struct bucket	*base, *b = NULL, *oldest = NULL;
	double		 now = now_seconds(), wait;
	long		 rc = 0;

	base = buckets + stripe * per_stripe;
	pthread_mutex_lock(&locks[stripe]);
	for (i = 0; i < PROBES; i++) {
		idx = (size_t)((h / STRIPES + i) % per_stripe);
		if (base[idx].used && !memcmp(&base[idx].ip, ip, sizeof(*ip))) {
			b = &base[idx];
			break;
		}
		if (!base[idx].used) {
			if (oldest == NULL || oldest->used)
				oldest = &base[idx];
		} else if (oldest == NULL ||
		    (oldest->used && base[idx].last < oldest->last))
			oldest = &base[idx];
	}
	if (b == NULL) {
		b = oldest;
		b->ip = *ip;
		b->used = true;
		b->tokens = (double)burst;
		b->last = now;
	}
	b->tokens += (now - b->last) * (double)rps;
	if (b->tokens > (double)burst)
		b->tokens = (double)burst;
	b->last = now;
	if (b->tokens >= 1.0)
		b->tokens -= 1.0;
	else {
		wait = (1.0 - b->tokens) / (double)rps;
		rc = (long)wait + 1;
	}
	pthread_mutex_unlock(&locks[stripe]);
	return rc;
}

/* FNV-1a over the 16 address bytes. */
static uint64_t
hash_ip(const struct ipaddr *ip)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;
	size_t		 i;

	for (i = 0; i < sizeof(ip->b); i++) {
		h ^= ip->b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}
