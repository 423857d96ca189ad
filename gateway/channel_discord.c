/* SPDX-License-Identifier: MIT */
/* channel_discord.c: the discord channel (not built yet: its config is refused). */
#include "pincer.h"

const struct channel_ops channel_discord_ops = {
	.kind = "discord",
};
