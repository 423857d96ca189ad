-- SPDX-License-Identifier: MIT
-- 0005: one row per LLM call through the proxy (usage.c writes them in
-- batches; GET /api/v1/usage and the budgets read them).
CREATE TABLE llm_calls (
	id		INTEGER PRIMARY KEY,
	ts_ms		INTEGER NOT NULL,	-- unix milliseconds, the request's arrival
	caller		TEXT NOT NULL,		-- user:NAME or sandbox:NAME
	route		TEXT NOT NULL,		-- '' when a model was named directly
	provider	TEXT NOT NULL,		-- '' when none was reached
	model		TEXT NOT NULL,
	in_tokens	INTEGER NOT NULL,	-- every input token, cached ones too
	out_tokens	INTEGER NOT NULL,
	cached_tokens	INTEGER NOT NULL,
	latency_ms	INTEGER NOT NULL,
	ttft_ms		INTEGER NOT NULL,	-- -1: no first byte
	status		INTEGER NOT NULL,	-- what the client got
	cache_hit	INTEGER NOT NULL,
	stream		INTEGER NOT NULL,
	cost_usd	REAL NOT NULL
) STRICT;
CREATE INDEX llm_calls_ts ON llm_calls (ts_ms);
CREATE INDEX llm_calls_caller_ts ON llm_calls (caller, ts_ms);
