/* SPDX-License-Identifier: MIT */
/*
 * cli_secret.c: `pincer secret set NAME | list | rm NAME`, on the store
 * directly. A value comes from stdin (typed without echo at a terminal),
 * never from the command line, where ps and shell history would keep it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "pincer.h"

static ssize_t	 read_value(const char *, char *, size_t);

int
cli_secret(const struct config_overrides *ov, int argc, char **argv)
{
	const char	*sub = argc > 0 ? argv[0] : "";
	char		*val, *err = NULL, *s;
	json_t		*list;
	ssize_t		 n;
	int		 rc = 1;

	if (!strcmp(sub, "list") && argc == 1) {
		if (cli_store_open(ov) == -1)
			return 1;
		list = secrets_list();
		s = json_dumps(list, JSON_INDENT(2));
		printf("%s\n", s != NULL ? s : "[]");
		free(s);
		json_decref(list);
		cli_store_close();
		return 0;
	}
	if (argc != 2 || (strcmp(sub, "set") && strcmp(sub, "rm")) ||
	    !secrets_name_valid(argv[1])) {
		fprintf(stderr, "usage: pincer secret set NAME (the value on "
		    "stdin) | list | rm NAME\n"
		    "NAME: 1 to 64 of A-Z, a-z, 0-9, '_', '.', '-'\n");
		return 2;
	}
	if (!strcmp(sub, "rm")) {
		if (cli_store_open(ov) == -1)
			return 1;
		if (secrets_delete(argv[1]) == -1)
			fprintf(stderr, "pincer secret rm: no such secret\n");
		else {
			audit_add("cli", "", "secret_delete", argv[1], "");
			printf("secret %s removed\n", argv[1]);
			rc = 0;
		}
		cli_store_close();
		return rc;
	}
	if ((val = malloc(SECRETS_MAX + 2)) == NULL)
		return 1;
	if ((n = read_value(argv[1], val, SECRETS_MAX + 2)) > 0 &&
	    cli_store_open(ov) == 0) {
		if (secrets_set(argv[1], val, (size_t)n, &err) == -1)
			fprintf(stderr, "pincer secret set: %s\n", err);
		else {
			/* The audit line names the secret, never its value. */
			audit_add("cli", "", "secret_set", argv[1], "");
			printf("secret %s stored\n", argv[1]);
			rc = 0;
		}
		cli_store_close();
	}
	explicit_bzero(val, SECRETS_MAX + 2);
	free(val);
	free(err);
	return rc;
}

/*
 * All of stdin, less one final newline (what `echo` and a typed line
 * add). At a terminal, one line typed without echo.
 */
static ssize_t
read_value(const char *name, char *val, size_t valsz)
{
	struct termios	 old, quiet;
	bool		 tty = isatty(STDIN_FILENO);
	size_t		 n = 0;

	if (tty) {
		fprintf(stderr, "value of %s (not shown): ", name);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
		if (fgets(val, (int)valsz, stdin) != NULL)
			n = strlen(val);
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fprintf(stderr, "\n");
	} else
		n = fread(val, 1, valsz, stdin);
	if (n >= valsz - 1) {
		fprintf(stderr, "pincer secret set: a value is at most %d "
		    "bytes\n", SECRETS_MAX);
		return -1;
	}
	if (n > 0 && val[n - 1] == '\n')
		n--;
	if (n > 0 && val[n - 1] == '\r')
		n--;
	if (n == 0) {
		fprintf(stderr, "pincer secret set: the value is empty (give "
		    "it on stdin)\n");
		return -1;
	}
	return (ssize_t)n;
}
