/* SPDX-License-Identifier: MIT */
/* channel_whatsapp.c: the whatsapp channel (not built yet: its config is refused). */
#include "pincer.h"

const struct channel_ops channel_whatsapp_ops = {
	.kind = "whatsapp",
};
