/* SPDX-License-Identifier: MIT */
/* llm_conf.c: not written yet. */
#include "pincer.h"
