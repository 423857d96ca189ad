/* SPDX-License-Identifier: MIT */
/*
 * cli_objstore.c: `pincer objstore ls|put|get|head|rm|check`, on the
 * configured object store directly (no pincerd needed): to check a bucket's
 * settings before trusting it with the agent's memory, and to look at what
 * is kept there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pincer.h"

static int	 print_one(const char *, const struct os_meta *, void *);
static int	 spool(int, int);
static int	 check(struct objstore *);

static const char usage_text[] =
    "usage: pincer objstore ls [PREFIX] | put KEY FILE | get KEY FILE |\n"
    "       head KEY | rm KEY | check\n"
    "FILE - is stdin or stdout. check writes, reads, lists and removes a\n"
    "small object under check/ to prove the settings work.\n";

int
cli_objstore(const struct config_overrides *ov, int argc, char **argv)
{
	const char	*sub = argc > 0 ? argv[0] : "";
	struct objstore	*os;
	struct os_meta	 m;
	char		 err[OS_ERR];
	int		 rc, fd = -1, tmp = -1;

	if (!((!strcmp(sub, "ls") && argc <= 2) ||
	    ((!strcmp(sub, "put") || !strcmp(sub, "get")) && argc == 3) ||
	    ((!strcmp(sub, "head") || !strcmp(sub, "rm")) && argc == 2) ||
	    (!strcmp(sub, "check") && argc == 1))) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (cli_store_open(ov) == -1)
		return 1;
	if ((os = objstore_open(config_current(), err)) == NULL) {
		fprintf(stderr, "pincer objstore: %s\n", *err != '\0' ? err :
		    "objstore.backend is off");
		cli_store_close();
		return 1;
	}
	if (!strcmp(sub, "ls"))
		rc = objstore_list(os, argc == 2 ? argv[1] : "", print_one,
		    NULL, err);
	else if (!strcmp(sub, "head")) {
		if ((rc = objstore_head(os, argv[1], &m, err)) == OS_OK)
			print_one(argv[1], &m, NULL);
	} else if (!strcmp(sub, "rm"))
		rc = objstore_delete(os, argv[1], err);
	else if (!strcmp(sub, "check"))
		rc = check(os);
	else if (!strcmp(sub, "put")) {
		fd = strcmp(argv[2], "-") ? open(argv[2], O_RDONLY |
		    O_CLOEXEC) : (tmp = spool(STDIN_FILENO, -1));
		if (fd == -1) {
			snprintf(err, sizeof(err), "%s: %s", argv[2],
			    strerror(errno));
			rc = OS_FAIL;
		} else if ((rc = objstore_put(os, argv[1], fd, &m, err)) ==
		    OS_OK)
			print_one(argv[1], &m, NULL);
	} else {
		/* A pipe cannot be rewound for a retry: spool, then copy. */
		fd = strcmp(argv[2], "-") ? open(argv[2], O_RDWR | O_CREAT |
		    O_CLOEXEC, 0600) : (tmp = spool(-1, -1));
		if (fd == -1) {
			snprintf(err, sizeof(err), "%s: %s", argv[2],
			    strerror(errno));
			rc = OS_FAIL;
		} else if ((rc = objstore_get(os, argv[1], fd, &m, err)) ==
		    OS_OK && tmp != -1 && spool(tmp, STDOUT_FILENO) == -1) {
			snprintf(err, sizeof(err), "stdout: %s",
			    strerror(errno));
			rc = OS_FAIL;
		}
	}
	if (fd != -1)
		close(fd);
	if (rc != OS_OK)
		fprintf(stderr, "pincer objstore %s: %s (%s)\n", sub, *err !=
		    '\0' ? err : "failed", os->where);
	objstore_close(os);
	cli_store_close();
	return rc == OS_OK ? 0 : rc == OS_NOTFOUND ? 3 : 1;
}

static int
print_one(const char *key, const struct os_meta *m, void *arg)
{
	char		 when[32];
	time_t		 t = (time_t)m->mtime;
	struct tm	 tm;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
	    gmtime_r(&t, &tm));
	printf("%s\t%lld\t%s\t%s\n", key, m->size, when, *m->sha256 != '\0' ?
	    m->sha256 : "-");
	return 0;
}

/*
 * from -1: a new empty temporary file; to -1: from copied into a new
 * temporary file, rewound; else from (rewound) copied to to.
 */
static int
spool(int from, int to)
{
	char	 b[1 << 16];
	ssize_t	 n, w, k;
	int	 t = to;

	if (to == -1 && (t = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC,
	    0600)) == -1)
		return -1;
	if (from == -1)
		return t;
	if (to != -1 && lseek(from, 0, SEEK_SET) == -1)
		return -1;
	while ((n = read(from, b, sizeof(b))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		for (w = 0; w < n; w += k)
			if ((k = write(t, b + w, (size_t)(n - w))) < 0)
				goto fail;
	}
	if (to == -1 && lseek(t, 0, SEEK_SET) == -1)
		goto fail;
	return to == -1 ? t : 0;
fail:
	if (to == -1)
		close(t);
	return -1;
}

static int
count_one(const char *key, const struct os_meta *m, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int
check(struct objstore *os)
{
	char		 key[64], err[OS_ERR];
	struct buf	 b;
	struct os_meta	 m;
	int		 n = 0, rc;

	snprintf(key, sizeof(key), "check/%ld-%d", (long)time(NULL),
	    (int)getpid());
	buf_init(&b, 4096);
	if ((rc = objstore_put_mem(os, key, "pincer objstore check\n", 22, &m,
	    err)) != OS_OK)
		fprintf(stderr, "put %s: %s\n", key, err);
	else if ((rc = objstore_get_mem(os, key, &b, &m, err)) != OS_OK)
		fprintf(stderr, "get %s: %s\n", key, err);
	else if (b.len != 22 || memcmp(b.data, "pincer objstore check\n", 22))
		fprintf(stderr, "get %s: other bytes came back\n", key), rc = 1;
	else if ((rc = objstore_list(os, key, count_one, &n, err)) != OS_OK)
		fprintf(stderr, "list %s: %s\n", key, err);
	else if (n != 1)
		fprintf(stderr, "list %s: %d keys, not 1\n", key, n), rc = 1;
	else if ((rc = objstore_delete(os, key, err)) != OS_OK)
		fprintf(stderr, "rm %s: %s\n", key, err);
	else if ((rc = objstore_head(os, key, &m, err)) != OS_NOTFOUND)
		fprintf(stderr, "head %s: still there after rm\n", key), rc = 1;
	else {
		printf("objstore %s: put, get, list and rm work\n", os->where);
		rc = OS_OK;
	}
	buf_free(&b);
	return rc == OS_OK ? OS_OK : OS_FAIL;
}
