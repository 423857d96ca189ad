/* SPDX-License-Identifier: MIT */
/*
 * ws_frame.c: WebSocket data frames composed by pincer itself (RFC 6455
 * §5.2), so that ws.c can write several queued messages in one send(2).
 * libwebsockets writes one frame per call, and as a client draws every
 * frame's masking key from the kernel: a relay of many small messages
 * (CDP's pipelined calls) paid two or three system calls per message for
 * that alone. The bytes go out with LWS_WRITE_RAW, which lws passes on
 * unframed (lws-write.h); lws still frames pings and closes itself.
 */
#include <string.h>

#include "pincer.h"

/* The bytes a frame of an n-byte payload takes, header included. */
size_t
ws_frame_len(size_t n, bool masked)
{
	size_t	 hdr = n < 126 ? 2 : n < 65536 ? 4 : 10;

	return hdr + (masked ? 4 : 0) + n;
}

/*
 * One final (FIN) text or binary frame of p at out, which has room for
 * ws_frame_len(n, mask != NULL) bytes. A client's frames carry a mask
 * (§5.3); the caller draws the key from a strong generator.
 */
size_t
ws_frame_put(unsigned char *out, const void *p, size_t n, bool binary,
    const unsigned char *mask)
{
	const unsigned char	*in = p;
	unsigned char		 mbit = mask != NULL ? 0x80 : 0;
	size_t			 o = 0, i;

	out[o++] = 0x80 | (binary ? 0x2 : 0x1);
	if (n < 126)
		out[o++] = mbit | (unsigned char)n;
	else if (n < 65536) {
		out[o++] = mbit | 126;
		out[o++] = (unsigned char)(n >> 8);
		out[o++] = (unsigned char)n;
	} else {
		out[o++] = mbit | 127;
		for (i = 8; i-- > 0; )
			out[o++] = (unsigned char)((uint64_t)n >> (i * 8));
	}
	if (mask == NULL) {
		memcpy(out + o, in, n);
		return o + n;
	}
	memcpy(out + o, mask, 4);
	o += 4;
	for (i = 0; i < n; i++)
		out[o + i] = in[i] ^ mask[i & 3];
	return o + n;
}
