/* SPDX-License-Identifier: MIT */
/* main.c: the `pincer` command line; run as `pincerd` it serves. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pincer.h"

static int	cmd_serve(const struct config_overrides *, int, char **);
static int	cmd_config(const struct config_overrides *, int, char **);
static int	cmd_doctor(const struct config_overrides *, int, char **);
static int	cmd_version(const struct config_overrides *, int, char **);
static int	cmd_help(const struct config_overrides *, int, char **);
static void	usage(FILE *);

/* main's argv: a restart execs pincerd again with it. */
static char	**main_argv;

static const struct command {
	const char	*name;
	int		(*run)(const struct config_overrides *, int, char **);
	const char	*args;
	const char	*help;
} commands[] = {
	{ "serve", cmd_serve, "", "run the gateway in the foreground "
	  "(also: pincerd)" },
	{ "config", cmd_config, "check|options", "check: validate the "
	  "config and exit; options: list every option" },
	{ "doctor", cmd_doctor, "", "check this machine and the config, "
	  "and say how to fix what is wrong" },
	{ "user", cli_user, "add|list|passwd|disable|enable", "manage "
	  "people: add NAME --role owner|admin|member --password-stdin" },
	{ "token", cli_token, "create|list|revoke", "API tokens: create "
	  "--user NAME --scope llm,read --name LABEL [--ttl 30d] (scopes: "
	  "read, llm, sandbox, admin, chat, browser)" },
	{ "secret", cli_secret, "set|list|rm", "provider keys and bot tokens, "
	  "encrypted in the store: set NAME (value on stdin)" },
	{ "pairing", cli_pairing, "list|approve|deny", "who may talk on a chat "
	  "channel: approve CHANNEL CODE (the code a stranger was sent)" },
	{ "sandbox", cli_sandbox_cmd, "list|create|exec|shell|stop|rm|sync|"
	  "snapshot|snapshots|restore|fork", "the agent's computers, "
	  "through the running pincerd: exec NAME -- CMD..., shell NAME, "
	  "snapshot NAME, restore ID [NAME] [--new], fork ID NAME..." },
	{ "objstore", cli_objstore, "ls|put|get|head|rm|check", "the object "
	  "store directly: check proves the settings, ls [PREFIX] lists" },
	{ "backup", cli_backup, "now|list|restore", "pincer.db in the object "
	  "store: now, list, restore [ID|latest] [--force] (pincerd "
	  "stopped)" },
	{ "version", cmd_version, "", "print the version" },
	{ "help", cmd_help, "", "print this help" },
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

int
main(int argc, char **argv)
{
	struct config_overrides	 ov = { 0 };
	const char		*self = strrchr(argv[0], '/');
	const char		*cmd = NULL;
	char			**rest;
	int			 i, nrest = 0;
	size_t			 k;

	main_argv = argv;
	self = self != NULL ? self + 1 : argv[0];
	if ((rest = calloc((size_t)argc + 1, sizeof(*rest))) == NULL)
		return 1;
	/* Global flags may come before or after the subcommand. */
	for (i = 1; i < argc; i++) {
		const char	**slot = NULL;

		if (!strcmp(argv[i], "--config"))
			slot = &ov.config_file;
		else if (!strcmp(argv[i], "--state"))
			slot = &ov.state_dir;
		else if (!strcmp(argv[i], "--listen"))
			slot = &ov.listen;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			cmd = "help";
		else if (!strcmp(argv[i], "--version"))
			cmd = "version";
		else if (argv[i][0] == '-' && argv[i][1] == '-' &&
		    (cmd == NULL || (strcmp(cmd, "user") &&
		    strcmp(cmd, "token") && strcmp(cmd, "sandbox") &&
		    strcmp(cmd, "backup")))) {
			/* Only user, token, sandbox and backup take flags
			 * of their own. */
			fprintf(stderr, "pincer: unknown flag %s (see "
			    "pincer --help)\n", argv[i]);
			free(rest);
			return 2;
		} else if (cmd == NULL)
			cmd = argv[i];
		else
			rest[nrest++] = argv[i];
		if (slot != NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "pincer: %s needs a value\n",
				    argv[i]);
				free(rest);
				return 2;
			}
			*slot = argv[++i];
		}
	}
	if (!strcmp(self, "pincerd") && (cmd == NULL || strcmp(cmd, "help")))
		cmd = cmd != NULL && !strcmp(cmd, "version") ? cmd : "serve";
	if (cmd == NULL) {
		usage(stderr);
		free(rest);
		return 2;
	}
	for (k = 0; k < NCOMMANDS; k++)
		if (!strcmp(commands[k].name, cmd)) {
			i = commands[k].run(&ov, nrest, rest);
			free(rest);
			return i;
		}
	fprintf(stderr, "pincer: unknown command \"%s\" (see pincer --help)\n",
	    cmd);
	free(rest);
	return 2;
}

static int
cmd_serve(const struct config_overrides *ov, int argc, char **argv)
{
	int	 rc;

	if (argc > 0) {
		fprintf(stderr, "pincer serve: unexpected argument %s\n",
		    argv[0]);
		return 2;
	}
	if ((rc = daemon_serve(ov)) != DAEMON_RESTART)
		return rc;
	/*
	 * Everything was stopped and closed as for SIGTERM; what is left
	 * open (stdio aside) must not leak into the new pincerd.
	 */
	fflush(NULL);
	close_range(3, ~0U, 0);
	execv("/proc/self/exe", main_argv);
	fprintf(stderr, "pincerd: cannot start again: %s\n", strerror(errno));
	return 1;
}

static int
cmd_config(const struct config_overrides *ov, int argc, char **argv)
{
	struct config	*c;
	char		*err = NULL;

	if (argc == 1 && !strcmp(argv[0], "options")) {
		config_print_options();
		return 0;
	}
	if (argc != 1 || strcmp(argv[0], "check") != 0) {
		fprintf(stderr, "usage: pincer config check|options\n");
		return 2;
	}
	if ((c = config_load(ov, &err)) == NULL) {
		fprintf(stderr, "%s: not valid:\n%s", config_path(ov),
		    err != NULL ? err : "out of memory\n");
		free(err);
		return 1;
	}
	printf("%s: OK\n", config_path(ov));
	config_free(c);
	return 0;
}

static int
cmd_doctor(const struct config_overrides *ov, int argc, char **argv)
{
	return doctor_run(ov);
}

static int
cmd_version(const struct config_overrides *ov, int argc, char **argv)
{
	printf("pincer %s\n", pincer_version);
	return 0;
}

static int
cmd_help(const struct config_overrides *ov, int argc, char **argv)
{
	usage(stdout);
	return 0;
}

static void
usage(FILE *f)
{
	size_t	 k;

	fprintf(f, "usage: pincer [--config FILE] [--state DIR] "
	    "[--listen ADDR:PORT] COMMAND\n\ncommands:\n");
	for (k = 0; k < NCOMMANDS; k++)
		fprintf(f, "  %-8s %-14s %s\n", commands[k].name,
		    commands[k].args, commands[k].help);
	fprintf(f, "\nflags (each also from the environment):\n"
	    "  --config FILE       PINCER_CONFIG  (default "
	    "/etc/pincer/pincer.json)\n"
	    "  --state DIR         PINCER_STATE   (default /var/lib/pincer)\n"
	    "  --listen ADDR:PORT  PINCER_LISTEN  (default 127.0.0.1:8787)\n"
	    "\nEvery config option can be set as PINCER_<NAME>; see "
	    "`pincer config options`.\n");
}
