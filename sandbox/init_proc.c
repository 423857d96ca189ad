/* SPDX-License-Identifier: MIT */
/*
 * init_proc.c: /processes, the background processes: start one under an
 * id, list them, show one, and end one (DELETE: a signal to its group,
 * SIGKILL after 3 s). What they write, and the waits on it, are
 * init_plog.c's.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

#define KILL_MS		3000		/* DELETE: SIGTERM, then SIGKILL */
#define MAX_PROCS	64

static void	proc_start(struct conn *, const struct req *);
static void	proc_list(struct conn *);
static void	proc_delete(struct conn *, struct proc *);
static struct proc *proc_find(const char *);
static json_t	*proc_json(struct proc *);
static void	proc_read(void *, uint32_t);
static void	proc_exited(void *, pid_t, int);
static void	proc_check(struct proc *);
static void	proc_grace(void *);
static void	proc_hardkill(void *);
static void	proc_finish(struct proc *);
static void	proc_free(struct proc *);

static LIST_HEAD(, proc) procs = LIST_HEAD_INITIALIZER(procs);
static int	 nprocs;
static unsigned	 next_id;

void
proc_handle(struct conn *c, const struct req *r)
{
	char		 id[65];
	const char	*p = r->path + strlen("/processes"), *rest;
	struct proc	*pr;
	size_t		 len;

	if (*p == '\0' || !strcmp(p, "/")) {
		if (!strcmp(r->method, "GET"))
			proc_list(c);
		else if (!strcmp(r->method, "POST"))
			proc_start(c, r);
		else
			http_error(c, 405, "method_not_allowed",
			    "GET or POST here");
		return;
	}
	p++;
	len = strcspn(p, "/");
	rest = p + len;
	pr = NULL;
	if (len > 0 && len < sizeof(id)) {
		memcpy(id, p, len);
		id[len] = '\0';
		pr = proc_find(id);
	}
	if (pr == NULL) {
		http_error(c, 404, "not_found", "no such process");
		return;
	}
	if (*rest == '\0' && !strcmp(r->method, "GET"))
		http_json(c, 200, proc_json(pr));
	else if (*rest == '\0' && !strcmp(r->method, "DELETE"))
		proc_delete(c, pr);
	else if (!strcmp(rest, "/logs") && !strcmp(r->method, "GET"))
		plog_logs(c, pr);
	else if (!strcmp(rest, "/wait") && !strcmp(r->method, "POST"))
		pwait_handle(c, r, pr);
	else if (*rest == '\0' || !strcmp(rest, "/logs") ||
	    !strcmp(rest, "/wait"))
		http_error(c, 405, "method_not_allowed", "%s is not allowed "
		    "here", r->method);
	else
		http_error(c, 404, "not_found", "no such endpoint");
}

int
proc_count(void)
{
	struct proc	*p;
	int		 n = 0;

	LIST_FOREACH(p, &procs, entry)
		if (p->running)
			n++;
	return n;
}

void
proc_kill_all(int sig)
{
	struct proc	*p;

	LIST_FOREACH(p, &procs, entry)
		if (!p->exited) {
			(void)kill(-p->pid, sig);
			(void)kill(p->pid, sig);
		}
}

/* --- helpers ---------------------------------------------------------- */

static void
proc_start(struct conn *c, const struct req *r)
{
	struct spawn_spec	 sp;
	struct proc		*p = NULL, *old;
	json_t			*body, *v;
	const char		*id = NULL;
	char			 made[16];

	if ((body = http_body_json(c, r)) == NULL)
		return;
	if ((v = json_object_get(body, "id")) != NULL && (!json_is_string(v) ||
	    (id = json_string_value(v))[0] == '\0' || strlen(id) > 64 ||
	    strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_.-") != strlen(id))) {
		json_decref(body);
		http_error(c, 400, "bad_request", "id: [A-Za-z0-9_.-]{1,64}");
		return;
	}
	if (spawn_spec(c, body, &sp) == -1)
		return;
	while (id == NULL) {		/* one made up: p1, p2, … */
		(void)snprintf(made, sizeof(made), "p%u", ++next_id);
		if (proc_find(made) == NULL)
			id = made;
	}
	if ((old = proc_find(id)) != NULL && old->running) {
		http_error(c, 409, "conflict", "%s is running", id);
		goto out;
	}
	if (old != NULL)
		proc_free(old);		/* an exited one is replaced */
	if (nprocs >= MAX_PROCS) {
		http_error(c, 409, "conflict", "%d processes are kept; DELETE "
		    "some", MAX_PROCS);
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		http_error(c, 500, "internal", "out of memory");
		goto out;
	}
	(void)snprintf(p->id, sizeof(p->id), "%s", id);
	LIST_INIT(&p->followers);
	LIST_INIT(&p->waiters);
	if ((p->pid = spawn_piped(&sp, -1, p->src, p, proc_read)) == -1) {
		http_error(c, 500, "internal", "cannot start: %s",
		    strerror(errno));
		free(p);
		goto out;
	}
	p->cmd = json_incref(json_object_get(sp.body, "cmd"));
	p->running = true;
	p->started_ms = loop_wall_ms();
	init_child_watch(p->pid, proc_exited, p);
	LIST_INSERT_HEAD(&procs, p, entry);
	nprocs++;
	http_json(c, 201, json_pack("{s:s,s:i,s:s,s:I}", "id", p->id, "pid",
	    (int)p->pid, "status", "running", "started_ms",
	    (json_int_t)p->started_ms));
out:
	spawn_spec_free(&sp);
}

static void
proc_list(struct conn *c)
{
	struct proc	*p;
	json_t		*a = json_array();

	LIST_FOREACH(p, &procs, entry)
		json_array_append_new(a, proc_json(p));
	http_json(c, 200, json_pack("{s:o}", "processes", a));
}

static json_t *
proc_json(struct proc *p)
{
	json_t	*j;

	j = json_pack("{s:s,s:i,s:O,s:s,s:n,s:I,s:n}", "id", p->id, "pid",
	    (int)p->pid, "cmd", p->cmd, "status", p->running ? "running" :
	    "exited", "exit_code", "started_ms", (json_int_t)p->started_ms,
	    "ended_ms");
	if (j != NULL && !p->running) {
		exec_exit_fields(j, p->status);
		json_object_set_new(j, "ended_ms", json_integer(p->ended_ms));
	}
	return j;
}

static struct proc *
proc_find(const char *id)
{
	struct proc	*p;

	LIST_FOREACH(p, &procs, entry)
		if (!strcmp(p->id, id))
			return p;
	return NULL;
}

/* SIGTERM (or ?signal=…) to the group, SIGKILL after 3 s; answer at end. */
static void
proc_delete(struct conn *c, struct proc *p)
{
	static const struct {
		const char	*name;
		int		 sig;
	} sigs[] = { { "TERM", SIGTERM }, { "KILL", SIGKILL },
	    { "INT", SIGINT }, { "HUP", SIGHUP } };
	const char	*name = req_query(c, "signal", 0);
	size_t		 i;
	int		 sig = SIGTERM;
	json_t		*j;

	if (name != NULL) {
		if (!strncmp(name, "SIG", 3))
			name += 3;
		for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			if (!strcmp(name, sigs[i].name))
				break;
		if (i == sizeof(sigs) / sizeof(sigs[0])) {
			http_error(c, 400, "bad_request",
			    "signal: TERM, KILL, INT or HUP");
			return;
		}
		sig = sigs[i].sig;
	}
	if (!p->running) {
		j = json_pack("{s:s,s:s}", "id", p->id, "status", "exited");
		exec_exit_fields(j, p->status);
		proc_free(p);		/* exited records are forgotten */
		http_json(c, 200, j);
		return;
	}
	if (pwait_exit(c, p) == -1)
		return;
	if (!p->exited) {
		(void)kill(-p->pid, sig);
		(void)kill(p->pid, sig);
		if (sig != SIGKILL && p->kill_timer == 0)
			p->kill_timer = loop_timer_add(KILL_MS, proc_hardkill,
			    p);
	}
}

static void
proc_hardkill(void *arg)
{
	struct proc	*p = arg;

	p->kill_timer = 0;
	(void)kill(-p->pid, SIGKILL);
	(void)kill(p->pid, SIGKILL);
}

static void
proc_read(void *arg, uint32_t events)
{
	struct spawn_src	*s = arg;
	struct proc		*p = s->owner;
	char			 buf[EXEC_READ_CHUNK];
	ssize_t			 n;

	(void)events;
	n = read(s->fd, buf, sizeof(buf));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		spawn_src_close(s);
		proc_check(p);
		return;
	}
	if (plog_put(p, s->idx, buf, (size_t)n) == -1)
		return;
	pwait_output(p);
}

static void
proc_exited(void *arg, pid_t pid, int st)
{
	struct proc	*p = arg;

	(void)pid;
	p->exited = true;
	p->status = st;
	p->ended_ms = loop_wall_ms();
	loop_timer_cancel(p->kill_timer);
	p->kill_timer = 0;
	if (p->src[0].fd != -1 || p->src[1].fd != -1)
		p->grace = loop_timer_add(EXEC_GRACE_MS, proc_grace, p);
	proc_check(p);
}

static void
proc_check(struct proc *p)
{
	if (p->running && p->exited && p->src[0].fd == -1 &&
	    p->src[1].fd == -1)
		proc_finish(p);
}

/* Output held open by what it started: the logs keep it, it has ended. */
static void
proc_grace(void *arg)
{
	struct proc	*p = arg;

	p->grace = 0;
	if (p->running)
		proc_finish(p);
}

static void
proc_finish(struct proc *p)
{
	p->running = false;
	loop_timer_cancel(p->grace);
	p->grace = 0;
	plog_ended(p);
	if (pwait_ended(p))
		proc_free(p);
}

/* Only once nothing waits on it (a follower ends with it). */
static void
proc_free(struct proc *p)
{
	plog_drop(p);
	pwait_drop(p);
	if (!p->exited)
		init_child_unwatch(p->pid);
	spawn_src_close(&p->src[0]);
	spawn_src_close(&p->src[1]);
	loop_timer_cancel(p->grace);
	loop_timer_cancel(p->kill_timer);
	free(p->ring[0].buf);
	free(p->ring[1].buf);
	json_decref(p->cmd);
	LIST_REMOVE(p, entry);
	nprocs--;
	free(p);
}
