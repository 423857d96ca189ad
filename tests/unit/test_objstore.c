/* SPDX-License-Identifier: MIT */
/*
 * test_objstore.c: the object store's interface (objstore.c) on the local
 * backend (objstore_local.c): keys, the prefix, put/get/head/list/delete,
 * list pages, sizes and hashes, and the backend's own limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pincer.h"
#include "tap.h"

struct seen {
	char	 keys[16][64];
	int	 n;
	int	 stop_at;
};

static int
collect(const char *key, const struct os_meta *m, void *arg)
{
	struct seen	*s = arg;

	if (s->n < 16)
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	s->n++;
	return s->stop_at != 0 && s->n == s->stop_at ? 7 : 0;
}

static struct objstore *
open_store(const char *dir, const char *extra)
{
	char		 json[1024], err[OS_ERR], *cerr = NULL;
	struct config	*c;
	struct objstore	*os;

	snprintf(json, sizeof(json), "{\"state_dir\": \"%s\", \"objstore\": "
	    "{\"path\": \"%s/store\", \"list_page\": 2%s}}", dir, dir, extra);
	if ((c = config_parse(json, strlen(json), "test", &cerr)) == NULL) {
		printf("# config: %s\n", cerr);
		free(cerr);
		return NULL;
	}
	os = objstore_open(c, err);
	if (os == NULL)
		printf("# open: %s\n", err);
	config_free(c);
	return os;
}

int
main(void)
{
	char		 dir[] = "/tmp/pincer-test-objstore-XXXXXX", err[OS_ERR];
	char		 path[256], big[5000];
	struct objstore	*os;
	struct os_meta	 m, m2;
	struct seen	 s;
	struct buf	 b;
	int		 fd;

	/* Keys. */
	ok(objstore_key_valid("data/box/notes.md", err), "a plain key");
	ok(objstore_key_valid("a b/ü+=&?.txt", err), "spaces, UTF-8, '+=&?'");
	ok(!objstore_key_valid("", err), "empty: refused");
	ok(!objstore_key_valid("/abs", err), "a leading '/': refused");
	ok(!objstore_key_valid("a//b", err), "an empty part: refused");
	ok(!objstore_key_valid("a/../b", err), "'..': refused");
	ok(strstr(err, "'..'") != NULL, "… and the error says why");
	ok(!objstore_key_valid("a/./b", err), "'.': refused");
	ok(!objstore_key_valid("a/", err), "a trailing '/': refused");
	ok(!objstore_key_valid("a\nb", err), "a control byte: refused");
	memset(big, 'k', OS_KEY_MAX + 1);
	big[OS_KEY_MAX + 1] = '\0';
	ok(!objstore_key_valid(big, err), "longer than OS_KEY_MAX: refused");
	big[OS_KEY_MAX] = '\0';
	ok(objstore_key_valid(big, err), "OS_KEY_MAX bytes: taken");

	if (mkdtemp(dir) == NULL || (os = open_store(dir, "")) == NULL) {
		ok(0, "the local store opens");
		return done_testing();
	}
	ok(!strncmp(os->where, "local ", 6), "where says local: %s",
	    os->where);

	/* Put and get. */
	is_int(objstore_put_mem(os, "k/one", "hello", 5, &m, err), OS_OK,
	    "put_mem");
	is_int(m.size, 5, "… its size");
	is_str(m.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e7304"
	    "3362938b9824", "… its SHA-256");
	buf_init(&b, 1024);
	is_int(objstore_get_mem(os, "k/one", &b, &m2, err), OS_OK, "get_mem");
	ok(b.len == 5 && !memcmp(b.data, "hello", 5), "… the bytes");
	is_str(m2.etag, m.etag, "… the same ETag as the put said");
	is_int(objstore_put_mem(os, "k/one", "hello!", 6, &m2, err), OS_OK,
	    "put over it");
	ok(strcmp(m2.etag, m.etag) != 0, "… a new ETag");
	is_int(objstore_head(os, "k/one", &m, err), OS_OK, "head");
	ok(m.size == 6 && !strcmp(m.etag, m2.etag) && m.mtime > 1600000000,
	    "… size, ETag and time of the new one");
	is_int(objstore_head(os, "k/none", &m, err), OS_NOTFOUND,
	    "head of a missing key: not found");
	is_int(objstore_get_mem(os, "k/none", &b, &m, err), OS_NOTFOUND,
	    "get of a missing key: not found");
	buf_free(&b);
	buf_init(&b, 3);
	is_int(objstore_get_mem(os, "k/one", &b, &m, err), OS_FAIL,
	    "get into a buffer too small: refused");
	ok(strstr(err, "larger") != NULL, "… saying it is larger: %s", err);
	buf_free(&b);

	/* A file, streamed both ways. */
	snprintf(path, sizeof(path), "%s/in", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	memset(big, 'x', sizeof(big));
	ok(fd != -1 && write(fd, big, sizeof(big)) == (ssize_t)sizeof(big),
	    "a 5,000-byte file");
	is_int(objstore_put(os, "f/big", fd, &m, err), OS_OK, "put a file");
	is_int(m.size, 5000, "… 5,000 bytes");
	snprintf(path, sizeof(path), "%s/out", dir);
	close(fd);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ok(write(fd, "old contents, longer than nothing", 33) == 33,
	    "an out file with old contents");
	is_int(objstore_get(os, "f/big", fd, &m2, err), OS_OK, "get a file");
	ok(lseek(fd, 0, SEEK_END) == 5000, "… it holds the object alone");
	is_str(m2.sha256, m.sha256, "… the stored hash comes back");
	close(fd);
	fd = open("/dev/null", O_RDONLY);
	is_int(objstore_put(os, "f/dev", fd, &m, err), OS_FAIL,
	    "put from a device: refused (only a regular file)");
	close(fd);

	/* Lists: byte order, prefixes, pages of 2, a stop. */
	objstore_put_mem(os, "l/a", "1", 1, &m, err);
	objstore_put_mem(os, "l/b/c", "2", 1, &m, err);
	objstore_put_mem(os, "l/b-d", "3", 1, &m, err);
	objstore_put_mem(os, "l/c", "4", 1, &m, err);
	objstore_put_mem(os, "lz", "5", 1, &m, err);
	memset(&s, 0, sizeof(s));
	is_int(objstore_list(os, "l/", collect, &s, err), OS_OK,
	    "list l/ (pages of 2)");
	is_int(s.n, 4, "… 4 keys");
	ok(!strcmp(s.keys[0], "l/a") && !strcmp(s.keys[1], "l/b-d") &&
	    !strcmp(s.keys[2], "l/b/c") && !strcmp(s.keys[3], "l/c"),
	    "… in byte order ('-' before '/'): %s %s %s %s", s.keys[0],
	    s.keys[1], s.keys[2], s.keys[3]);
	memset(&s, 0, sizeof(s));
	objstore_list(os, "l", collect, &s, err);
	is_int(s.n, 5, "list l: also lz");
	memset(&s, 0, sizeof(s));
	objstore_list(os, "l/b", collect, &s, err);
	is_int(s.n, 2, "list l/b: l/b-d and l/b/c");
	memset(&s, 0, sizeof(s));
	s.stop_at = 3;
	is_int(objstore_list(os, "", collect, &s, err), 7,
	    "a callback's non-zero stops the walk and is returned");
	is_int(s.n, 3, "… after 3 keys");
	memset(&s, 0, sizeof(s));
	is_int(objstore_list(os, "../", collect, &s, err), OS_FAIL,
	    "list of ../: refused");

	/* Delete. */
	is_int(objstore_delete(os, "l/b/c", err), OS_OK, "delete l/b/c");
	snprintf(path, sizeof(path), "%s/store/l/b", dir);
	ok(access(path, F_OK) == -1 && errno == ENOENT,
	    "… its folder, now empty, went too");
	is_int(objstore_delete(os, "l/b/c", err), OS_OK,
	    "delete of a missing key: OK, as in S3");

	/* The local backend's limits. */
	is_int(objstore_put_mem(os, "l/a/x", "y", 1, &m, err), OS_FAIL,
	    "put l/a/x while l/a is an object: refused");
	ok(strstr(err, "cannot hold both") != NULL, "… saying why: %s", err);
	is_int(objstore_put_mem(os, ".objstore-tmp/x", "y", 1, &m, err),
	    OS_FAIL, "the backend's temporary folder is not a key");
	objstore_close(os);

	/* A prefix: the same calls, the keys under it on disk. */
	if ((os = open_store(dir, ", \"prefix\": \"team/\"")) == NULL) {
		ok(0, "a store with a prefix opens");
		return done_testing();
	}
	is_int(objstore_put_mem(os, "p/q", "z", 1, &m, err), OS_OK,
	    "put under prefix team/");
	snprintf(path, sizeof(path), "%s/store/team/p/q", dir);
	ok(access(path, F_OK) == 0, "… stored as team/p/q");
	memset(&s, 0, sizeof(s));
	objstore_list(os, "p/", collect, &s, err);
	ok(s.n == 1 && !strcmp(s.keys[0], "p/q"),
	    "… listed without the prefix: %s", s.keys[0]);
	objstore_close(os);

	/* An unusable path. */
	snprintf(path, sizeof(path), "%s/in", dir);
	{
		char		 json[512], *cerr = NULL;
		struct config	*c;

		snprintf(json, sizeof(json), "{\"objstore\": {\"path\": "
		    "\"%s/sub\"}}", path);
		c = config_parse(json, strlen(json), "test", &cerr);
		ok(c != NULL && objstore_open(c, err) == NULL && *err != '\0',
		    "a path under a file: no store, and why: %s", err);
		config_free(c);
		free(cerr);
		snprintf(json, sizeof(json), "{\"objstore\": {\"backend\": "
		    "\"off\"}}");
		c = config_parse(json, strlen(json), "test", &cerr);
		ok(c != NULL && objstore_open(c, err) == NULL && *err == '\0',
		    "backend off: no store and no error");
		config_free(c);
		free(cerr);
	}
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		printf("# could not remove %s\n", dir);
	return done_testing();
}
