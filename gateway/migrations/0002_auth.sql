-- SPDX-License-Identifier: MIT
-- 0002: people and machines: users, revoked sessions, API tokens, the
-- one-time setup code, and the audit log.
CREATE TABLE users (
	id		INTEGER PRIMARY KEY,
	name		TEXT NOT NULL UNIQUE COLLATE NOCASE,
	email		TEXT UNIQUE COLLATE NOCASE,
	role		TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
	-- argon2id, PHC string: the parameters travel with the hash
	password_hash	TEXT,
	disabled	INTEGER NOT NULL DEFAULT 0,
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	last_login_at	TEXT
) STRICT;

-- Logged-out sessions (the sid claim, shared by a session's renewed
-- tokens), until the last of its tokens would have expired anyway.
CREATE TABLE revoked_sessions (
	sid		TEXT PRIMARY KEY,
	expires_at	INTEGER NOT NULL
) STRICT;

CREATE TABLE api_tokens (
	id		TEXT PRIMARY KEY,
	user_id		INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name		TEXT NOT NULL,
	secret_hash	BLOB NOT NULL,		-- SHA-256 of the secret part
	scopes		TEXT NOT NULL,
	created_at	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	expires_at	INTEGER,		-- unix seconds; NULL: never
	last_used_at	TEXT,
	revoked_at	TEXT
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE setup_codes (
	code_hash	BLOB PRIMARY KEY,	-- SHA-256 of the code
	expires_at	INTEGER NOT NULL
) STRICT;

CREATE TABLE audit (
	id		INTEGER PRIMARY KEY,
	ts		TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	actor		TEXT NOT NULL,
	ip		TEXT NOT NULL DEFAULT '',
	action		TEXT NOT NULL,
	target		TEXT NOT NULL DEFAULT '',
	detail		TEXT NOT NULL DEFAULT ''
) STRICT;
