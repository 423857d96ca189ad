/* SPDX-License-Identifier: MIT */
/* objstore_s3.c: the S3 backend (libcurl, SigV4). */
#include <stdio.h>

#include "pincer.h"

/* Being written; until it lands the backend says so rather than pretend. */
int
objstore_s3_init(struct objstore *os, const struct config *c, char *err)
{
	snprintf(err, OS_ERR, "objstore.backend s3 is not built yet in this "
	    "version; use local");
	return -1;
}
