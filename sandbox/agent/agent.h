/* SPDX-License-Identifier: MIT */
/*
 * agent.h: pincer-agent, the agent runtime that runs one turn per run
 * inside a sandbox (sandbox/agent/README.md has the turn protocol).
 */
#ifndef PINCER_AGENT_H
#define PINCER_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "../../gateway/pincer.h"	/* buf, sse */

/* What a turn runs with: the input object, then the environment. */
struct agent {
	const char	*llm_url;	/* http://127.0.0.1:8080/v1/chat/… */
	const char	*model;
	const char	*data_dir;	/* /data: history, memory */
	const char	*work_dir;	/* /workspace: the tools' folder */
	const char	*skills_dir;	/* the bundled skills (read-only) */
	const char	*conversation;
	int		 max_steps;	/* LLM calls in a turn */
	int		 tool_timeout_s;
	long		 llm_timeout_s;
	long		 context_tokens;	/* the history's budget */
};

/* Events, one JSON line each on stdout (flushed: the dispatcher reads
 * them as they come). */
void	 emit(const char *type, json_t *fields);	/* fields: taken */
extern bool emit_quiet;		/* a silent turn: events are dropped */
void	 emit_error(const char *code, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* lhttp.c: HTTP/1.1 to the sandbox's loopback LLM port, nothing else. */
typedef int (*lhttp_body_fn)(void *, const char *, size_t);
int	 lhttp_post(const char *url, const char *body, size_t len,
	    long timeout_s, int *status, char *ctype, size_t ctypesz,
	    lhttp_body_fn, void *, char *why, size_t whysz);

/* cdpc.c: a CDP client to the sandbox's 127.0.0.1:9222 */
struct cdpc;
/* An event while waiting; true: the wait is over (cdpc_wait). */
typedef bool (*cdpc_event_fn)(void *, const char *method, json_t *params);
json_t	*cdpc_http(const char *method, const char *path, int *status,
	    char *why, size_t whysz);
struct cdpc *cdpc_open(const char *path, char *why, size_t whysz);
void	 cdpc_close(struct cdpc *);
const char *cdpc_error(const struct cdpc *);
json_t	*cdpc_call(struct cdpc *, const char *method, json_t *params,
	    long secs, cdpc_event_fn, void *);
bool	 cdpc_wait(struct cdpc *, long secs, cdpc_event_fn, void *);

/* browser.c: the browser tools (the tools table's calls) */
bool	 browser_navigate(const struct agent *, json_t *, struct buf *);
bool	 browser_snapshot(const struct agent *, json_t *, struct buf *);
bool	 browser_click(const struct agent *, json_t *, struct buf *);
bool	 browser_type(const struct agent *, json_t *, struct buf *);
bool	 browser_screenshot(const struct agent *, json_t *, struct buf *);
bool	 browser_evaluate(const struct agent *, json_t *, struct buf *);
bool	 browser_tabs(const struct agent *, json_t *, struct buf *);

/* fetch.c: the web_fetch tool (curl through the egress proxy) */
bool	 fetch_url(const struct agent *, json_t *, struct buf *);

/* text.c: outside text made fit for the model */
void	 text_utf8(struct buf *, const char *, size_t, bool latin1);
void	 text_fix(char *, size_t);
size_t	 text_cut(const char *, size_t, size_t max);
void	 text_html(struct buf *, const char *, size_t);

/* tools.c */
void	 tools_untrusted(struct buf *, const char *source, const char *,
	    size_t);
int	 agent_slurp(const char *, long max, struct buf *, char *, size_t);
json_t	*tools_schema(void);			/* the "tools" array */
/* Runs one tool: a result text for the model (always set), ok or not. */
bool	 tools_run(const struct agent *, const char *name, json_t *args,
	    char **result);

/* history.c: the conversation so far, in $data/agent.db. */
struct sqlite3;
struct sqlite3 *agent_db(const struct agent *, char *why, size_t whysz);
int	 history_load(const struct agent *, json_t *messages, char *why,
	    size_t whysz);
int	 history_append(const struct agent *, json_t *messages, size_t from,
	    char *why, size_t whysz);
int	 history_replace(const struct agent *, const char *summary,
	    json_t *messages, size_t keep_from, char *why, size_t whysz);

/* memory.c: MEMORY.md, memory/YYYY-MM-DD.md and the bootstrap files
 * under the data folder (OpenClaw's layout). */
void	 memory_context(const struct agent *, struct buf *);
bool	 memory_write(const struct agent *, json_t *args, struct buf *out);
bool	 memory_search(const struct agent *, json_t *args, struct buf *out);

/* skills.c: the skills the agent may use, listed in its prompt. */
void	 skills_context(const struct agent *, struct buf *);
int	 skills_print(const struct agent *);

/* turn.c */
int	 turn_run(struct agent *, json_t *input);

#endif
