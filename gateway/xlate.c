/* SPDX-License-Identifier: MIT */
/* xlate.c: not written yet. */
#include "pincer.h"
