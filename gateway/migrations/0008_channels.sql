-- SPDX-License-Identifier: MIT
-- 0008: chat channels (gateway/channel.c). The outbox learns delivery:
-- each reply is sent part by part, and a part the platform took is
-- recorded at once (parts_sent), with the platform's message id, so a
-- restart sends the rest and never a part twice. Peers are who may talk
-- on a channel (pairing); channel_state keeps a channel's own values
-- (a poller's offset, a socket's session).
ALTER TABLE outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';
	-- pending sent failed; 'local' for the API channel's (read there)
ALTER TABLE outbox ADD COLUMN parts_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN platform_id TEXT;
ALTER TABLE outbox ADD COLUMN error TEXT;
ALTER TABLE outbox ADD COLUMN ref TEXT;		-- a notice's message (pairing)
UPDATE outbox SET state = 'local';
CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
ALTER TABLE inbox ADD COLUMN ref TEXT NOT NULL DEFAULT '';
CREATE TABLE channel_peers (
	channel		TEXT NOT NULL,
	peer		TEXT NOT NULL,		-- the platform's user id
	name		TEXT NOT NULL DEFAULT '',
	state		TEXT NOT NULL,		-- pending approved
	code		TEXT,			-- pending: the pairing code
	chat		TEXT NOT NULL DEFAULT '',	-- where they wrote
	created_ms	INTEGER NOT NULL,
	expires_ms	INTEGER NOT NULL DEFAULT 0,	-- the code's
	decided_by	TEXT,
	decided_ms	INTEGER,
	PRIMARY KEY (channel, peer)
) STRICT;
CREATE TABLE channel_state (
	channel		TEXT NOT NULL,
	key		TEXT NOT NULL,
	value		TEXT NOT NULL,
	PRIMARY KEY (channel, key)
) STRICT;
