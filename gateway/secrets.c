/* SPDX-License-Identifier: MIT */
/*
 * secrets.c: provider keys, bot tokens and signing secrets, kept in the
 * store encrypted with a key file that never leaves the host. Config names
 * a secret; only the gateway reads its value, just before use, and wipes
 * it after. A value is never logged, never returned by the API, never put
 * in a sandbox.
 *
 * AES-256-GCM, a random 96-bit nonce per write, and the secret's name as
 * associated data, so that a row copied under another name does not
 * decrypt (NIST SP 800-38D).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "pincer.h"

#define KEY_LEN		32
#define NONCE_LEN	12
#define TAG_LEN		16

static int	 key_load(void);
static int	 seal(const char *, const void *, size_t, unsigned char *,
		    unsigned char *);
static int	 unseal(const char *, const unsigned char *,
		    const unsigned char *, size_t, unsigned char *);

static unsigned char	 key[KEY_LEN];		/* secret; one place */
static bool		 have_key;
static char		 key_path[4096];

/* The key lives beside the session key, made on first use (0600). */
int
secrets_init(const char *state_dir)
{
	char	 dir[4000];

	snprintf(dir, sizeof(dir), "%s/keys", state_dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -1;
	snprintf(key_path, sizeof(key_path), "%s/secrets.key", dir);
	have_key = false;
	return 0;
}

void
secrets_shutdown(void)
{
	explicit_bzero(key, sizeof(key));
	have_key = false;
}

bool
secrets_name_valid(const char *n)
{
	size_t	 i, len = strlen(n);

	if (len < 1 || len > 64)
		return false;
	for (i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' &&
		    n[i] <= 'Z') || (n[i] >= '0' && n[i] <= '9') ||
		    strchr("_.-", n[i]) != NULL))
			return false;
	return true;
}

/* Store (or replace) a value. */
int
secrets_set(const char *name, const void *val, size_t len, char **err)
{
	sqlite3_stmt	*st;
	unsigned char	 nonce[NONCE_LEN], *ct;
	long long	 now = (long long)time(NULL);
	int		 rc = -1;

	*err = NULL;
	if (!secrets_name_valid(name)) {
		*err = strdup("a secret's name is 1 to 64 of A-Z, a-z, 0-9, "
		    "'_', '.' and '-'");
		return -1;
	}
	if (len == 0 || len > SECRETS_MAX) {
		*err = strdup("a secret's value is 1 byte to 64 KiB");
		return -1;
	}
	if ((ct = malloc(len + TAG_LEN)) == NULL || key_load() == -1 ||
	    seal(name, val, len, nonce, ct) == -1) {
		*err = strdup("cannot encrypt (see the log)");
		free(ct);
		return -1;
	}
	st = store_stmt("INSERT INTO secrets (name, nonce, sealed, created_at, "
	    "updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE "
	    "SET nonce = excluded.nonce, sealed = excluded.sealed, "
	    "updated_at = excluded.updated_at");
	if (st != NULL) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, nonce, NONCE_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, ct, (int)(len + TAG_LEN),
		    SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now);
		sqlite3_bind_int64(st, 5, now);
		if (sqlite3_step(st) == SQLITE_DONE)
			rc = 0;
		else
			*err = strdup(sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
	}
	free(ct);
	return rc;
}

/*
 * The value into out (a buffer with room for SECRETS_MAX; the caller
 * wipes it after use). -1: no such secret, or it does not decrypt (a
 * wrong key file, a changed row); the log says which, never the value.
 */
int
secrets_get(const char *name, struct buf *out)
{
	sqlite3_stmt		*st;
	const unsigned char	*nonce, *ct;
	int			 nlen, clen, rc = -1;

	if ((st = store_stmt("SELECT nonce, sealed FROM secrets WHERE "
	    "name = ?")) == NULL || key_load() == -1)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		nonce = sqlite3_column_blob(st, 0);
		nlen = sqlite3_column_bytes(st, 0);
		ct = sqlite3_column_blob(st, 1);
		clen = sqlite3_column_bytes(st, 1);
		buf_reset(out);
		if (nlen == NONCE_LEN && clen > TAG_LEN &&
		    clen - TAG_LEN <= SECRETS_MAX &&
		    buf_append(out, ct, (size_t)clen) == 0 &&
		    unseal(name, nonce, ct, (size_t)clen,
		    (unsigned char *)out->data) == 0) {
			out->len = (size_t)clen - TAG_LEN;
			out->data[out->len] = '\0';
			rc = 0;
		} else {
			explicit_bzero(out->data, out->cap);
			buf_reset(out);
			log_error("a secret does not decrypt", "name=%s (the "
			    "key file %s is not the one it was stored with, "
			    "or the row was changed)", name, key_path);
		}
	}
	sqlite3_reset(st);
	return rc;
}

int
secrets_delete(const char *name)
{
	sqlite3_stmt	*st;
	int		 n = 0;

	if ((st = store_stmt("DELETE FROM secrets WHERE name = ?")) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		n = sqlite3_changes(store_db());
	sqlite3_reset(st);
	return n == 1 ? 0 : -1;
}

/* Names and dates only. */
json_t *
secrets_list(void)
{
	sqlite3_stmt	*st;
	json_t		*a = json_array();

	if ((st = store_stmt("SELECT name, created_at, updated_at FROM "
	    "secrets ORDER BY name")) == NULL)
		return a;
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, json_pack("{s:s, s:I, s:I}", "name",
		    (const char *)sqlite3_column_text(st, 0), "created_at",
		    (json_int_t)sqlite3_column_int64(st, 1), "updated_at",
		    (json_int_t)sqlite3_column_int64(st, 2)));
	sqlite3_reset(st);
	return a;
}

/* Read the key, or make it (O_EXCL: two CLIs racing make one). */
static int
key_load(void)
{
	unsigned char	 k[KEY_LEN];
	int		 fd;
	ssize_t		 n;

	if (have_key)
		return 0;
	if ((fd = open(key_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 &&
	    errno == ENOENT) {
		if (getrandom(k, sizeof(k), 0) != sizeof(k) ||
		    (fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600)) == -1) {
			explicit_bzero(k, sizeof(k));
			if (errno == EEXIST)
				return key_load();
			goto fail;
		}
		n = write(fd, k, sizeof(k));
		explicit_bzero(k, sizeof(k));
		if (n != sizeof(k) || fsync(fd) == -1) {
			close(fd);
			unlink(key_path);
			goto fail;
		}
		close(fd);
		fd = open(key_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd == -1)
		goto fail;
	n = read(fd, key, sizeof(key));
	close(fd);
	if (n != sizeof(key)) {
		errno = EINVAL;
		goto fail;
	}
	have_key = true;
	return 0;
fail:
	log_error("cannot use the secrets key", "%s: %s", key_path,
	    strerror(errno));
	return -1;
}

/* ct gets len bytes of ciphertext, then the 16-byte tag. */
static int
seal(const char *name, const void *pt, size_t len, unsigned char *nonce,
    unsigned char *ct)
{
	EVP_CIPHER_CTX	*x;
	int		 n, rc = -1;

	if (getrandom(nonce, NONCE_LEN, 0) != NONCE_LEN ||
	    (x = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	if (EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
	    EVP_EncryptUpdate(x, NULL, &n, (const unsigned char *)name,
	    (int)strlen(name)) == 1 &&
	    EVP_EncryptUpdate(x, ct, &n, pt, (int)len) == 1 &&
	    EVP_EncryptFinal_ex(x, ct + n, &n) == 1 &&
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TAG_LEN, ct + len) ==
	    1)
		rc = 0;
	EVP_CIPHER_CTX_free(x);
	return rc;
}

static int
unseal(const char *name, const unsigned char *nonce, const unsigned char *ct,
    size_t clen, unsigned char *pt)
{
	EVP_CIPHER_CTX	*x;
	size_t		 len = clen - TAG_LEN;
	int		 n, rc = -1;

	if ((x = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	if (EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
	    EVP_DecryptUpdate(x, NULL, &n, (const unsigned char *)name,
	    (int)strlen(name)) == 1 &&
	    EVP_DecryptUpdate(x, pt, &n, ct, (int)len) == 1 &&
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
	    (void *)(ct + len)) == 1 &&
	    EVP_DecryptFinal_ex(x, pt + n, &n) == 1)
		rc = 0;
	EVP_CIPHER_CTX_free(x);
	return rc;
}
