/* SPDX-License-Identifier: MIT */
/* llm.c: not written yet. */
#include "pincer.h"
