-- SPDX-License-Identifier: MIT
-- 0004: secrets (provider keys, bot tokens, signing secrets), sealed with
-- AES-256-GCM under $state/keys/secrets.key; the name is the associated
-- data. Only secrets.c reads or writes this table.
CREATE TABLE secrets (
	name		TEXT PRIMARY KEY,
	nonce		BLOB NOT NULL,		-- 12 bytes, new on every write
	sealed		BLOB NOT NULL,		-- ciphertext, then the 16-byte tag
	created_at	INTEGER NOT NULL,	-- unix seconds
	updated_at	INTEGER NOT NULL
) STRICT;
