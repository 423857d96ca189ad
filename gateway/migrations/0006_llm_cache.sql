-- SPDX-License-Identifier: MIT
-- 0006: the LLM proxy's exact-match answer cache (off unless a route or a
-- request asks). The key is a SHA-256 of the normalized request; the body
-- is the answer as the client got it (JSON, or a stream's SSE bytes).
-- Only llm_cache.c reads or writes this table.
CREATE TABLE llm_cache (
	key		TEXT PRIMARY KEY,	-- hex SHA-256
	created_ms	INTEGER NOT NULL,	-- unix milliseconds
	expires_ms	INTEGER NOT NULL,
	status		INTEGER NOT NULL,
	ctype		TEXT NOT NULL,
	stream		INTEGER NOT NULL,	-- 1: body is SSE
	provider	TEXT NOT NULL,
	model		TEXT NOT NULL,
	in_tokens	INTEGER NOT NULL,
	out_tokens	INTEGER NOT NULL,
	size		INTEGER NOT NULL,
	body		BLOB NOT NULL
) STRICT;
CREATE INDEX llm_cache_created ON llm_cache (created_ms);
