/* SPDX-License-Identifier: MIT */
/*
 * replay.c: without libFuzzer, a fuzz target's main(): runs every file in
 * the folders named on the command line through LLVMFuzzerTestOneInput,
 * one TAP test point per file, so that the corpus is replayed by make check.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	replay_dir(const char *, int *);
static int	replay_file(const char *, const char *, int *);
static int	skip_dots(const struct dirent *);

int
main(int argc, char *argv[])
{
	int	 i, n = 0, failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s corpus-folder ...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++)
		failed += replay_dir(argv[i], &n);
	printf("1..%d\n", n);
	return failed > 0;
}

/* Files in name order, so that test numbers are stable between runs. */
static int
replay_dir(const char *dir, int *n)
{
	struct dirent	**names;
	int		 i, count, failed = 0;

	if ((count = scandir(dir, &names, skip_dots, alphasort)) == -1) {
		printf("not ok %d - %s: %s\n", ++*n, dir, strerror(errno));
		return 1;
	}
	if (count == 0) {
		printf("not ok %d - %s: no inputs\n", ++*n, dir);
		failed = 1;
	}
	for (i = 0; i < count; i++) {
		failed += replay_file(dir, names[i]->d_name, n);
		free(names[i]);
	}
	free(names);
	return failed;
}

/* A crash ends the program; getting back here is the pass. */
static int
replay_file(const char *dir, const char *name, int *n)
{
	char		 path[4096];
	struct stat	 st;
	FILE		*f;
	uint8_t		*data;
	size_t		 len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) == -1 ||
	    !S_ISREG(st.st_mode)) {
		printf("not ok %d - %s: cannot read\n", ++*n, path);
		if (f != NULL)
			fclose(f);
		return 1;
	}
	len = (size_t)st.st_size;
	/* Exactly the input's size, so the sanitizers see any over-read. */
	if ((data = malloc(len > 0 ? len : 1)) == NULL ||
	    fread(data, 1, len, f) != len) {
		printf("not ok %d - %s: cannot read\n", ++*n, path);
		free(data);
		fclose(f);
		return 1;
	}
	fclose(f);
	fflush(stdout);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	printf("ok %d - %s\n", ++*n, name);
	return 0;
}

static int
skip_dots(const struct dirent *d)
{
	return d->d_name[0] != '.';
}
