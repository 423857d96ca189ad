/* SPDX-License-Identifier: MIT */
/*
 * init_wpath.c: the paths of a /watch stream (init_watch.c), relative to
 * its root: which folder each inotify watch is (a table by wd), the
 * folders still to scan, and whether a glob matches a path.
 */
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"

static size_t	tab_slot(const struct wpath_tab *, int);

struct wpath_ent *
wpath_find(struct wpath_tab *t, int wd)
{
	size_t	 i;

	if (t->cap == 0)
		return NULL;
	for (i = tab_slot(t, wd); t->ent[i].wd != 0; i = (i + 1) & (t->cap -
	    1))
		if (t->ent[i].wd == wd)
			return &t->ent[i];
	return NULL;
}

/* Adds or renames (the same folder watched again gives the same wd). */
int
wpath_put(struct wpath_tab *t, int wd, const char *rel)
{
	struct wpath_ent	*e, *old;
	size_t			 i, oldcap = t->cap;
	char			*copy;

	if ((copy = strdup(rel)) == NULL)
		return -1;
	if ((e = wpath_find(t, wd)) != NULL) {
		free(e->rel);
		e->rel = copy;
		return 0;
	}
	if ((t->count + 1) * 2 > t->cap) {
		old = t->ent;
		t->cap = oldcap == 0 ? 64 : oldcap * 2;
		if ((t->ent = calloc(t->cap, sizeof(*t->ent))) == NULL) {
			t->ent = old;
			t->cap = oldcap;
			free(copy);
			return -1;
		}
		for (i = 0; i < oldcap; i++) {
			if (old[i].wd == 0)
				continue;
			e = &t->ent[tab_slot(t, old[i].wd)];
			while (e->wd != 0)
				e = &t->ent[(size_t)(e - t->ent + 1) &
				    (t->cap - 1)];
			*e = old[i];
		}
		free(old);
	}
	for (i = tab_slot(t, wd); t->ent[i].wd != 0; i = (i + 1) & (t->cap - 1))
		;
	t->ent[i].wd = wd;
	t->ent[i].rel = copy;
	t->count++;
	return 0;
}

/* Backward-shift deletion keeps every probe chain whole. */
void
wpath_del(struct wpath_tab *t, int wd)
{
	struct wpath_ent	*e;
	size_t			 i, j, k, mask = t->cap - 1;

	if ((e = wpath_find(t, wd)) == NULL)
		return;
	free(e->rel);
	i = (size_t)(e - t->ent);
	for (j = (i + 1) & mask; t->ent[j].wd != 0; j = (j + 1) & mask) {
		k = tab_slot(t, t->ent[j].wd);
		/* j stays when its home k lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->ent[i] = t->ent[j];
		i = j;
	}
	t->ent[i].wd = 0;
	t->ent[i].rel = NULL;
	t->count--;
}

/* Every entry goes; the table is empty and may be used again. */
void
wpath_clear(struct wpath_tab *t)
{
	size_t	 i;

	for (i = 0; i < t->cap; i++)
		free(t->ent[i].rel);
	free(t->ent);
	memset(t, 0, sizeof(*t));
}

int
wpath_push(struct wpath_queue *q, const char *rel)
{
	char	**v;
	size_t	 want;

	if (q->n == q->cap) {
		want = q->cap == 0 ? 16 : q->cap * 2;
		if ((v = reallocarray(q->v, want, sizeof(*v))) == NULL)
			return -1;
		q->v = v;
		q->cap = want;
	}
	if ((q->v[q->n] = strdup(rel)) == NULL)
		return -1;
	q->n++;
	return 0;
}

int
wpath_join(char *out, const char *parent, const char *name)
{
	int	 n;

	n = snprintf(out, PATH_MAX, "%s%s%s", parent, *parent ? "/" : "",
	    name);
	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/*
 * A glob matches rel (relative to the root), or any one of its
 * components, or any leading run of components. So exclude=node_modules
 * leaves out node_modules/a/b.js as the spec's example means, and
 * exclude=build/out leaves out build/out/x; include=*.py matches by base
 * name. No FNM_PATHNAME: a star crosses slashes, so a glob of "src/",
 * a star and ".py" matches src/a.py and src/x/b.py alike.
 */
bool
wpath_match(char *const *pats, size_t n, const char *rel)
{
	char		 buf[PATH_MAX];
	const char	*p, *slash;
	size_t		 i, len;

	for (i = 0; i < n; i++) {
		if (fnmatch(pats[i], rel, 0) == 0)
			return true;
		for (p = rel; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
			len = (size_t)(slash - rel);
			memcpy(buf, rel, len);
			buf[len] = '\0';
			if (fnmatch(pats[i], buf, 0) == 0)
				return true;
			len = (size_t)(slash - p);
			memcpy(buf, p, len);
			buf[len] = '\0';
			if (fnmatch(pats[i], buf, 0) == 0)
				return true;
		}
		if (p != rel && fnmatch(pats[i], p, 0) == 0)
			return true;
	}
	return false;
}

/* --- helpers ---------------------------------------------------------- */

static size_t
tab_slot(const struct wpath_tab *t, int wd)
{
	return ((uint32_t)wd * 2654435761u) & (t->cap - 1);
}
