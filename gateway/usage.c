/* SPDX-License-Identifier: MIT */
/* usage.c: not written yet. */
#include "pincer.h"
