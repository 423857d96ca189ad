-- SPDX-License-Identifier: MIT
-- 0012: the tool calls of the turn a reply ends, kept with it, so the
-- admin UI's chat shows them after a reload as it did live:
-- [{id, name, input, ok, output, ms}] (output as the agent gave it to the
-- stream: its first 2,000 bytes).
ALTER TABLE outbox ADD COLUMN tools TEXT NOT NULL DEFAULT '[]';
