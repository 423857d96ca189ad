/* SPDX-License-Identifier: MIT */
/*
 * test_ws_frame.c: the frames ws.c composes itself are RFC 6455's, byte
 * for byte (the examples of §5.7), at each length boundary, masked or not.
 */
#include <stdlib.h>
#include <string.h>

#include "pincer.h"
#include "tap.h"

static void	test_rfc_examples(void);
static void	test_lengths(void);
static void	test_mask_roundtrip(void);

int
main(void)
{
	test_rfc_examples();
	test_lengths();
	test_mask_roundtrip();
	return done_testing();
}

static void
test_rfc_examples(void)
{
	static const unsigned char plain[] = { 0x81, 0x05, 0x48, 0x65, 0x6c,
	    0x6c, 0x6f };
	static const unsigned char masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21,
	    0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	static const unsigned char key[] = { 0x37, 0xfa, 0x21, 0x3d };
	unsigned char	 out[16];
	size_t		 n;

	n = ws_frame_put(out, "Hello", 5, false, NULL);
	is_int(n, sizeof(plain), "§5.7 unmasked \"Hello\": 7 bytes");
	ok(memcmp(out, plain, sizeof(plain)) == 0,
	    "§5.7 unmasked \"Hello\": the example's bytes");
	is_int(ws_frame_len(5, false), n, "ws_frame_len agrees");
	n = ws_frame_put(out, "Hello", 5, false, key);
	is_int(n, sizeof(masked), "§5.7 masked \"Hello\": 11 bytes");
	ok(memcmp(out, masked, sizeof(masked)) == 0,
	    "§5.7 masked \"Hello\": the example's bytes");
	is_int(ws_frame_len(5, true), n, "ws_frame_len agrees, masked");
}

/* The header grows at 126 and 65536 (§5.2: 7, 7+16 and 7+64 bits). */
static void
test_lengths(void)
{
	static const size_t	 lens[] = { 0, 125, 126, 65535, 65536, 70000 };
	static const size_t	 hdrs[] = { 2, 2, 4, 4, 10, 10 };
	unsigned char		*in = calloc(1, 70000);
	unsigned char		*out = malloc(70000 + 14);
	size_t			 i, n;

	if (in == NULL || out == NULL)
		abort();
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		n = ws_frame_put(out, in, lens[i], true, NULL);
		is_int(n, lens[i] + hdrs[i], "%zu bytes: a %zu-byte header",
		    lens[i], hdrs[i]);
		is_int(ws_frame_len(lens[i], false), n,
		    "%zu bytes: ws_frame_len agrees", lens[i]);
		is_int(out[0], 0x82, "%zu bytes: FIN and binary", lens[i]);
	}
	ws_frame_put(out, in, 126, true, NULL);
	ok(out[1] == 126 && out[2] == 0 && out[3] == 126,
	    "126 bytes: 16-bit length 126");
	ws_frame_put(out, in, 65535, true, NULL);
	ok(out[1] == 126 && out[2] == 0xff && out[3] == 0xff,
	    "65535 bytes: 16-bit length 0xffff");
	ws_frame_put(out, in, 65536, true, NULL);
	ok(out[1] == 127 && out[2] == 0 && out[3] == 0 && out[4] == 0 &&
	    out[5] == 0 && out[6] == 0 && out[7] == 1 && out[8] == 0 &&
	    out[9] == 0, "65536 bytes: 64-bit length 0x10000");
	free(in);
	free(out);
}

/* A masked frame's payload XORed with its key again is the message. */
static void
test_mask_roundtrip(void)
{
	static const unsigned char key[] = { 0xa5, 0x00, 0xff, 0x3c };
	unsigned char	 in[1000], out[1000 + 8];
	size_t		 i, n;
	int		 same = 0, back = 1;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7);
	n = ws_frame_put(out, in, sizeof(in), false, key);
	is_int(n, 4 + 4 + sizeof(in), "1000 bytes masked: 16-bit length, key");
	ok(out[1] == (0x80 | 126) && memcmp(out + 4, key, 4) == 0,
	    "the mask bit is set and the key follows the length");
	for (i = 0; i < sizeof(in); i++) {
		same += out[8 + i] == in[i];
		back &= (out[8 + i] ^ key[i & 3]) == in[i];
	}
	ok(back, "unmasked with the key, the payload is the message");
	ok(same < (int)sizeof(in) / 2, "the payload on the wire is masked");
}
