/* SPDX-License-Identifier: MIT */
/*
 * mhd_bare.c: libmicrohttpd alone, answering {"status":"ok"} on its own
 * listening socket with the same worker count as pincerd. The benchmark
 * runs wrk against it beside pincerd, so the figures show what the library
 * and this machine allow before pincer's code is counted.
 * Usage: mhd_bare PORT THREADS
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *up, size_t *n,
    void **ctx)
{
	static const char	 body[] = "{\"status\":\"ok\"}";
	struct MHD_Response	*r;
	enum MHD_Result		 rc;

	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
	    MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	rc = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return rc;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon	*d;
	sigset_t		 s;
	int			 sig;

	if (argc != 3)
		return 2;
	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD,
	    (uint16_t)atoi(argv[1]), NULL, NULL, on_request, NULL,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)atoi(argv[2]),
	    MHD_OPTION_END);
	if (d == NULL)
		return 1;
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGINT);
	sigprocmask(SIG_BLOCK, &s, NULL);
	sigwait(&s, &sig);
	MHD_stop_daemon(d);
	return 0;
}
