-- SPDX-License-Identifier: MIT
-- 0009: the egress policy the owner set for a sandbox (PUT
-- /api/v1/sandboxes/{name}/egress); NULL: egress.policy from config.
ALTER TABLE sandboxes ADD COLUMN egress_policy TEXT;
