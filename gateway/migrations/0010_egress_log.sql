-- SPDX-License-Identifier: MIT
-- 0010: one row per request or tunnel through the egress proxy (issue 10;
-- egress_log.c writes them in batches, prunes them by egress.log_* and
-- GET /api/v1/egress/log reads them). The query of a path is never
-- stored: it can hold a token.
CREATE TABLE egress_log (
	id		INTEGER PRIMARY KEY,
	ts_ms		INTEGER NOT NULL,	-- unix ms, the request's start
	sandbox		TEXT NOT NULL,
	policy		TEXT,			-- the one that decided
	method		TEXT,			-- CONNECT for a tunnel
	host		TEXT,			-- lower case
	port		INTEGER,
	path		TEXT,			-- NULL: CONNECT; a query: "?…"
	action		TEXT NOT NULL,		-- allow deny error
	rule		INTEGER,		-- index; -1 default, -2 special
	status		INTEGER,		-- what the sandbox got; 0: none
	bytes_up	INTEGER,
	bytes_down	INTEGER,
	ms		INTEGER,
	intercepted	INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX egress_log_ts ON egress_log (ts_ms);
CREATE INDEX egress_log_sandbox ON egress_log (sandbox, id);
CREATE INDEX egress_log_host ON egress_log (host, id);
