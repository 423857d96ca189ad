/* SPDX-License-Identifier: MIT */
/* channel_telegram.c: the telegram channel (not built yet: its config is refused). */
#include "pincer.h"

const struct channel_ops channel_telegram_ops = {
	.kind = "telegram",
};
