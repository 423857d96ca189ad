/* SPDX-License-Identifier: MIT */
/* test_buf.c: growable buffers stop at their maximum and stay terminated. */
#include <stdlib.h>
#include <string.h>

#include "pincer.h"
#include "tap.h"

static void	test_append(void);
static void	test_max(void);
static void	test_printf(void);
static void	test_steal_reset(void);

int
main(void)
{
	test_append();
	test_max();
	test_printf();
	test_steal_reset();
	return done_testing();
}

static void
test_append(void)
{
	struct buf	 b;

	buf_init(&b, 64);
	ok(b.data == NULL && b.len == 0, "a new buffer holds nothing");
	is_int(buf_append(&b, "abc", 3), 0, "append within max");
	is_int(b.len, 3, "length counts the bytes");
	ok(b.data != NULL && b.data[3] == '\0', "data is NUL-terminated");
	is_int(buf_puts(&b, "def"), 0, "puts within max");
	is_str(b.data, "abcdef", "appends accumulate");
	is_int(buf_append(&b, "", 0), 0, "an empty append succeeds");
	is_int(b.len, 6, "an empty append changes nothing");
	is_int(buf_append(&b, "x\0y", 3), 0, "append binary with a NUL");
	is_int(b.len, 9, "embedded NUL is counted");
	ok(memcmp(b.data, "abcdefx\0y", 10) == 0,
	    "binary bytes kept, then NUL");
	buf_free(&b);
	ok(b.data == NULL && b.len == 0 && b.cap == 0, "free empties it");
}

static void
test_max(void)
{
	struct buf	 b;
	char		 big[100];

	memset(big, 'a', sizeof(big));
	buf_init(&b, 10);
	is_int(buf_append(&b, big, 10), 0, "exactly max bytes fit");
	is_int(b.len, 10, "length is max");
	ok(b.data[10] == '\0', "terminated at max");
	ok(b.cap <= 11, "capacity stays within max + NUL (got %zu)", b.cap);
	is_int(buf_append(&b, "b", 1), -1, "one past max is refused");
	is_int(b.len, 10, "refusal keeps the length");
	ok(memcmp(b.data, big, 10) == 0 && b.data[10] == '\0',
	    "refusal keeps the content");
	is_int(buf_puts(&b, "zz"), -1, "puts past max is refused");
	is_int(buf_printf(&b, "%d", 7), -1, "printf past max is refused");
	is_int(b.len, 10, "still the same length");
	buf_free(&b);

	buf_init(&b, 10);
	is_int(buf_append(&b, "12345", 5), 0, "half full");
	is_int(buf_append(&b, big, 6), -1, "an append crossing max is refused");
	is_str(b.data, "12345", "content intact after the refusal");
	is_int(buf_append(&b, big, (size_t)-1), -1, "a huge length is refused");
	is_int(buf_append(&b, big, 5), 0, "the rest still fits");
	is_int(b.len, 10, "now full");
	buf_free(&b);

	buf_init(&b, 0);
	is_int(buf_append(&b, "", 0), 0, "max 0 accepts nothing but nothing");
	ok(b.data != NULL && b.data[0] == '\0', "and is terminated");
	is_int(buf_append(&b, "a", 1), -1, "max 0 refuses one byte");
	buf_free(&b);
}

static void
test_printf(void)
{
	struct buf	 b;
	char		 want[1001];

	buf_init(&b, 4096);
	is_int(buf_printf(&b, "%s=%d", "n", 42), 0, "short printf");
	is_str(b.data, "n=42", "short printf content");
	is_int(buf_printf(&b, ";%c", 'x'), 0, "printf appends");
	is_str(b.data, "n=42;x", "appended content");
	buf_reset(&b);

	memset(want, 'q', 1000);
	want[1000] = '\0';
	is_int(buf_printf(&b, "%s", want), 0, "printf of 1000 bytes");
	is_int(b.len, 1000, "long printf length");
	is_str(b.data, want, "long printf content");
	is_int(buf_printf(&b, "%.*s!", 299, want), 0,
	    "second long printf (300 bytes) onto a non-empty buffer");
	is_int(b.len, 1300, "appended long printf length");
	ok(b.data[1299] == '!' && b.data[1300] == '\0',
	    "long printf ends where it should, terminated");
	buf_free(&b);

	/* The long path has its own bound check: 300 bytes into max 299. */
	buf_init(&b, 299);
	is_int(buf_printf(&b, "%.*s", 300, want), -1,
	    "a long printf past max is refused");
	is_int(b.len, 0, "and nothing was added");
	is_int(buf_printf(&b, "%.*s", 299, want), 0, "exactly max via printf");
	is_int(b.len, 299, "full");
	ok(b.data[299] == '\0', "terminated");
	buf_free(&b);

	buf_init(&b, 300);
	is_int(buf_puts(&b, "ab"), 0, "two bytes in");
	is_int(buf_printf(&b, "%.*s", 299, want), -1,
	    "long printf crossing max with content is refused");
	is_str(b.data, "ab", "content kept after a long refusal");
	buf_free(&b);
}

static void
test_steal_reset(void)
{
	struct buf	 b;
	char		*s;

	buf_init(&b, 100);
	buf_puts(&b, "hello");
	buf_reset(&b);
	is_int(b.len, 0, "reset empties");
	ok(b.data != NULL && b.data[0] == '\0', "reset leaves an empty string");
	is_int(buf_puts(&b, "again"), 0, "usable after reset");
	is_str(b.data, "again", "content after reset");

	s = buf_steal(&b);
	is_str(s, "again", "steal hands over the string");
	ok(b.data == NULL && b.len == 0 && b.cap == 0,
	    "steal resets the buffer");
	is_int(b.max, 100, "steal keeps the maximum");
	free(s);
	is_int(buf_puts(&b, "third"), 0, "usable after steal");
	is_str(b.data, "third", "content after steal");
	buf_free(&b);

	buf_init(&b, 100);
	s = buf_steal(&b);
	ok(s != NULL && *s == '\0', "stealing an empty buffer gives \"\"");
	free(s);
	buf_reset(&b);
	ok(b.data == NULL, "reset of an empty buffer allocates nothing");
	buf_free(&b);
}
