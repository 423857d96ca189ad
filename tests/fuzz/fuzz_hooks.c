/* SPDX-License-Identifier: MIT */
/*
 * fuzz_hooks.c: every channel kind's webhook parser on arbitrary bodies
 * (as if the signature had passed: what a platform, or whoever holds its
 * secret, can send). Nothing may crash or leak; every message parsed has
 * its strings terminated and an event id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Configs that pass each kind's init; secrets are never read by parse. */
static const char *const confs[][2] = {
	{ "/hooks/slack/events", "{\"name\":\"s\",\"kind\":\"slack\","
	  "\"signing_secret\":\"a\",\"bot_token\":\"b\","
	  "\"bot_user_id\":\"U0BOT\"}" },
	{ "/hooks/telegram", "{\"name\":\"t\",\"kind\":\"telegram\","
	  "\"bot_token\":\"a\",\"webhook_secret\":\"b\","
	  "\"bot_username\":\"pincer_bot\"}" },
	{ "/hooks/whatsapp", "{\"name\":\"w\",\"kind\":\"whatsapp\","
	  "\"phone_number_id\":\"123\",\"access_token\":\"a\","
	  "\"app_secret\":\"b\",\"verify_token\":\"c\"}" },
	{ "/hooks/discord/interactions", "{\"name\":\"d\",\"kind\":"
	  "\"discord\",\"bot_token\":\"a\",\"public_key\":\"0000000000000000"
	  "000000000000000000000000000000000000000000000000\","
	  "\"application_id\":\"1\",\"gateway\":false}" },
	{ "/hooks/generic/g", "{\"name\":\"g\",\"kind\":\"generic\","
	  "\"secret\":\"a\",\"callback_url\":\"http://127.0.0.1:9/\"}" },
};
#define NKINDS	(sizeof(confs) / sizeof(confs[0]))

static struct channel	*chans[NKINDS];

static void
setup(void)
{
	static bool	 done;
	char		 err[512];
	json_t		*j;
	size_t		 i;

	if (done)
		return;
	done = true;
	log_setup(LOG_ERROR, LOG_LOGFMT);
	for (i = 0; i < NKINDS; i++) {
		j = json_loads(confs[i][1], 0, NULL);
		if ((chans[i] = channel_build(j, err, sizeof(err))) == NULL) {
			fprintf(stderr, "fuzz_hooks: %s: %s\n", confs[i][0],
			    err);
			abort();
		}
		json_decref(j);
	}
}

static void
check(const struct chan_batch *b)
{
	size_t	 i;

	if (b->n > CHAN_BATCH_MAX)
		abort();
	for (i = 0; i < b->n; i++) {
		const struct chan_msg	*m = &b->msgs[i];

		if (memchr(m->event_id, '\0', sizeof(m->event_id)) == NULL ||
		    memchr(m->chat, '\0', sizeof(m->chat)) == NULL ||
		    memchr(m->sender, '\0', sizeof(m->sender)) == NULL ||
		    memchr(m->thread, '\0', sizeof(m->thread)) == NULL ||
		    memchr(m->ref, '\0', sizeof(m->ref)) == NULL)
			abort();
		if (m->event_id[0] == '\0')
			abort();	/* no dedupe without it */
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const headers[] = {
		"Content-Type: application/json",
		"X-Slack-Retry-Num: 1",
		NULL
	};
	struct chan_batch	*b;
	struct http_req		*r;
	char			 why[256];
	size_t			 i, k;

	setup();
	for (k = 0; k < NKINDS; k++) {
		if ((b = calloc(1, sizeof(*b))) == NULL ||
		    (r = http_req_fake("POST", confs[k][0], headers, NULL,
		    data, size)) == NULL)
			abort();
		why[0] = '\0';
		if (chans[k]->ops->parse(chans[k], r, b, why, sizeof(why)) ==
		    0)
			check(b);
		for (i = 0; i < b->n; i++)
			chan_msg_clear(&b->msgs[i]);
		free(b->body);
		free(b);
		http_req_fake_free(r);
	}
	return 0;
}
