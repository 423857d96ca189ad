-- SPDX-License-Identifier: MIT
-- 0003: the sandboxes pincerd knows. A sandbox's files live in
-- $state/sandboxes/<name>/; this row is what survives a restart.
CREATE TABLE sandboxes (
	name		TEXT PRIMARY KEY,
	-- which host uid range it maps to when pincerd runs as root:
	-- sandbox.uid_base + slot * 65536
	slot		INTEGER NOT NULL UNIQUE,
	-- what it was last seen doing: running, sleeping or stopped
	state		TEXT NOT NULL DEFAULT 'sleeping'
			CHECK (state IN ('running', 'sleeping', 'stopped')),
	created_by	TEXT,
	created_at	INTEGER NOT NULL,	-- unix milliseconds
	started_at	INTEGER,
	last_used_at	INTEGER,
	starts		INTEGER NOT NULL DEFAULT 0
) STRICT;
