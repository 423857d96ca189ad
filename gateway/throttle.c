/* SPDX-License-Identifier: MIT */
/*
 * throttle.c: growing delays after failed logins, per client IP and per
 * user name. After the third failure a try must wait 1 s, then each
 * failure doubles the wait, up to five minutes. Keys are hashed, so names that do not exist cost
 * the same as names that do. A fixed table: a flood evicts old entries.
 */
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "pincer.h"

#define SLOTS		4096
#define FREE_FAILURES	3
#define MAX_DELAY_S	300.0

struct entry {
	unsigned char	 key[16];
	bool		 used;
	unsigned	 failures;
	double		 until;		/* monotonic seconds */
	double		 last;
};

static struct entry	*find(const char *, const char *, bool);

static struct entry	 table[SLOTS];
static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;

/* Seconds to wait before another try of (kind, value), or 0. */
long
throttle_wait(const char *kind, const char *value)
{
	struct entry	*e;
	double		 now = now_seconds();
	long		 w = 0;

	pthread_mutex_lock(&lock);
	if ((e = find(kind, value, false)) != NULL && e->until > now)
		w = (long)(e->until - now) + 1;
	pthread_mutex_unlock(&lock);
	return w;
}

void
throttle_fail(const char *kind, const char *value)
{
	struct entry	*e;
	double		 now = now_seconds(), d;

	pthread_mutex_lock(&lock);
	if ((e = find(kind, value, true)) != NULL) {
		e->failures++;
		e->last = now;
		/* The third failure starts the waits: 1 s, 2 s, 4 s … */
		if (e->failures >= FREE_FAILURES) {
			d = (double)(1u << (e->failures - FREE_FAILURES < 16 ?
			    e->failures - FREE_FAILURES : 16));
			e->until = now + (d < MAX_DELAY_S ? d : MAX_DELAY_S);
		}
	}
	pthread_mutex_unlock(&lock);
}

void
throttle_clear(const char *kind, const char *value)
{
	struct entry	*e;

	pthread_mutex_lock(&lock);
	if ((e = find(kind, value, false)) != NULL)
		memset(e, 0, sizeof(*e));
	pthread_mutex_unlock(&lock);
}

static struct entry *
find(const char *kind, const char *value, bool create)
{
	unsigned char	 h[SHA256_DIGEST_LENGTH];
	char		 buf[512];
	size_t		 i, idx, start, n;
	struct entry	*oldest = NULL;

	n = (size_t)snprintf(buf, sizeof(buf), "%s:%s", kind, value);
	SHA256((unsigned char *)buf, n < sizeof(buf) ? n : sizeof(buf) - 1, h);
	start = ((size_t)h[0] << 8 | h[1]) % SLOTS;
	for (i = 0; i < 16; i++) {
		idx = (start + i) % SLOTS;
		if (table[idx].used && !memcmp(table[idx].key, h, 16))
			return &table[idx];
		if (oldest == NULL || !table[idx].used ||
		    (oldest->used && table[idx].last < oldest->last))
			oldest = &table[idx];
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	memcpy(oldest->key, h, 16);
	oldest->used = true;
	return oldest;
}
