/* SPDX-License-Identifier: MIT */
/*
 * egress_conf.c: which policy each sandbox has. Every policy of
 * egress.policies is parsed when pincerd starts or reloads (one that does
 * not parse stops the start, or the reload); a sandbox has egress.policy
 * unless the owner set another for it (PUT /api/v1/sandboxes/{name}/
 * egress), which is kept in its store row and applies from the next
 * request on. A set name that a reload removed from the config denies
 * everything and says so: a sandbox never falls back to a wider policy.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "pincer.h"
#include "egress.h"

#define NAME_MAX_LEN	63

struct pol {
	char		 name[NAME_MAX_LEN + 1];
	struct eg_policy *p;
	json_t		*src;		/* as configured, for the API */
};

struct ovr {
	char		 box[SBX_NAME_MAX + 1];
	char		 name[NAME_MAX_LEN + 1];
};

static void	 table_free(struct pol *, size_t);
static const struct pol *find_pol(const char *);
static struct ovr *find_ovr(const char *);
static const struct pol *box_pol(const char *, struct eg_verdict *, char *,
		    size_t);
static int	 ovr_load(void);

static pthread_rwlock_t	 lock = PTHREAD_RWLOCK_INITIALIZER;
static struct pol	*pols;		/* lock */
static size_t		 npols;
static char		 deflt[NAME_MAX_LEN + 1];
static struct ovr	*ovrs;		/* lock */
static size_t		 novrs;
static bool		 loaded;	/* the overrides, once */

/*
 * Parse every policy of c; "default", when not configured, is the
 * built-in one that allows nothing. Swapped in whole, or not at all.
 */
int
egress_conf_load(const struct config *c, char *err, size_t errsz)
{
	struct pol	*t;
	size_t		 i, n = 0;
	size_t		 cap = json_object_size(c->egress_policies) + 1;
	const char	*k;
	json_t		*v, *none = NULL;

	if ((t = calloc(cap, sizeof(*t))) == NULL)
		return -1;
	json_object_foreach(c->egress_policies, k, v) {
		if (strlen(k) == 0 || strlen(k) > NAME_MAX_LEN) {
			snprintf(err, errsz, "egress.policies: the name \"%.80s"
			    "\" is not 1 to %d bytes", k, NAME_MAX_LEN);
			goto fail;
		}
		snprintf(t[n].name, sizeof(t[n].name), "%s", k);
		t[n].src = json_incref(v);
		if ((t[n++].p = eg_policy_parse(k, v, err, errsz)) == NULL)
			goto fail;
	}
	if (json_object_get(c->egress_policies, "default") == NULL) {
		none = json_pack("{s:s,s:[]}", "default", "deny", "rules");
		snprintf(t[n].name, sizeof(t[n].name), "default");
		t[n].src = none;
		if ((t[n++].p = eg_policy_parse("default", none, err,
		    errsz)) == NULL)
			goto fail;
	}
	for (k = NULL, i = 0; i < n && k == NULL; i++)
		if (!strcmp(t[i].name, c->egress_policy))
			k = t[i].name;
	if (k == NULL) {
		snprintf(err, errsz, "egress.policy \"%s\" is not in "
		    "egress.policies", c->egress_policy);
		goto fail;
	}
	pthread_rwlock_wrlock(&lock);
	table_free(pols, npols);
	pols = t;
	npols = n;
	snprintf(deflt, sizeof(deflt), "%s", c->egress_policy);
	pthread_rwlock_unlock(&lock);
	return loaded ? 0 : ovr_load();
fail:
	table_free(t, n);
	return -1;
}

void
egress_conf_free(void)
{
	pthread_rwlock_wrlock(&lock);
	table_free(pols, npols);
	pols = NULL;
	npols = 0;
	free(ovrs);
	ovrs = NULL;
	novrs = 0;
	loaded = false;
	pthread_rwlock_unlock(&lock);
}

static void
table_free(struct pol *t, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (t[i].p != NULL)
			eg_policy_free(t[i].p);
		json_decref(t[i].src);
	}
	free(t);
}

/* With lock held. */
static const struct pol *
find_pol(const char *name)
{
	size_t	 i;

	for (i = 0; i < npols; i++)
		if (!strcmp(pols[i].name, name))
			return &pols[i];
	return NULL;
}

static struct ovr *
find_ovr(const char *box)
{
	size_t	 i;

	for (i = 0; i < novrs; i++)
		if (!strcmp(ovrs[i].box, box))
			return &ovrs[i];
	return NULL;
}

/* The names the owner set, from the store (the first load only). */
static int
ovr_load(void)
{
	sqlite3_stmt	*st;
	struct ovr	*o;

	if ((st = store_stmt("SELECT name, egress_policy FROM sandboxes "
	    "WHERE egress_policy IS NOT NULL")) == NULL)
		return -1;
	pthread_rwlock_wrlock(&lock);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if ((o = realloc(ovrs, (novrs + 1) * sizeof(*o))) == NULL)
			break;
		ovrs = o;
		snprintf(ovrs[novrs].box, sizeof(ovrs[novrs].box), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		snprintf(ovrs[novrs].name, sizeof(ovrs[novrs].name), "%s",
		    (const char *)sqlite3_column_text(st, 1));
		novrs++;
	}
	loaded = true;
	pthread_rwlock_unlock(&lock);
	sqlite3_reset(st);
	return 0;
}

/*
 * Under lock: the box's policy, its name in pname; NULL (v a deny with
 * the reason) when a reload removed the policy the box was set to.
 */
static const struct pol *
box_pol(const char *box, struct eg_verdict *v, char *pname, size_t pnamesz)
{
	const struct ovr	*o = find_ovr(box);
	const struct pol	*p;
	const char		*name = o != NULL ? o->name : deflt;

	memset(v, 0, sizeof(*v));
	snprintf(pname, pnamesz, "%s", name);
	if ((p = find_pol(name)) == NULL) {
		v->action = EG_DENY;
		v->rule = -1;
		snprintf(v->reason, sizeof(v->reason), "the policy \"%s\" set "
		    "for this sandbox is no longer in egress.policies", name);
	}
	return p;
}

/*
 * The box's policy decides q; pname says which (for the answer and the
 * log). set_headers and set_query come back referenced.
 */
void
egress_conf_check(const char *box, const struct eg_req *q,
    struct eg_verdict *v, char *pname, size_t pnamesz)
{
	const struct pol	*p;

	pthread_rwlock_rdlock(&lock);
	if ((p = box_pol(box, v, pname, pnamesz)) != NULL) {
		eg_policy_check(p->p, q, v);
		json_incref(v->set_headers);
		json_incref(v->set_query);
	}
	pthread_rwlock_unlock(&lock);
}

bool
egress_conf_intercepts(const char *box, const char *host, int port)
{
	const struct ovr	*o;
	const struct pol	*p;
	bool			 yes;

	pthread_rwlock_rdlock(&lock);
	o = find_ovr(box);
	p = find_pol(o != NULL ? o->name : deflt);
	yes = p != NULL && eg_policy_intercepts(p->p, host, port);
	pthread_rwlock_unlock(&lock);
	return yes;
}

bool
egress_conf_addr_ok(const char *box, const char *host, int port,
    const struct sockaddr *addr, struct eg_verdict *v, char *pname,
    size_t pnamesz)
{
	const struct pol	*p;
	bool			 ok = false;

	pthread_rwlock_rdlock(&lock);
	if ((p = box_pol(box, v, pname, pnamesz)) != NULL)
		ok = eg_policy_addr_ok(p->p, host, port, addr, v);
	pthread_rwlock_unlock(&lock);
	return ok;
}

/*
 * For the API: {policy, set, default, definition: the policy as
 * configured, policies: every name in egress.policies}.
 */
json_t *
egress_conf_get(const char *box)
{
	const struct ovr	*o;
	const struct pol	*p;
	json_t			*out, *names;
	size_t			 i;

	/* Every name, so that a client can offer the choice of a switch. */
	if ((names = json_array()) == NULL)
		return NULL;
	pthread_rwlock_rdlock(&lock);
	for (i = 0; i < npols; i++)
		json_array_append_new(names, json_string(pols[i].name));
	o = find_ovr(box);
	p = find_pol(o != NULL ? o->name : deflt);
	out = json_pack("{s:s,s:b,s:s,s:O?,s:o}", "policy", o != NULL ?
	    o->name : deflt, "set", o != NULL, "default", deflt, "definition",
	    p != NULL ? p->src : NULL, "policies", names);
	pthread_rwlock_unlock(&lock);
	return out;
}

/*
 * The box's policy from now on: name, or NULL for egress.policy again.
 * Kept in the box's row; -1 with err when the name is not a policy.
 */
int
egress_conf_set(const char *box, const char *name, char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	struct ovr	*o;
	int		 rc = -1;

	pthread_rwlock_wrlock(&lock);
	if (name != NULL && find_pol(name) == NULL) {
		snprintf(err, errsz, "\"%.80s\" is not in egress.policies",
		    name);
		goto out;
	}
	if ((st = store_stmt("UPDATE sandboxes SET egress_policy = ? "
	    "WHERE name = ?")) == NULL) {
		snprintf(err, errsz, "the store cannot be written");
		goto out;
	}
	if (name != NULL)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, box, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	if (rc == -1) {
		snprintf(err, errsz, "the store cannot be written");
		goto out;
	}
	if ((o = find_ovr(box)) != NULL && name == NULL)
		*o = ovrs[--novrs];
	else if (o != NULL)
		snprintf(o->name, sizeof(o->name), "%s", name);
	else if (name != NULL && (o = realloc(ovrs, (novrs + 1) *
	    sizeof(*o))) != NULL) {
		ovrs = o;
		snprintf(ovrs[novrs].box, sizeof(ovrs[novrs].box), "%s", box);
		snprintf(ovrs[novrs].name, sizeof(ovrs[novrs].name), "%s",
		    name);
		novrs++;
	} else if (name != NULL) {
		snprintf(err, errsz, "out of memory");
		rc = -1;
	}
out:
	pthread_rwlock_unlock(&lock);
	return rc;
}

/* The box was destroyed (its row is gone): a new one starts afresh. */
void
egress_conf_forget(const char *box)
{
	struct ovr	*o;

	pthread_rwlock_wrlock(&lock);
	if ((o = find_ovr(box)) != NULL)
		*o = ovrs[--novrs];
	pthread_rwlock_unlock(&lock);
}
