-- SPDX-License-Identifier: MIT
-- 0001: the instance itself. schema_version is created by store.c before
-- any migration runs, so that it can record this one.
CREATE TABLE meta (
	key	TEXT PRIMARY KEY,
	value	TEXT NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES
	('instance_id', lower(hex(randomblob(16)))),
	('created_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
