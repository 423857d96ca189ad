/* SPDX-License-Identifier: MIT */
/* test_secrets.c: sealed secrets in the store (secrets.c). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pincer.h"
#include "tap.h"

static bool	 file_has(const char *, const void *, size_t);
static int	 sql(const char *);

int
main(void)
{
	char		 dir[] = "/tmp/pincer-test-secrets.XXXXXX";
	char		 db[128], keyf[160], cmd[256], *err = NULL;
	const char	 val[] = "sk-test-0123456789abcdef\0binary\xff";
	unsigned char	 big[SECRETS_MAX + 1];
	struct buf	 out;
	struct stat	 st;
	json_t		*list;

	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	log_setup(LOG_ERROR, LOG_LOGFMT);
	snprintf(db, sizeof(db), "%s/pincer.db", dir);
	snprintf(keyf, sizeof(keyf), "%s/keys/secrets.key", dir);
	ok(store_open(db, 1000, &err) == 0, "the store opens");
	ok(secrets_init(dir) == 0, "secrets_init");
	buf_init(&out, SECRETS_MAX + 64);

	ok(secrets_set("openai", val, sizeof(val) - 1, &err) == 0,
	    "a value with NUL and 0xff bytes is stored");
	ok(stat(keyf, &st) == 0 && (st.st_mode & 0777) == 0600 &&
	    st.st_size == 32, "the key file was made: 32 bytes, mode 0600");
	ok(secrets_get("openai", &out) == 0 && out.len == sizeof(val) - 1 &&
	    memcmp(out.data, val, out.len) == 0, "it reads back, byte for byte");
	ok(secrets_get("nope", &out) == -1, "an unknown name: -1");
	sqlite3_db_cacheflush(store_db());
	sql("PRAGMA wal_checkpoint(TRUNCATE)");
	ok(!file_has(db, "sk-test-0123456789", 18),
	    "the database file does not hold the value in clear");

	ok(secrets_set("openai", "second", 6, &err) == 0 &&
	    secrets_get("openai", &out) == 0 && out.len == 6 &&
	    memcmp(out.data, "second", 6) == 0, "set again replaces it");
	ok(secrets_set("anthropic", "third", 5, &err) == 0, "a second secret");
	/* The name is the associated data: a row under another name fails. */
	sql("UPDATE secrets SET nonce = (SELECT nonce FROM secrets WHERE "
	    "name = 'openai'), sealed = (SELECT sealed FROM secrets WHERE "
	    "name = 'openai') WHERE name = 'anthropic'");
	ok(secrets_get("anthropic", &out) == -1 && out.len == 0,
	    "a sealed value copied under another name does not open");
	sql("UPDATE secrets SET sealed = CAST(zeroblob(22) AS BLOB) WHERE "
	    "name = 'openai'");
	ok(secrets_get("openai", &out) == -1, "a changed row does not open");

	ok(secrets_set("bad name", "x", 1, &err) == -1 && err != NULL &&
	    strstr(err, "name") != NULL, "a bad name is refused, and said so");
	free(err);
	err = NULL;
	memset(big, 'x', sizeof(big));
	ok(secrets_set("big", big, sizeof(big), &err) == -1,
	    "a value over SECRETS_MAX is refused");
	free(err);
	err = NULL;
	ok(secrets_set("max", big, SECRETS_MAX, &err) == 0 &&
	    secrets_get("max", &out) == 0 && out.len == SECRETS_MAX,
	    "a value of exactly SECRETS_MAX round-trips");
	ok(secrets_set("empty", "", 0, &err) == -1, "an empty value is refused");
	free(err);
	err = NULL;

	list = secrets_list();
	ok(json_array_size(list) == 3, "list: three names");
	{
		char	*s = json_dumps(list, 0);

		ok(s != NULL && strstr(s, "\"anthropic\"") != NULL &&
		    strstr(s, "second") == NULL && strstr(s, "third") == NULL,
		    "list names them, with no value");
		free(s);
	}
	json_decref(list);
	ok(secrets_delete("anthropic") == 0 && secrets_delete("anthropic") ==
	    -1, "delete, then it is gone");

	/* Another key file: nothing opens (a copied database alone is safe). */
	ok(secrets_set("k2", "value2", 6, &err) == 0, "one more secret");
	secrets_shutdown();
	unlink(keyf);
	ok(secrets_init(dir) == 0 && secrets_get("k2", &out) == -1,
	    "with another key file the value does not open");

	secrets_shutdown();
	buf_free(&out);
	store_close();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ok(system(cmd) == 0, "cleaned up");
	return done_testing();
}

static bool
file_has(const char *path, const void *needle, size_t n)
{
	FILE	*f = fopen(path, "rb");
	char	*b;
	size_t	 len;
	bool	 found;

	if (f == NULL || (b = malloc(1 << 24)) == NULL)
		return true;
	len = fread(b, 1, 1 << 24, f);
	fclose(f);
	found = memmem(b, len, needle, n) != NULL;
	free(b);
	return found;
}

static int
sql(const char *q)
{
	return sqlite3_exec(store_db(), q, NULL, NULL, NULL);
}
