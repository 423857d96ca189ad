/* SPDX-License-Identifier: MIT */
/*
 * pincer-agent: the agent runtime. `pincer-agent turn` reads one JSON
 * object on standard input (the message), runs one turn, and writes
 * its events as JSON lines on standard output (sandbox/agent/README.md).
 * It runs inside a sandbox, where 127.0.0.1:8080 is the LLM proxy.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

#define INPUT_MAX	(16L << 20)

static const char usage[] =
	"usage: pincer-agent turn     one agent turn: the message as JSON on "
	"stdin,\n"
	"                             its events as JSON lines on stdout\n"
	"       pincer-agent skills   every skill found, as JSON: eligible or\n"
	"                             why not, enabled or not\n"
	"       pincer-agent --help | --version\n"
	"\n"
	"The message: {\"conversation\": ID, \"text\": TEXT, \"sender\":\n"
	"  NAME, \"model\": ROUTE, \"max_steps\": N, \"tool_timeout_s\": S}\n"
	"  (the last three optional). Environment (defaults in brackets):\n"
	"  PINCER_LLM_URL        [http://127.0.0.1:8080/v1/chat/completions]\n"
	"  PINCER_AGENT_MODEL    [default]   the model or route of the proxy\n"
	"  PINCER_AGENT_DATA     [/data]     history (agent.db) and memory\n"
	"  PINCER_AGENT_WORKDIR  [/workspace] the tools' folder\n"
	"  PINCER_AGENT_SKILLS   [/opt/pincer/skills] the bundled skills\n"
	"  PINCER_AGENT_MAX_STEPS [16]       LLM calls in one turn\n"
	"  PINCER_AGENT_TOOL_TIMEOUT_S [60]  a command's time\n"
	"  PINCER_AGENT_CONTEXT_TOKENS [64000] the history's budget: over 3/4\n"
	"                              of it, older messages are summarized\n"
	"  PINCER_AGENT_CURL     [/usr/bin/curl] web_fetch's curl\n"
	"Exit status: 0 a reply was given, 1 the turn failed (an error event\n"
	"says why), 2 the input or the environment is wrong.\n";

static const char *
env(const char *name, const char *def)
{
	const char	*v = getenv(name);

	return v != NULL && *v != '\0' ? v : def;
}

/* A positive integer from the input, else the environment, else def. */
static int
number(json_t *in, const char *key, const char *var, int def, int max)
{
	long	 v = def;
	char	*end;

	if (json_is_integer(json_object_get(in, key)))
		v = (long)json_integer_value(json_object_get(in, key));
	else if (getenv(var) != NULL) {
		v = strtol(getenv(var), &end, 10);
		if (*end != '\0')
			v = def;
	}
	return v < 1 ? def : v > max ? max : (int)v;
}

bool	 emit_quiet;

void
emit(const char *type, json_t *fields)
{
	json_t	*o;
	char	*s;

	if (emit_quiet) {
		json_decref(fields);
		return;
	}
	o = json_pack("{s:s}", "type", type);
	/* "type" first: a reader can tell the event at a glance. */
	if (fields != NULL)
		json_object_update(o, fields);
	json_decref(fields);
	if ((s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) != NULL) {
		fputs(s, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		free(s);
	}
	json_decref(o);
}

void
emit_error(const char *code, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit("error", json_pack("{s:s, s:s}", "code", code, "message", msg));
}

static json_t *
read_input(void)
{
	json_error_t	 je;
	json_t		*in;
	struct buf	 b;
	char		 chunk[8192];
	ssize_t		 r;

	buf_init(&b, INPUT_MAX);
	while ((r = read(0, chunk, sizeof(chunk))) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 || buf_append(&b, chunk, (size_t)r) == -1) {
			emit_error("input", "the message could not be read "
			    "(over %ld bytes?)", INPUT_MAX);
			buf_free(&b);
			return NULL;
		}
	}
	in = json_loadb(b.data ? b.data : "", b.len, 0, &je);
	buf_free(&b);
	if (!json_is_object(in)) {
		emit_error("input", "the message is not a JSON object%s%s",
		    in == NULL ? ": " : "", in == NULL ? je.text : "");
		json_decref(in);
		return NULL;
	}
	return in;
}

int
main(int argc, char **argv)
{
	struct agent	 ag;
	json_t		*in;
	const char	*conv, *text, *model;
	int		 rc;

	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("pincer-agent %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc == 2 && (!strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "skills")) {
		memset(&ag, 0, sizeof(ag));
		ag.data_dir = env("PINCER_AGENT_DATA", "/data");
		ag.skills_dir = env("PINCER_AGENT_SKILLS",
		    "/opt/pincer/skills");
		return skills_print(&ag);
	}
	if (argc != 2 || strcmp(argv[1], "turn") != 0) {
		fputs(usage, stderr);
		return 2;
	}
	if ((in = read_input()) == NULL)
		return 2;
	conv = json_string_value(json_object_get(in, "conversation"));
	text = json_string_value(json_object_get(in, "text"));
	if (conv == NULL || *conv == '\0' || strlen(conv) > 256 ||
	    text == NULL) {
		emit_error("input", "\"conversation\" (1 to 256 characters) "
		    "and \"text\" (a string) are required");
		json_decref(in);
		return 2;
	}
	model = json_string_value(json_object_get(in, "model"));
	memset(&ag, 0, sizeof(ag));
	ag.llm_url = env("PINCER_LLM_URL",
	    "http://127.0.0.1:8080/v1/chat/completions");
	ag.model = model != NULL && *model ? model : env("PINCER_AGENT_MODEL",
	    "default");
	ag.data_dir = env("PINCER_AGENT_DATA", "/data");
	ag.work_dir = env("PINCER_AGENT_WORKDIR", "/workspace");
	ag.skills_dir = env("PINCER_AGENT_SKILLS", "/opt/pincer/skills");
	ag.conversation = conv;
	ag.max_steps = number(in, "max_steps", "PINCER_AGENT_MAX_STEPS", 16,
	    1000);
	ag.tool_timeout_s = number(in, "tool_timeout_s",
	    "PINCER_AGENT_TOOL_TIMEOUT_S", 60, 86400);
	ag.llm_timeout_s = 600;
	ag.context_tokens = number(in, "context_tokens",
	    "PINCER_AGENT_CONTEXT_TOKENS", 64000, 10000000);
	rc = turn_run(&ag, in);
	json_decref(in);
	return rc;
}
