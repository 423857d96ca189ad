/* SPDX-License-Identifier: MIT */
/*
 * snap_store.c: snapshots in the object store. Each is two objects under
 * snapshots/<id>/: state.tar.zst, put first, and manifest.json, put
 * last, so a snapshot is listed only once it is whole; and deleted in the
 * other order. The store alone describes them (no table in pincer.db):
 * another pincerd given the same bucket finds every snapshot.
 *
 * An id is the sandbox's name, the UTC time to the millisecond and four
 * random hex digits ("box-20260301-101500.123-4f2a"): a sandbox's
 * snapshots are one list prefix, they sort by time, and retention needs
 * no manifest read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "pincer.h"

#define SUFFIX_LEN	25		/* "-YYYYMMDD-HHMMSS.mmm-xxxx" */
#define MANIFEST_MAX	(64 * 1024)
#define KEYS_MAX	100000		/* snapshots looked at per walk */
#define ORPHAN_MS	(86400LL * 1000) /* a lone archive this old goes */

/* The snapshots under a list prefix: ids, and which have a manifest. */
struct found {
	char		(*ids)[SNAP_ID_MAX + 1];	/* owned */
	bool		*whole;				/* owned */
	size_t		 n, cap;
	const char	*sandbox;	/* NULL: every sandbox's */
};

/* An id and whether it has a manifest, for sorting. */
struct idw {
	char	 id[SNAP_ID_MAX + 1];
	bool	 whole;
};

static int	 find(struct objstore *, const char *, struct found *,
		    char *);
static int	 found_one(const char *, const struct os_meta *, void *);
static int	 newest_first(const void *, const void *);
static int	 by_id(const void *, const void *);
static long long wall_ms(void);
static void	 key_of(char *, size_t, const char *, const char *);

bool
snap_store_id_valid(const char *id, char *sandbox, size_t sz)
{
	/* The id's tail: d a digit, x a lowercase hex digit. */
	static const char	 pat[] = "-dddddddd-dddddd.ddd-xxxx";
	size_t			 n = strlen(id), i;
	char			 name[SBX_NAME_MAX + 1];
	const char		*s;

	if (n <= SUFFIX_LEN || n - SUFFIX_LEN > SBX_NAME_MAX)
		return false;
	for (s = id + n - SUFFIX_LEN, i = 0; i < SUFFIX_LEN; i++) {
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') :
		    pat[i] == 'x' ? strchr("0123456789abcdef", s[i]) == NULL ||
		    s[i] == '\0' : s[i] != pat[i])
			return false;
	}
	memcpy(name, id, n - SUFFIX_LEN);
	name[n - SUFFIX_LEN] = '\0';
	if (!sbx_name_valid(name))
		return false;
	if (sandbox != NULL)
		snprintf(sandbox, sz, "%s", name);
	return true;
}

/* A new id for a snapshot of sandbox taken at ms (unix milliseconds). */
void
snap_store_new_id(const char *sandbox, long long ms, char *id, size_t sz)
{
	unsigned short	 r = 0;
	time_t		 t = (time_t)(ms / 1000);
	struct tm	 tm;
	char		 when[32];

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (unsigned short)(ms ^ getpid());
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y%m%d-%H%M%S", &tm);
	snprintf(id, sz, "%s-%s.%03lld-%04x", sandbox, when, ms % 1000,
	    (unsigned)r);
}

/* When the snapshot was taken, from its id: unix milliseconds. */
long long
snap_store_id_ms(const char *id)
{
	const char	*s = id + strlen(id) - SUFFIX_LEN + 1;
	struct tm	 tm;

	memset(&tm, 0, sizeof(tm));
	if (strptime(s, "%Y%m%d-%H%M%S", &tm) == NULL)
		return 0;
	return (long long)timegm(&tm) * 1000 + atoi(s + 16);
}

/*
 * The archive (fd, a regular file), then its manifest, which gets the
 * archive's size and SHA-256 here. A failure leaves no manifest: a lone
 * archive is removed by a later retention pass.
 */
int
snap_store_put(struct objstore *os, const char *id, int fd, json_t *man,
    char *err)
{
	struct os_meta	 meta;
	char		 key[OS_KEY_MAX], sha[65], *text;
	int		 rc;

	if (objstore_sha256_fd(fd, (long long)lseek(fd, 0, SEEK_END), sha) ==
	    -1) {
		snprintf(err, OS_ERR, "cannot read the archive back: %s",
		    strerror(errno));
		return OS_FAIL;
	}
	key_of(key, sizeof(key), id, SNAP_ARCHIVE);
	if ((rc = objstore_put(os, key, fd, &meta, err)) != OS_OK)
		return rc;
	json_object_set_new(man, "size", json_integer(meta.size));
	json_object_set_new(man, "sha256", json_string(sha));
	if ((text = json_dumps(man, JSON_INDENT(2) | JSON_SORT_KEYS)) ==
	    NULL) {
		snprintf(err, OS_ERR, "out of memory");
		return OS_FAIL;
	}
	key_of(key, sizeof(key), id, SNAP_MANIFEST);
	rc = objstore_put_mem(os, key, text, strlen(text), NULL, err);
	free(text);
	return rc;
}

/* The manifest of id: NULL with *rc OS_NOTFOUND, or another error. */
json_t *
snap_store_manifest(struct objstore *os, const char *id, int *rc,
    char *err)
{
	struct buf	 b;
	char		 key[OS_KEY_MAX];
	json_t		*m = NULL;
	json_error_t	 je;

	buf_init(&b, MANIFEST_MAX);
	key_of(key, sizeof(key), id, SNAP_MANIFEST);
	if ((*rc = objstore_get_mem(os, key, &b, NULL, err)) == OS_OK &&
	    ((m = json_loadb(b.data != NULL ? b.data : "", b.len, 0,
	    &je)) == NULL || !json_is_object(m) ||
	    json_string_value(json_object_get(m, "sha256")) == NULL)) {
		snprintf(err, OS_ERR, "%s: the manifest is damaged%s%s", id,
		    m == NULL ? ": " : "", m == NULL ? je.text : "");
		json_decref(m);
		m = NULL;
		*rc = OS_FAIL;
	}
	buf_free(&b);
	return m;
}

/*
 * The archive into fd, checked against the manifest's SHA-256 before
 * anything is made of it. SNAP_DAMAGED: it is not what was packed.
 */
int
snap_store_fetch(struct objstore *os, const json_t *man, int fd, char *err)
{
	const char	*id = json_string_value(json_object_get(man, "id"));
	const char	*want = json_string_value(json_object_get(man,
			    "sha256"));
	char		 key[OS_KEY_MAX], sha[65];
	struct os_meta	 meta;
	int		 rc;

	key_of(key, sizeof(key), id != NULL ? id : "", SNAP_ARCHIVE);
	if ((rc = objstore_get(os, key, fd, &meta, err)) != OS_OK)
		return rc == OS_NOTFOUND ? SNAP_DAMAGED : SNAP_STORE;
	if (objstore_sha256_fd(fd, (long long)lseek(fd, 0, SEEK_END), sha) ==
	    -1) {
		snprintf(err, OS_ERR, "cannot read the archive: %s",
		    strerror(errno));
		return SNAP_FAILED;
	}
	if (want == NULL || strcmp(sha, want) != 0) {
		snprintf(err, OS_ERR, "the archive of %s does not match its "
		    "manifest (SHA-256 %.12s…, expected %.12s…): it is "
		    "truncated or was replaced", id, sha, want != NULL ?
		    want : "none");
		return SNAP_DAMAGED;
	}
	return SNAP_OK;
}

/* Every manifest of sandbox (NULL: of all), newest first. */
json_t *
snap_store_list(struct objstore *os, const char *sandbox, char *err)
{
	struct found	 f = { .sandbox = sandbox };
	char		 prefix[SBX_NAME_MAX + 32], e2[OS_ERR];
	json_t		*a = NULL, *m;
	size_t		 i;
	int		 rc;

	snprintf(prefix, sizeof(prefix), "snapshots/%s%s", sandbox != NULL ?
	    sandbox : "", sandbox != NULL ? "-" : "");
	if (find(os, prefix, &f, err) != OS_OK || (a = json_array()) == NULL)
		goto out;
	for (i = 0; i < f.n; i++) {
		if (!f.whole[i])
			continue;
		if ((m = snap_store_manifest(os, f.ids[i], &rc, e2)) == NULL) {
			/* Gone meanwhile, or unreadable: said, not fatal. */
			if (rc != OS_NOTFOUND)
				log_warn("a snapshot is not listed", "id=%s "
				    "%s", f.ids[i], e2);
			continue;
		}
		json_array_append_new(a, m);
	}
out:
	free(f.ids);
	free(f.whole);
	return a;
}

/* Manifest first: the snapshot leaves every list at once. */
int
snap_store_delete(struct objstore *os, const char *id, char *err)
{
	char	 key[OS_KEY_MAX];
	int	 rc;

	key_of(key, sizeof(key), id, SNAP_MANIFEST);
	if ((rc = objstore_delete(os, key, err)) != OS_OK)
		return rc;
	key_of(key, sizeof(key), id, SNAP_ARCHIVE);
	return objstore_delete(os, key, err);
}

/*
 * Retention for sandbox (NULL: every sandbox, by age only): beyond the
 * keep newest (0: no count limit) or older than max_age_days (0: no age
 * limit) go; so do archives left without a manifest for a day. keep_id
 * is never removed. Returns how many went, or -1.
 */
int
snap_store_expire(struct objstore *os, const char *sandbox, long keep,
    long max_age_days, const char *keep_id, char *err)
{
	struct found	 f = { .sandbox = sandbox };
	char		 prefix[SBX_NAME_MAX + 32];
	long long	 now = wall_ms(), t;
	long		 kept = 0;
	size_t		 i;
	int		 gone = 0;
	bool		 old;

	snprintf(prefix, sizeof(prefix), "snapshots/%s%s", sandbox != NULL ?
	    sandbox : "", sandbox != NULL ? "-" : "");
	if (find(os, prefix, &f, err) != OS_OK) {
		gone = -1;
		goto out;
	}
	for (i = 0; i < f.n; i++) {
		t = snap_store_id_ms(f.ids[i]);
		old = max_age_days > 0 && now - t > max_age_days * 86400000LL;
		if (keep_id != NULL && !strcmp(f.ids[i], keep_id)) {
			kept++;
			continue;
		}
		if (!f.whole[i] && now - t < ORPHAN_MS)
			continue;	/* perhaps being put right now */
		if (f.whole[i] && !old && (sandbox == NULL || keep == 0 ||
		    ++kept <= keep))
			continue;
		if (snap_store_delete(os, f.ids[i], err) != OS_OK) {
			gone = -1;
			break;
		}
		log_info("snapshot expired", "id=%s why=%s", f.ids[i],
		    !f.whole[i] ? "no manifest" : old ? "max_age_days" :
		    "keep");
		gone++;
	}
out:
	free(f.ids);
	free(f.whole);
	return gone;
}

/* The snapshots under prefix (whole or not), newest first. */
static int
find(struct objstore *os, const char *prefix, struct found *f, char *err)
{
	struct idw	*v;
	size_t		 i, n;
	int		 rc;

	rc = objstore_list(os, prefix, found_one, f, err);
	if (rc == 1) {
		snprintf(err, OS_ERR, "out of memory, or more than %d "
		    "snapshots", KEYS_MAX);
		return OS_FAIL;
	}
	if (rc != OS_OK)
		return rc;
	if (f->n < 2)
		return OS_OK;
	if ((v = calloc(f->n, sizeof(*v))) == NULL) {
		snprintf(err, OS_ERR, "out of memory");
		return OS_FAIL;
	}
	for (i = 0; i < f->n; i++) {
		memcpy(v[i].id, f->ids[i], sizeof(v[i].id));
		v[i].whole = f->whole[i];
	}
	/* One entry per id (its two keys need not have come together),
	 * then newest first. */
	qsort(v, f->n, sizeof(*v), by_id);
	for (i = 1, n = 1; i < f->n; i++) {
		if (strcmp(v[i].id, v[n - 1].id) != 0)
			v[n++] = v[i];
		else
			v[n - 1].whole |= v[i].whole;
	}
	qsort(v, n, sizeof(*v), newest_first);
	for (i = 0; i < n; i++) {
		memcpy(f->ids[i], v[i].id, sizeof(v[i].id));
		f->whole[i] = v[i].whole;
	}
	f->n = n;
	free(v);
	return OS_OK;
}

/* "snapshots/<id>/<file>": one entry per id, marked whole by its manifest. */
static int
found_one(const char *key, const struct os_meta *m, void *arg)
{
	struct found	*f = arg;
	char		 id[SNAP_ID_MAX + 1], name[SBX_NAME_MAX + 1];
	const char	*s = key + strlen("snapshots/"), *slash;
	void		*p;

	(void)m;
	if (strncmp(key, "snapshots/", 10) != 0 ||
	    (slash = strchr(s, '/')) == NULL ||
	    (size_t)(slash - s) > SNAP_ID_MAX)
		return 0;
	memcpy(id, s, (size_t)(slash - s));
	id[slash - s] = '\0';
	if (!snap_store_id_valid(id, name, sizeof(name)) ||
	    (f->sandbox != NULL && strcmp(name, f->sandbox) != 0))
		return 0;
	/* An id's two keys usually come one after the other. */
	if (f->n == 0 || strcmp(f->ids[f->n - 1], id) != 0) {
		if (f->n == f->cap) {
			if (f->cap >= KEYS_MAX)
				return 1;
			f->cap = f->cap ? f->cap * 2 : 64;
			if ((p = realloc(f->ids, f->cap * sizeof(*f->ids))) ==
			    NULL)
				return 1;
			f->ids = p;
			if ((p = realloc(f->whole, f->cap *
			    sizeof(*f->whole))) == NULL)
				return 1;
			f->whole = p;
		}
		memcpy(f->ids[f->n], id, sizeof(id));
		f->whole[f->n++] = false;
	}
	if (!strcmp(slash + 1, SNAP_MANIFEST))
		f->whole[f->n - 1] = true;
	return 0;
}

static int
newest_first(const void *a, const void *b)
{
	long long	 ta = snap_store_id_ms(a), tb = snap_store_id_ms(b);

	if (ta != tb)
		return ta < tb ? 1 : -1;
	return -strcmp(a, b);
}

static int
by_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static long long
wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
key_of(char *out, size_t sz, const char *id, const char *file)
{
	snprintf(out, sz, "snapshots/%s/%s", id, file);
}
