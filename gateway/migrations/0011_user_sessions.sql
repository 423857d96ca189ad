-- SPDX-License-Identifier: MIT
-- 0011: a password reset ends the person's sessions: sessions issued
-- before this time (unix seconds) are no longer accepted.
ALTER TABLE users ADD COLUMN sessions_after INTEGER NOT NULL DEFAULT 0;
