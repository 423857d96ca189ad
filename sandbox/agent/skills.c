/* SPDX-License-Identifier: MIT */
/*
 * skills.c: skills in the AgentSkills format (a folder with SKILL.md:
 * YAML front matter, then Markdown), as OpenClaw writes them. Folders
 * are looked for in $data/skills, then in the bundled folder (mounted
 * read-only); a name found twice is the first one's. A skill whose
 * OpenClaw requirements are not met here (metadata.openclaw, or the
 * older metadata.clawdbot / metadata.moltbot: requires.bins, anyBins,
 * env, config; os) is left out, and so is one the owner turned off in
 * $data/skills.disabled (one name a line). The prompt lists each skill's
 * name, description and path; the agent reads the body when it needs
 * it. `pincer-agent skills` says the same of every skill, with the
 * reason for each one left out (the admin UI's Memory page shows it).
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "agent.h"

#define SKILL_FILE_MAX	(256 * 1024)
#define SKILLS_MAX	200
#define DESC_MAX	400
#define DISABLED_MAX	(64 * 1024)

/* One skill as found, for the prompt or the listing. */
struct skill {
	const char	*name;
	const char	*desc;
	const char	*path;		/* of its SKILL.md */
	const char	*source;	/* "data" or "bundled" */
	const char	*why_not;	/* NULL: eligible */
	bool		 enabled;	/* not in skills.disabled */
	bool		 shadowed;	/* an earlier one has its name */
};
typedef void	(*skill_fn)(void *, const struct skill *);

/* The names listed so far: a name found again is skipped. */
struct seen {
	char	 names[SKILLS_MAX][64];
	size_t	 n;
};

struct walk {
	struct seen	 seen;
	struct buf	 disabled;	/* "\nname\nname\n" */
	skill_fn	 fn;
	void		*arg;
};

static void	 walk_all(const struct agent *, skill_fn, void *);
static void	 walk_folder(const char *, const char *, struct walk *);
static void	 load_disabled(const struct agent *, struct buf *);
static json_t	*front_matter(const char *path);
static json_t	*node_json(yaml_document_t *, yaml_node_t *, int depth);
static const char *why_not(json_t *fm, char *, size_t);
static bool	 on_path(const char *bin);

static const char skills_head[] = "\n\n## Skills\nWhen a task matches a "
	"skill, read its SKILL.md (read_file) and follow it.\n";

struct prompt {
	struct buf	*b;
	size_t		 n;	/* lines so far (the head before the first) */
};

static void
prompt_line(void *arg, const struct skill *sk)
{
	struct prompt	*p = arg;

	if (sk->why_not != NULL || !sk->enabled || sk->shadowed)
		return;
	if (p->n++ == 0)
		buf_puts(p->b, skills_head);
	buf_printf(p->b, "- %s: %.*s (%s)\n", sk->name, DESC_MAX, sk->desc,
	    sk->path);
}

void
skills_context(const struct agent *ag, struct buf *b)
{
	struct prompt	 p = { .b = b, .n = 0 };

	walk_all(ag, prompt_line, &p);
}

static void
list_one(void *arg, const struct skill *sk)
{
	json_t	*o = json_pack("{s:s,s:s,s:s,s:s,s:b,s:b,s:b}", "name",
		    sk->name, "description", sk->desc, "path", sk->path,
		    "source", sk->source, "eligible", sk->why_not == NULL,
		    "enabled", sk->enabled, "shadowed", sk->shadowed);

	json_object_set_new(o, "reason", sk->why_not != NULL ?
	    json_string(sk->why_not) : json_null());
	json_array_append_new(arg, o);
}

/*
 * `pincer-agent skills`: every skill found, as {"skills": [{name,
 * description, path, source, eligible, reason, enabled, shadowed}]}.
 */
int
skills_print(const struct agent *ag)
{
	json_t	*a = json_array(), *o;
	char	*s;

	walk_all(ag, list_one, a);
	o = json_pack("{s:o}", "skills", a);
	json_object_set_new(o, "disabled_file", json_sprintf(
	    "%s/skills.disabled", ag->data_dir));
	/* Flushed now: whatever happens on the way out, the listing is
	 * whole (the admin UI reads it through the exec API). */
	if ((s = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER)) != NULL)
		puts(s);
	fflush(stdout);
	free(s);
	json_decref(o);
	return 0;
}

static void
walk_all(const struct agent *ag, skill_fn fn, void *arg)
{
	struct walk	*w = calloc(1, sizeof(*w));
	char		 dir[PATH_MAX];

	if (w == NULL)
		return;
	w->fn = fn;
	w->arg = arg;
	load_disabled(ag, &w->disabled);
	snprintf(dir, sizeof(dir), "%s/skills", ag->data_dir);
	walk_folder(dir, "data", w);
	if (ag->skills_dir != NULL)
		walk_folder(ag->skills_dir, "bundled", w);
	buf_free(&w->disabled);
	free(w);
}

/* Every skill of one folder, in name order so the listing is stable. */
static void
walk_folder(const char *dir, const char *source, struct walk *w)
{
	char		 path[PATH_MAX * 2], why[256], key[80];
	struct dirent	**ents = NULL;
	struct skill	 sk;
	json_t		*fm;
	int		 i, n;
	size_t		 k;

	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0)
		return;
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] == '.' || w->seen.n >= SKILLS_MAX)
			continue;
		snprintf(path, sizeof(path), "%s/%s/SKILL.md", dir,
		    ents[i]->d_name);
		if (access(path, F_OK) == -1)
			continue;
		memset(&sk, 0, sizeof(sk));
		sk.path = path;
		sk.source = source;
		fm = front_matter(path);
		sk.name = json_string_value(json_object_get(fm, "name"));
		if (sk.name == NULL || *sk.name == '\0')
			sk.name = ents[i]->d_name;
		sk.desc = json_string_value(json_object_get(fm,
		    "description"));
		if (sk.desc == NULL)
			sk.desc = "";
		sk.why_not = fm == NULL ? "SKILL.md has no YAML front matter "
		    "(or it is not valid YAML)" : why_not(fm, why, sizeof(why));
		snprintf(key, sizeof(key), "\n%.63s\n", sk.name);
		sk.enabled = w->disabled.len == 0 ||
		    strstr(w->disabled.data, key) == NULL;
		for (k = 0; k < w->seen.n && !sk.shadowed; k++)
			sk.shadowed = !strncmp(w->seen.names[k], sk.name,
			    sizeof(w->seen.names[0]) - 1);
		w->fn(w->arg, &sk);
		if (!sk.shadowed && sk.why_not == NULL && sk.enabled)
			snprintf(w->seen.names[w->seen.n++],
			    sizeof(w->seen.names[0]), "%.63s", sk.name);
		json_decref(fm);
	}
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
}

/*
 * $data/skills.disabled: a skill name a line ('#' starts a comment);
 * kept as "\nname\n…" so a lookup is one strstr. No file: none off.
 */
static void
load_disabled(const struct agent *ag, struct buf *out)
{
	char		 path[PATH_MAX], why[64], *line, *save = NULL;
	struct buf	 text;

	buf_init(out, DISABLED_MAX * 2);
	buf_init(&text, DISABLED_MAX);
	snprintf(path, sizeof(path), "%s/skills.disabled", ag->data_dir);
	if (agent_slurp(path, DISABLED_MAX, &text, why, sizeof(why)) == 0 &&
	    buf_append(&text, "", 1) == 0) {
		buf_puts(out, "\n");
		for (line = strtok_r(text.data, "\r\n", &save); line != NULL;
		    line = strtok_r(NULL, "\r\n", &save)) {
			line[strcspn(line, "#")] = '\0';
			while (*line == ' ' || *line == '\t')
				line++;
			line[strcspn(line, " \t")] = '\0';
			if (*line != '\0')
				buf_printf(out, "%s\n", line);
		}
	}
	buf_free(&text);
}

/* The front matter as JSON, or NULL (no file, none, or not YAML). */
static json_t *
front_matter(const char *path)
{
	struct buf		 text;
	char			 why[PATH_MAX + 128], *start, *end;
	yaml_parser_t		 p;
	yaml_document_t		 doc;
	yaml_node_t		*root;
	json_t			*j = NULL;

	buf_init(&text, SKILL_FILE_MAX);
	if (agent_slurp(path, SKILL_FILE_MAX, &text, why, sizeof(why)) == -1 ||
	    buf_append(&text, "", 1) == -1 || strncmp(text.data, "---", 3) ||
	    (start = strchr(text.data, '\n')) == NULL) {
		buf_free(&text);
		return NULL;
	}
	start++;
	/* The closing line: "---" (or YAML's "...") alone. */
	for (end = start; end != NULL && *end != '\0'; ) {
		if ((!strncmp(end, "---", 3) || !strncmp(end, "...", 3)) &&
		    (end[3] == '\n' || end[3] == '\r' || end[3] == '\0'))
			break;
		if ((end = strchr(end, '\n')) != NULL)
			end++;
	}
	if (end == NULL || *end == '\0') {
		buf_free(&text);
		return NULL;
	}
	if (!yaml_parser_initialize(&p)) {
		buf_free(&text);
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)start,
	    (size_t)(end - start));
	if (yaml_parser_load(&p, &doc)) {
		if ((root = yaml_document_get_root_node(&doc)) != NULL &&
		    root->type == YAML_MAPPING_NODE)
			j = node_json(&doc, root, 0);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&p);
	buf_free(&text);
	return j;
}

/* Scalars stay strings, except plain true/false (booleans). */
static json_t *
node_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
	yaml_node_pair_t	*pr;
	yaml_node_item_t	*it;
	yaml_node_t		*k, *v;
	json_t			*o;
	const char		*s;

	if (n == NULL || depth > 32)
		return json_null();
	switch (n->type) {
	case YAML_SCALAR_NODE:
		s = (const char *)n->data.scalar.value;
		if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (!strcmp(s, "true") || !strcmp(s, "false")))
			return json_boolean(!strcmp(s, "true"));
		return json_stringn(s, n->data.scalar.length);
	case YAML_SEQUENCE_NODE:
		o = json_array();
		for (it = n->data.sequence.items.start;
		    it < n->data.sequence.items.top; it++)
			json_array_append_new(o, node_json(doc,
			    yaml_document_get_node(doc, *it), depth + 1));
		return o;
	case YAML_MAPPING_NODE:
		o = json_object();
		for (pr = n->data.mapping.pairs.start;
		    pr < n->data.mapping.pairs.top; pr++) {
			k = yaml_document_get_node(doc, pr->key);
			v = yaml_document_get_node(doc, pr->value);
			if (k != NULL && k->type == YAML_SCALAR_NODE)
				json_object_set_new(o,
				    (const char *)k->data.scalar.value,
				    node_json(doc, v, depth + 1));
		}
		return o;
	default:
		return json_null();
	}
}

/*
 * Every string of a list passes check (any: one is enough); *bad is the
 * first that fails (for any: NULL, all failed).
 */
static bool
all_of(json_t *list, bool (*check)(const char *), bool any,
    const char **bad)
{
	json_t	*v;
	size_t	 i;
	bool	 one = false;

	*bad = NULL;
	if (!json_is_array(list))
		return true;
	json_array_foreach(list, i, v) {
		bool	 ok = json_is_string(v) &&
			    check(json_string_value(v));

		if (!ok && !any) {
			*bad = json_is_string(v) ? json_string_value(v) : "?";
			return false;
		}
		one = one || ok;
	}
	return !any || one || json_array_size(list) == 0;
}

static bool
env_set(const char *name)
{
	const char	*v = getenv(name);

	return v != NULL && *v != '\0';
}

static bool
is_linux(const char *os)
{
	return !strcmp(os, "linux");
}

static bool
never(const char *unused)
{
	(void)unused;
	return false;
}

/* A list's strings joined by ", " into out. */
static const char *
joined(json_t *list, char *out, size_t outsz)
{
	json_t	*v;
	size_t	 i, n = 0;

	out[0] = '\0';
	json_array_foreach(list, i, v)
		if (json_is_string(v) && n < outsz)
			n += (size_t)snprintf(out + n, outsz - n, "%s%s",
			    n ? ", " : "", json_string_value(v));
	return out;
}

/* NULL if the skill may be offered here, else why not, in words. */
static const char *
why_not(json_t *fm, char *out, size_t outsz)
{
	json_t		*md = json_object_get(fm, "metadata"), *oc, *rq;
	const char	*keys[] = { "openclaw", "clawdbot", "moltbot" }, *bad;
	char		 list[160];
	size_t		 i;

	if (json_is_true(json_object_get(fm, "disable-model-invocation")))
		return "its front matter says disable-model-invocation: true";
	for (i = 0, oc = NULL; i < 3 && oc == NULL; i++)
		oc = json_object_get(md, keys[i]);
	if (!json_is_object(oc))
		return NULL;
	rq = json_object_get(oc, "requires");
	if (!all_of(json_object_get(oc, "os"), is_linux, true, &bad))
		snprintf(out, outsz, "made for another system (os: %s)",
		    joined(json_object_get(oc, "os"), list, sizeof(list)));
	else if (!all_of(json_object_get(rq, "bins"), on_path, false, &bad))
		snprintf(out, outsz, "needs the program %s, which is not on "
		    "PATH", bad);
	else if (!all_of(json_object_get(rq, "anyBins"), on_path, true, &bad))
		snprintf(out, outsz, "needs one of the programs %s; none is "
		    "on PATH", joined(json_object_get(rq, "anyBins"), list,
		    sizeof(list)));
	else if (!all_of(json_object_get(rq, "env"), env_set, false, &bad))
		snprintf(out, outsz, "needs the environment variable %s", bad);
	/* requires.config names OpenClaw's own settings, which do not
	 * exist here: such a skill could not work. */
	else if (!all_of(json_object_get(rq, "config"), never, false, &bad))
		snprintf(out, outsz, "needs OpenClaw's setting %s, which "
		    "pincer does not have", bad);
	else
		return NULL;
	return out;
}

/* An executable of that name in $PATH. */
static bool
on_path(const char *bin)
{
	const char	*path = getenv("PATH"), *p, *q;
	char		 full[PATH_MAX];
	struct stat	 sb;

	if (strchr(bin, '/') != NULL || *bin == '\0')
		return false;
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p != '\0'; p = *q ? q + 1 : q) {
		q = p + strcspn(p, ":");
		snprintf(full, sizeof(full), "%.*s/%s", (int)(q - p), p, bin);
		if (stat(full, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    access(full, X_OK) == 0)
			return true;
	}
	return false;
}
