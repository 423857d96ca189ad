/* SPDX-License-Identifier: MIT */
/* sse.c: not written yet. */
#include "pincer.h"
