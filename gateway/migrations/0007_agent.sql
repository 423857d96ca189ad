-- SPDX-License-Identifier: MIT
-- 0007: the agent's dispatcher (gateway/dispatch.c). A message is written
-- to the inbox before anything else happens to it; a turn takes the
-- queued messages of one conversation; its reply (or error) goes to the
-- outbox in the same transaction that marks the messages done.
CREATE TABLE conversations (
	id		TEXT PRIMARY KEY,	-- "api:alice:main"
	channel		TEXT NOT NULL,		-- "api"
	peer		TEXT NOT NULL,		-- who the agent talks with
	thread		TEXT NOT NULL DEFAULT '',
	owner		TEXT NOT NULL,		-- the pincer user
	sandbox		TEXT NOT NULL,		-- where its turns run
	created_ms	INTEGER NOT NULL,
	updated_ms	INTEGER NOT NULL
) STRICT;
CREATE INDEX conversations_owner ON conversations (owner, updated_ms);
CREATE TABLE inbox (
	id		INTEGER PRIMARY KEY,
	conversation	TEXT NOT NULL REFERENCES conversations (id),
	event_id	TEXT UNIQUE,		-- the channel's, for duplicates
	sender		TEXT NOT NULL,
	text		TEXT NOT NULL,
	attachments	TEXT NOT NULL DEFAULT '[]',	-- JSON array
	received_ms	INTEGER NOT NULL,
	state		TEXT NOT NULL DEFAULT 'queued',	-- queued running done failed
	attempts	INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX inbox_state ON inbox (state, conversation, id);
CREATE TABLE outbox (
	id		INTEGER PRIMARY KEY,
	conversation	TEXT NOT NULL REFERENCES conversations (id),
	inbox_id	INTEGER NOT NULL,	-- the last message answered
	kind		TEXT NOT NULL,		-- reply error
	text		TEXT NOT NULL,
	attachments	TEXT NOT NULL DEFAULT '[]',	-- files in the sandbox
	created_ms	INTEGER NOT NULL,
	delivered_ms	INTEGER		-- NULL: a channel has yet to send it
) STRICT;
CREATE INDEX outbox_conversation ON outbox (conversation, id);
