/* SPDX-License-Identifier: MIT */
/* api_system.c: liveness, readiness, metrics, version, restart. */
#include <stdio.h>
#include <stdlib.h>

#include <microhttpd.h>

#include "pincer.h"

/* The process answers: nothing else is checked. */
void
api_healthz(struct http_req *r)
{
	http_json(r, 200, "{\"status\":\"ok\"}");
}

/* Ready: the store is open and migrated, and we are not shutting down. */
void
api_readyz(struct http_req *r)
{
	char	 body[128];

	if (http_draining()) {
		http_error(r, 503, "draining", "pincerd is shutting down");
		return;
	}
	if (!store_ready()) {
		http_error(r, 503, "store_not_ready",
		    "the database is not open or not migrated");
		return;
	}
	snprintf(body, sizeof(body), "{\"status\":\"ready\","
	    "\"schema_version\":%d}", store_latest_version());
	http_json(r, 200, body);
}

/* Prometheus text exposition format 0.0.4. */
void
api_metrics(struct http_req *r)
{
	struct MHD_Response	*resp;
	struct buf		 b;

	buf_init(&b, 4 * 1024 * 1024);
	metrics_render(&b);
	resp = MHD_create_response_from_buffer(b.len, b.data,
	    MHD_RESPMEM_MUST_FREE);
	b.data = NULL;
	if (resp != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    "text/plain; version=0.0.4; charset=utf-8");
	http_reply(r, 200, resp);
	buf_free(&b);
}

void
api_version(struct http_req *r)
{
	char	 body[128];

	snprintf(body, sizeof(body), "{\"name\":\"pincer\",\"version\":\"%s\"}",
	    pincer_version);
	http_json(r, 200, body);
}

/*
 * An admin restarts pincerd (what only a restart applies: listen,
 * channels, sandbox settings). The answer goes out before the drain
 * begins; the page then waits for /readyz of the new process.
 */
void
api_system_restart(struct http_req *r)
{
	struct identity	*id = http_req_identity(r);

	audit_add(id->user[0] ? id->user : "unknown", http_req_ip(r),
	    "system.restart", "pincerd", NULL);
	log_info("restart asked", "by=%s", id->user[0] ? id->user :
	    "unknown");
	http_json(r, 202, "{\"status\":\"restarting\"}");
	daemon_restart();
}
