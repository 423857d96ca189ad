/* SPDX-License-Identifier: MIT */
/*
 * users.c: the users table and their passwords. Hashes are argon2id PHC
 * strings, so each carries its own parameters and can be raised later:
 * a login whose hash is weaker than the config's parameters rehashes it.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <argon2.h>
#include <sqlite3.h>

#include "pincer.h"

#define SALT_LEN	16
#define HASH_LEN	32

static void	row_to_user(sqlite3_stmt *, struct user *);
static int	change_one(sqlite3_stmt *, int, const char *);

static const char *const role_names[] = {
	[ROLE_MEMBER] = "member", [ROLE_ADMIN] = "admin",
	[ROLE_OWNER] = "owner",
};

const char *
users_role_name(enum role r)
{
	return role_names[r];
}

int
users_role_parse(const char *s, enum role *r)
{
	size_t	 i;

	for (i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (!strcmp(s, role_names[i])) {
			*r = (enum role)i;
			return 0;
		}
	return -1;
}

/* Names are what people type to log in: short, printable, no spaces. */
bool
users_name_valid(const char *s)
{
	size_t	 i, n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr("._-@+", s[i]) != NULL))
			return false;
	return true;
}

char *
users_hash_password(const char *pw)
{
	const struct config	*c = config_current();
	unsigned char		 salt[SALT_LEN];
	size_t			 enclen;
	char			*enc;
	uint32_t		 t = 2, m = 19456;

	if (c != NULL) {
		t = (uint32_t)c->argon2_iterations;
		m = (uint32_t)c->argon2_memory_kib;
	}
	if (getrandom(salt, sizeof(salt), 0) != sizeof(salt))
		return NULL;
	enclen = argon2_encodedlen(t, m, 1, SALT_LEN, HASH_LEN, Argon2_id);
	if ((enc = malloc(enclen)) == NULL)
		return NULL;
	if (argon2id_hash_encoded(t, m, 1, pw, strlen(pw), salt, SALT_LEN,
	    HASH_LEN, enc, enclen) != ARGON2_OK) {
		free(enc);
		return NULL;
	}
	return enc;
}

/*
 * true if the password matches; *weaker tells whether the hash was made
 * with lower parameters than the config asks for now.
 */
bool
users_verify_password(const char *hash, const char *pw, bool *weaker)
{
	const struct config	*c = config_current();
	unsigned		 m = 0, t = 0, p = 0;

	*weaker = false;
	if (hash == NULL || strncmp(hash, "$argon2id$", 10) != 0)
		return false;
	if (argon2id_verify(hash, pw, strlen(pw)) != ARGON2_OK)
		return false;
	if (c != NULL && sscanf(hash, "$argon2id$v=19$m=%u,t=%u,p=%u", &m, &t,
	    &p) == 3)
		*weaker = m < (unsigned)c->argon2_memory_kib ||
		    t < (unsigned)c->argon2_iterations;
	return true;
}

/*
 * Spend what a real verification costs, so that a login for a name that
 * does not exist takes as long as one with a wrong password.
 */
static char	*dummy_hash;

static void
make_dummy(void)
{
	dummy_hash = users_hash_password("pincer-dummy-password");
}

void
users_dummy_verify(const char *pw)
{
	static pthread_once_t	 once = PTHREAD_ONCE_INIT;
	bool			 weaker;

	pthread_once(&once, make_dummy);
	if (dummy_hash != NULL)
		users_verify_password(dummy_hash, pw, &weaker);
}

int
users_add(const char *name, const char *email, enum role role,
    const char *pw, char **err)
{
	static const char sql[] = "INSERT INTO users (name, email, role, "
	    "password_hash) VALUES (?, ?, ?, ?)";
	sqlite3_stmt	*st = store_stmt(sql);
	char		*hash = NULL;
	int		 rc;

	*err = NULL;
	if (!users_name_valid(name)) {
		*err = strdup("a user name is 1 to 64 letters, digits or . _ "
		    "- @ +");
		return -1;
	}
	if (pw != NULL && strlen(pw) < 8) {
		*err = strdup("a password has at least 8 characters");
		return -1;
	}
	if (st == NULL || (pw != NULL && (hash = users_hash_password(pw)) ==
	    NULL)) {
		*err = strdup("cannot hash the password");
		return -1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (email != NULL && *email != '\0')
		sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, role_names[role], -1, SQLITE_STATIC);
	if (hash != NULL)
		sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (hash != NULL) {
		explicit_bzero(hash, strlen(hash));
		free(hash);
	}
	if (rc == SQLITE_CONSTRAINT) {
		*err = strdup("a user with that name or email exists");
		return -1;
	}
	if (rc != SQLITE_DONE) {
		*err = strdup(sqlite3_errmsg(store_db()));
		return -1;
	}
	return 0;
}

static const char user_cols[] = "id, name, coalesce(email, ''), role, "
    "coalesce(password_hash, ''), disabled, sessions_after";

int
users_find(const char *name, struct user *u)
{
	static char	 sql[160];
	sqlite3_stmt	*st;
	int		 rc;

	if (sql[0] == '\0')
		snprintf(sql, sizeof(sql), "SELECT %s FROM users WHERE name = ?",
		    user_cols);
	if ((st = store_stmt(sql)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		row_to_user(st, u);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int
users_find_email(const char *email, struct user *u)
{
	static char	 sql[160];
	sqlite3_stmt	*st;
	int		 rc;

	if (sql[0] == '\0')
		snprintf(sql, sizeof(sql), "SELECT %s FROM users WHERE email = "
		    "?", user_cols);
	if ((st = store_stmt(sql)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		row_to_user(st, u);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int
users_get(long long id, struct user *u)
{
	static char	 sql[160];
	sqlite3_stmt	*st;
	int		 rc;

	if (sql[0] == '\0')
		snprintf(sql, sizeof(sql), "SELECT %s FROM users WHERE id = ?",
		    user_cols);
	if ((st = store_stmt(sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		row_to_user(st, u);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * A session's user and whether the session was logged out, in one
 * statement: each SQLite read costs a lock round trip per request.
 */
int
users_get_session(long long id, const char *sid, struct user *u,
    bool *revoked)
{
	static char	 sql[256];
	sqlite3_stmt	*st;
	int		 rc;

	if (sql[0] == '\0')
		snprintf(sql, sizeof(sql), "SELECT %s, EXISTS (SELECT 1 FROM "
		    "revoked_sessions WHERE sid = ?2) FROM users WHERE id = ?1",
		    user_cols);
	if ((st = store_stmt(sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, sid, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_user(st, u);
		*revoked = sqlite3_column_int(st, 7) != 0;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Enabled users, or owners only: whether an owner exists decides exposure. */
int
users_count(bool owners_only)
{
	static const char sql[] = "SELECT count(*) FROM users WHERE disabled = 0 "
	    "AND (?1 = 0 OR role = 'owner')";
	sqlite3_stmt	*st = store_stmt(sql);
	int		 n = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, owners_only);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return n;
}

int
users_set_password(const char *name, const char *pw, char **err)
{
	static const char sql[] = "UPDATE users SET password_hash = ? WHERE "
	    "name = ?";
	sqlite3_stmt	*st = store_stmt(sql);
	char		*hash;
	int		 rc;

	*err = NULL;
	if (strlen(pw) < 8) {
		*err = strdup("a password has at least 8 characters");
		return -1;
	}
	if (st == NULL || (hash = users_hash_password(pw)) == NULL) {
		*err = strdup("cannot hash the password");
		return -1;
	}
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	explicit_bzero(hash, strlen(hash));
	free(hash);
	if (rc != SQLITE_DONE || sqlite3_changes(store_db()) != 1) {
		*err = strdup("no such user");
		return -1;
	}
	auth_invalidate();
	return 0;
}

int
users_set_disabled(const char *name, bool disabled)
{
	sqlite3_stmt	*st = store_stmt("UPDATE users SET disabled = ? "
			    "WHERE name = ?");

	if (st != NULL)
		sqlite3_bind_int(st, 1, disabled);
	return change_one(st, 2, name);
}

int
users_set_role(const char *name, enum role role)
{
	sqlite3_stmt	*st = store_stmt("UPDATE users SET role = ? "
			    "WHERE name = ?");

	if (st != NULL)
		sqlite3_bind_text(st, 1, role_names[role], -1, SQLITE_STATIC);
	/* A cached token identity holds the old role's scopes. */
	return change_one(st, 2, name);
}

/*
 * End every session of the user issued before now (a password reset: who
 * knew the old one may hold a cookie). Tokens are credentials of their
 * own and stay. A session issued in this same second survives, so one
 * issued right after the reset (the person's own new one) works.
 */
int
users_end_sessions(const char *name)
{
	return change_one(store_stmt("UPDATE users SET sessions_after = "
	    "CAST(strftime('%s', 'now') AS INTEGER) WHERE name = ?"), 1, name);
}

/* The user and, by the foreign key's cascade, their API tokens. */
int
users_delete(const char *name)
{
	return change_one(store_stmt("DELETE FROM users WHERE name = ?"), 1,
	    name);
}

/*
 * A deleted person's records stay under their name: their conversations
 * (owner) and their agent sandbox ("agent-" and the name in lower case,
 * when it is made of the characters a sandbox name keeps as they are).
 * A new person given by hand (API, CLI) must not inherit them; an
 * external identity provisioned again is the same person, by its email.
 */
bool
users_name_used_before(const char *name)
{
	sqlite3_stmt	*st;
	char		 sbx[80];
	size_t		 i;
	bool		 used;

	st = store_stmt("SELECT 1 FROM conversations WHERE owner = ? "
	    "LIMIT 1");
	if (st == NULL)
		return false;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	used = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	if (used || strlen(name) > 24 ||
	    (size_t)snprintf(sbx, sizeof(sbx), "agent-%s", name) >= sizeof(sbx))
		return used;
	for (i = 6; sbx[i] != '\0'; i++)
		sbx[i] = (char)tolower((unsigned char)sbx[i]);
	if ((st = store_stmt("SELECT 1 FROM sandboxes WHERE name = ?")) ==
	    NULL)
		return false;
	sqlite3_bind_text(st, 1, sbx, -1, SQLITE_STATIC);
	used = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return used;
}

/*
 * Run st (its other parameters bound) with name at parameter i: 0 when it
 * changed exactly that user. Cached identities are dropped either way, so
 * the next request sees the change.
 */
static int
change_one(sqlite3_stmt *st, int i, const char *name)
{
	int	 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, i, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	auth_invalidate();
	return rc == SQLITE_DONE && sqlite3_changes(store_db()) == 1 ? 0 : -1;
}

void
users_touch_login(long long id)
{
	static const char sql[] = "UPDATE users SET last_login_at = "
	    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?";
	sqlite3_stmt	*st = store_stmt(sql);

	if (st == NULL)
		return;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_step(st);
	sqlite3_reset(st);
}

/* Every user as a JSON array (no hashes); caller decrefs. */
json_t *
users_list(void)
{
	static const char sql[] = "SELECT name, coalesce(email, ''), role, "
	    "disabled, created_at, coalesce(last_login_at, '') FROM users "
	    "ORDER BY id";
	sqlite3_stmt	*st = store_stmt(sql);
	json_t		*a = json_array();

	while (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:b,s:s,s:s}",
		    "name", sqlite3_column_text(st, 0),
		    "email", sqlite3_column_text(st, 1),
		    "role", sqlite3_column_text(st, 2),
		    "disabled", sqlite3_column_int(st, 3),
		    "created_at", sqlite3_column_text(st, 4),
		    "last_login_at", sqlite3_column_text(st, 5)));
	if (st != NULL)
		sqlite3_reset(st);
	return a;
}

static void
row_to_user(sqlite3_stmt *st, struct user *u)
{
	enum role	 r = ROLE_MEMBER;

	memset(u, 0, sizeof(*u));
	u->id = sqlite3_column_int64(st, 0);
	snprintf(u->name, sizeof(u->name), "%s", sqlite3_column_text(st, 1));
	snprintf(u->email, sizeof(u->email), "%s", sqlite3_column_text(st, 2));
	users_role_parse((const char *)sqlite3_column_text(st, 3), &r);
	u->role = r;
	snprintf(u->hash, sizeof(u->hash), "%s", sqlite3_column_text(st, 4));
	u->disabled = sqlite3_column_int(st, 5) != 0;
	u->sessions_after = sqlite3_column_int64(st, 6);
}
