/* SPDX-License-Identifier: MIT */
/* cli.c: `pincer user …` and `pincer token …`, on the store directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "pincer.h"

static int	read_password(bool, char *, size_t);
static const char *flag(int, char **, const char *);
static bool	has_flag(int, char **, const char *);
static long	parse_ttl(const char *);
static void	print_json(json_t *);

int
cli_user(const struct config_overrides *ov, int argc, char **argv)
{
	const char	*sub = argc > 0 ? argv[0] : "", *name = argc > 1 ?
			    argv[1] : NULL, *rolestr;
	char		 pw[1025], *err = NULL;
	enum role	 role = ROLE_MEMBER;
	int		 rc = 1;

	if (!strcmp(sub, "list") && argc == 1) {
		if (cli_store_open(ov) == -1)
			return 1;
		print_json(users_list());
		cli_store_close();
		return 0;
	}
	if (name == NULL || name[0] == '-' || (strcmp(sub, "add") &&
	    strcmp(sub, "passwd") && strcmp(sub, "disable") &&
	    strcmp(sub, "enable"))) {
		fprintf(stderr, "usage: pincer user add NAME --role "
		    "owner|admin|member [--email E] [--password-stdin]\n"
		    "       pincer user list | passwd NAME [--password-stdin]"
		    " | disable NAME | enable NAME\n");
		return 2;
	}
	rolestr = flag(argc, argv, "--role");
	if (!strcmp(sub, "add") && (rolestr == NULL ||
	    users_role_parse(rolestr, &role) == -1)) {
		fprintf(stderr, "pincer user add: --role owner, admin or "
		    "member\n");
		return 2;
	}
	if ((!strcmp(sub, "add") || !strcmp(sub, "passwd")) &&
	    read_password(has_flag(argc, argv, "--password-stdin"), pw,
	    sizeof(pw)) == -1)
		return 2;
	if (cli_store_open(ov) == -1)
		goto out;
	if (!strcmp(sub, "add")) {
		if (users_name_used_before(name))
			fprintf(stderr, "pincer user add: %s\n",
			    USERS_NAME_USED);
		else if (users_add(name, flag(argc, argv, "--email"), role,
		    pw, &err) == -1)
			fprintf(stderr, "pincer user add: %s\n", err);
		else {
			audit_add("cli", "", "user_add", name, rolestr);
			printf("user %s added (%s)\n", name, rolestr);
			rc = 0;
		}
	} else if (!strcmp(sub, "passwd")) {
		if (users_set_password(name, pw, &err) == -1)
			fprintf(stderr, "pincer user passwd: %s\n", err);
		else {
			users_end_sessions(name);
			audit_add("cli", "", "user_passwd", name, "");
			printf("password of %s changed; their sessions "
			    "ended\n", name);
			rc = 0;
		}
	} else {
		bool off = !strcmp(sub, "disable");

		if (users_set_disabled(name, off) == -1)
			fprintf(stderr, "pincer user %s: no such user\n", sub);
		else {
			audit_add("cli", "", off ? "user_disable" :
			    "user_enable", name, "");
			printf("user %s %sd\n", name, sub);
			rc = 0;
		}
	}
	cli_store_close();
out:
	explicit_bzero(pw, sizeof(pw));
	free(err);
	return rc;
}

int
cli_token(const struct config_overrides *ov, int argc, char **argv)
{
	const char	*sub = argc > 0 ? argv[0] : "";
	const char	*user = flag(argc, argv, "--user");
	const char	*scope = flag(argc, argv, "--scope");
	const char	*label = flag(argc, argv, "--name");
	const char	*ttls = flag(argc, argv, "--ttl");
	struct user	 u;
	char		 tid[32], *tok, *err = NULL;
	long		 ttl;
	int		 rc = 1;

	if (!strcmp(sub, "create")) {
		ttl = parse_ttl(ttls != NULL ? ttls : "never");
		if (user == NULL || scope == NULL || label == NULL ||
		    auth_scopes_check(scope) == -1 || ttl < 0) {
			fprintf(stderr, "usage: pincer token create --user NAME "
			    "--scope admin|llm|sandbox|read[,…] --name LABEL "
			    "[--ttl 30d|12h|90m|never]\n");
			return 2;
		}
		if (cli_store_open(ov) == -1)
			return 1;
		if (users_find(user, &u) == -1)
			fprintf(stderr, "pincer token create: no such user "
			    "%s\n", user);
		else if ((auth_scopes_parse(scope) & auth_role_scopes(u.role))
		    != auth_scopes_parse(scope))
			fprintf(stderr, "pincer token create: a %s cannot "
			    "hold the admin scope\n", users_role_name(u.role));
		else if ((tok = tokens_create(u.id, label,
		    auth_scopes_parse(scope), ttl, tid, sizeof(tid), &err)) ==
		    NULL)
			fprintf(stderr, "pincer token create: %s\n", err);
		else {
			audit_add("cli", "", "token_create", tid, scope);
			/* The only time the token is shown: stdout alone. */
			printf("%s\n", tok);
			fprintf(stderr, "token %s created for %s (%s); it is "
			    "shown once\n", tid, user, scope);
			explicit_bzero(tok, strlen(tok));
			free(tok);
			rc = 0;
		}
	} else if (!strcmp(sub, "list")) {
		if (cli_store_open(ov) == -1)
			return 1;
		if (user != NULL && users_find(user, &u) == -1)
			fprintf(stderr, "pincer token list: no such user\n");
		else {
			print_json(tokens_list(user != NULL ? u.id : 0));
			rc = 0;
		}
	} else if (!strcmp(sub, "revoke") && argc == 2) {
		if (cli_store_open(ov) == -1)
			return 1;
		if (tokens_revoke(argv[1], 0) == -1)
			fprintf(stderr, "pincer token revoke: no such live "
			    "token\n");
		else {
			audit_add("cli", "", "token_revoke", argv[1], "");
			printf("token %s revoked\n", argv[1]);
			rc = 0;
		}
	} else {
		fprintf(stderr, "usage: pincer token create|list|revoke "
		    "(see pincer --help)\n");
		return 2;
	}
	cli_store_close();
	free(err);
	return rc;
}

/*
 * The store (and the secrets key) for a command that works on them
 * directly; shared by the user, token and secret commands.
 */
int
cli_store_open(const struct config_overrides *ov)
{
	struct config	*c;
	char		*err = NULL, path[4096];

	if ((c = config_load(ov, &err)) == NULL) {
		fprintf(stderr, "%s: not valid:\n%s", config_path(ov),
		    err != NULL ? err : "out of memory\n");
		free(err);
		return -1;
	}
	config_publish(c);
	log_setup(LOG_WARN, LOG_LOGFMT);
	snprintf(path, sizeof(path), "%s/pincer.db", c->state_dir);
	if (access(c->state_dir, W_OK) == -1 ||
	    store_open(path, c->busy_timeout_ms, &err) == -1 ||
	    secrets_init(c->state_dir) == -1) {
		fprintf(stderr, "cannot open %s: %s\n", path,
		    err != NULL ? err : "the state folder is not writable");
		free(err);
		config_release_all();
		return -1;
	}
	return 0;
}

/* After a change: a running pincerd forgets what it had verified. */
void
cli_store_close(void)
{
	const struct config	*c = config_current();

	if (c != NULL)
		auth_notify_daemon(c->state_dir);
	secrets_shutdown();
	store_close();
	config_release_all();
}

/* --password-stdin: one line from stdin; else a prompt without echo. */
static int
read_password(bool from_stdin, char *pw, size_t pwsz)
{
	struct termios	 old, quiet;
	char		 again[1025];
	size_t		 n;
	bool		 tty = isatty(STDIN_FILENO);

	if (!from_stdin && !tty) {
		fprintf(stderr, "pincer: give the password on stdin with "
		    "--password-stdin\n");
		return -1;
	}
	if (!from_stdin) {
		fprintf(stderr, "password: ");
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	if (fgets(pw, (int)pwsz, stdin) == NULL)
		pw[0] = '\0';
	if (!from_stdin) {
		fprintf(stderr, "\nagain: ");
		if (fgets(again, sizeof(again), stdin) == NULL)
			again[0] = '\0';
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fprintf(stderr, "\n");
		if (strcmp(pw, again) != 0) {
			explicit_bzero(again, sizeof(again));
			fprintf(stderr, "pincer: the passwords differ\n");
			return -1;
		}
		explicit_bzero(again, sizeof(again));
	}
	n = strcspn(pw, "\r\n");
	pw[n] = '\0';
	if (n < 8) {
		fprintf(stderr, "pincer: a password has at least 8 characters\n");
		return -1;
	}
	return 0;
}

static const char *
flag(int argc, char **argv, const char *name)
{
	int	 i;

	for (i = 0; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return NULL;
}

static bool
has_flag(int argc, char **argv, const char *name)
{
	int	 i;

	for (i = 0; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

/* "30d", "12h", "90m", "3600s", "3600" or "never" (0); -1 if bad. */
static long
parse_ttl(const char *s)
{
	char	*end;
	long	 n;

	if (!strcmp(s, "never"))
		return 0;
	n = strtol(s, &end, 10);
	if (end == s || n <= 0 || n > 3650L * 86400)
		return -1;
	switch (*end) {
	case 'd':
		n *= 86400;
		break;
	case 'h':
		n *= 3600;
		break;
	case 'm':
		n *= 60;
		break;
	case 's':
	case '\0':
		break;
	default:
		return -1;
	}
	return end[*end != '\0'] == '\0' ? n : -1;
}

static void
print_json(json_t *j)
{
	char	*s = json_dumps(j, JSON_INDENT(2));

	if (s != NULL)
		printf("%s\n", s);
	free(s);
	json_decref(j);
}
