/* SPDX-License-Identifier: MIT */
/*
 * fuzz_cdp.c: the CDP bridge's policy (cdp_policy.c) on arbitrary bytes
 * taken as a client's command and as a browser's event. Whatever comes:
 * no crash, a verdict from the known set, a refusal with a reason, and a
 * command passed on that names a context names one the sandbox owns.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pincer.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static bool
owned(void *arg, const char *ctx)
{
	(void)arg;
	return !strcmp(ctx, "CTXA");
}

static const char *
target_ctx(void *arg, const char *t)
{
	(void)arg;
	return !strcmp(t, "TA") ? "CTXA" : !strcmp(t, "TB") ? "CTXB" : NULL;
}

static const char *
session(void *arg, const char *s)
{
	(void)arg;
	return !strcmp(s, "SA") ? "TA" : NULL;
}

static bool
seen(void *arg, const char *t)
{
	(void)arg;
	return !strcmp(t, "TA");
}

static bool
window(void *arg, json_int_t w)
{
	(void)arg;
	return w == 7;
}

static json_t *
contexts(void *arg)
{
	(void)arg;
	return json_array();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cdp_scope	 sc = { .ctx = "CTXA", .downloads = "/dl",
		.ctx_owned = owned, .target_ctx = target_ctx,
		.session_target = session, .seen = seen,
		.window_known = window, .contexts = contexts };
	struct cdp_verdict	 v;
	struct cdp_event	 e;
	json_t			*m, *ctx;
	int			 rc;

	if ((m = json_loadb((const char *)data, size, 0, NULL)) == NULL)
		return 0;
	sc.page = size > 0 && data[0] == ' ' ? "TA" : NULL;
	rc = cdp_policy_check(&sc, m, &v);
	if (rc == -1 && v.why[0] == '\0')
		abort();
	if (rc == 0 && v.act > CDP_CLOSE)
		abort();
	if (rc == 0 && v.act == CDP_REFUSE && v.why[0] == '\0')
		abort();
	/* What is sent on names no foreign context. */
	ctx = json_object_get(json_object_get(m, "params"),
	    "browserContextId");
	if (rc == 0 && v.act == CDP_FORWARD && json_is_string(ctx) &&
	    strcmp(json_string_value(ctx), "CTXA") != 0 &&
	    strncmp(json_string_value(json_object_get(m, "method")),
	    "Target.", 7) == 0)
		abort();
	json_decref(v.result);
	if (cdp_policy_event(&sc, m, &e) == 0 && e.act > CDP_EV_GONE)
		abort();
	if (json_is_object(json_object_get(m, "params")))
		cdp_policy_filter_targets(&sc, json_object_get(m, "params"));
	json_decref(m);
	return 0;
}
