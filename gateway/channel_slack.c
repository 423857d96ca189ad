/* SPDX-License-Identifier: MIT */
/* channel_slack.c: the slack channel (not built yet: its config is refused). */
#include "pincer.h"

const struct channel_ops channel_slack_ops = {
	.kind = "slack",
};
