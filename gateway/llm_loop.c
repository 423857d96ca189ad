/* SPDX-License-Identifier: MIT */
/* llm_loop.c: not written yet. */
#include "pincer.h"
