/* SPDX-License-Identifier: MIT */
/* test_backup.c: backup IDs and which backups retention deletes. */
#include <stdlib.h>
#include <string.h>

#include "pincer.h"
#include "tap.h"

static void	test_ids(void);
static void	test_prune(void);
static void	test_prune_leftovers(void);
static void	test_prune_keep_id(void);
static size_t	set(struct backup_entry *, const char *);
static const char *drops(const struct backup_entry *, size_t);

int
main(void)
{
	test_ids();
	test_prune();
	test_prune_leftovers();
	test_prune_keep_id();
	return done_testing();
}

static void
test_ids(void)
{
	ok(backup_id_valid("20261202T031500.123Z-1a2b3c"), "an ID");
	ok(!backup_id_valid("20261202T031500.123Z-1a2b3"), "one short");
	ok(!backup_id_valid("20261202T031500.123Z-1a2b3cd"), "one long");
	ok(!backup_id_valid("20261202T031500.123Z-1A2B3C"), "upper case hex");
	ok(!backup_id_valid("20261202T031500Z-1a2b3c"), "no milliseconds");
	ok(!backup_id_valid("../../../etc/passwd"), "a path");
	ok(!backup_id_valid(""), "empty");
	is_int(backup_id_ms("19700101T000001.250Z-000000"), 1250,
	    "its time in unix ms");
	is_int(backup_id_ms("20261202T031500.123Z-1a2b3c"),
	    1796181300123LL, "a time in 2026");
	is_int(backup_id_ms("latest"), -1, "not an ID: -1");
}

/*
 * spec: one letter per ID, oldest first: B a complete backup, D a copy
 * without its manifest (an upload cut short), M a manifest without its
 * copy. IDs are made from the position.
 */
static size_t
set(struct backup_entry *e, const char *spec)
{
	size_t	 i;

	for (i = 0; spec[i] != '\0'; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		snprintf(e[i].id, sizeof(e[i].id),
		    "20260101T0000%02d.000Z-abcdef", (int)(i % 60));
		e[i].manifest = spec[i] != 'D';
		e[i].size = spec[i] == 'M' ? -1 : 4096;
	}
	return i;
}

/* "x" for each entry marked, "." for each kept. */
static const char *
drops(const struct backup_entry *e, size_t n)
{
	static char	 out[64];
	size_t		 i;

	for (i = 0; i < n && i < sizeof(out) - 1; i++)
		out[i] = e[i].drop ? 'x' : '.';
	out[i] = '\0';
	return out;
}

static void
test_prune(void)
{
	struct backup_entry	 e[16];
	size_t			 n;

	n = set(e, "BBB");
	is_int(backup_prune(e, n, 2, NULL), 1, "keep 2 of 3: one goes");
	is_str(drops(e, n), "x..", "… the oldest");
	n = set(e, "BBBBB");
	backup_prune(e, n, 14, NULL);
	is_str(drops(e, n), ".....", "fewer than keep: none goes");
	n = set(e, "BBBBB");
	backup_prune(e, n, 1, NULL);
	is_str(drops(e, n), "xxxx.", "keep 1: the newest stays");
	n = set(e, "BBB");
	backup_prune(e, n, 0, NULL);
	is_str(drops(e, n), "xx.", "keep 0 is taken as 1: never none left");
	n = set(e, "B");
	is_int(backup_prune(e, n, 1, NULL), 0, "the only backup stays");
	is_int(backup_prune(e, 0, 1, NULL), 0, "nothing at all: nothing");
}

static void
test_prune_leftovers(void)
{
	struct backup_entry	 e[16];
	size_t			 n;

	n = set(e, "DBDB");
	backup_prune(e, n, 5, NULL);
	is_str(drops(e, n), "x.x.", "cut uploads older than a backup go");
	n = set(e, "BMB");
	backup_prune(e, n, 5, NULL);
	is_str(drops(e, n), ".x.", "a manifest without its copy goes");
	n = set(e, "BBD");
	backup_prune(e, n, 1, NULL);
	is_str(drops(e, n), "x..", "an upload newer than every backup stays "
	    "(it may be under way)");
	n = set(e, "DDM");
	is_int(backup_prune(e, n, 1, NULL), 0, "no complete backup: nothing "
	    "is touched");
	n = set(e, "BDBDB");
	backup_prune(e, n, 2, NULL);
	is_str(drops(e, n), "xx.x.", "keep 2 among leftovers");
}

static void
test_prune_keep_id(void)
{
	struct backup_entry	 e[16];
	size_t			 n;

	/* A clock set back: the backup just made has the oldest ID. */
	n = set(e, "BBB");
	backup_prune(e, n, 1, e[0].id);
	is_str(drops(e, n), ".x.", "the one just made is kept even when it "
	    "looks oldest");
	n = set(e, "BBB");
	backup_prune(e, n, 2, e[2].id);
	is_str(drops(e, n), "x..", "keep_id the newest: as without it");
}
