/* SPDX-License-Identifier: MIT */
/*
 * skills.c: skills in the AgentSkills format (a folder with SKILL.md:
 * YAML front matter, then Markdown), as OpenClaw writes them. Folders
 * are looked for in $data/skills, then in the bundled folder (mounted
 * read-only); a name found twice is the first one's. A skill whose
 * OpenClaw requirements are not met here (metadata.openclaw, or the
 * older metadata.clawdbot / metadata.moltbot: requires.bins, anyBins,
 * env, config; os) is left out. The prompt lists each skill's name,
 * description and path; the agent reads the body when it needs it.
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

struct seen;
static void	 list_folder(const char *, struct seen *, struct buf *);
static json_t	*front_matter(const char *path);
static json_t	*node_json(yaml_document_t *, yaml_node_t *, int depth);
static bool	 eligible(json_t *fm);
static bool	 on_path(const char *bin);

static const char skills_head[] = "\n\n## Skills\nWhen a task matches a "
	"skill, read its SKILL.md (read_file) and follow it.\n";

/* The names listed so far: a name found again is skipped. */
struct seen {
	char	 names[SKILLS_MAX][64];
	size_t	 n;
};

void
skills_context(const struct agent *ag, struct buf *b)
{
	struct seen	 seen = { .n = 0 };
	char		 dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/skills", ag->data_dir);
	list_folder(dir, &seen, b);
	if (ag->skills_dir != NULL)
		list_folder(ag->skills_dir, &seen, b);
}

/* The eligible skills of one folder, as lines of the prompt. */
static void
list_folder(const char *dir, struct seen *seen, struct buf *b)
{
	char		 path[PATH_MAX * 2];
	DIR		*d;
	struct dirent	*e;
	json_t		*fm;
	const char	*name, *desc;
	size_t		 k;
	bool		 dup;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL && seen->n < SKILLS_MAX) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/SKILL.md", dir, e->d_name);
		if ((fm = front_matter(path)) == NULL)
			continue;
		name = json_string_value(json_object_get(fm, "name"));
		if (name == NULL || *name == '\0')
			name = e->d_name;
		desc = json_string_value(json_object_get(fm, "description"));
		for (dup = false, k = 0; k < seen->n && !dup; k++)
			dup = !strncmp(seen->names[k], name,
			    sizeof(seen->names[0]) - 1);
		if (!dup && eligible(fm)) {
			snprintf(seen->names[seen->n++],
			    sizeof(seen->names[0]), "%.63s", name);
			if (seen->n == 1)
				buf_puts(b, skills_head);
			buf_printf(b, "- %s: %.*s (%s)\n", name, DESC_MAX,
			    desc != NULL ? desc : "", path);
		}
		json_decref(fm);
	}
	closedir(d);
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

/* Every string of a list passes check (any: one is enough). */
static bool
all_of(json_t *list, bool (*check)(const char *), bool any)
{
	json_t	*v;
	size_t	 i;
	bool	 one = false;

	if (!json_is_array(list))
		return true;
	json_array_foreach(list, i, v) {
		bool	 ok = json_is_string(v) &&
			    check(json_string_value(v));

		if (!ok && !any)
			return false;
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

static bool
eligible(json_t *fm)
{
	json_t		*md = json_object_get(fm, "metadata"), *oc, *rq;
	const char	*keys[] = { "openclaw", "clawdbot", "moltbot" };
	size_t		 i;

	if (json_is_true(json_object_get(fm, "disable-model-invocation")))
		return false;
	for (i = 0, oc = NULL; i < 3 && oc == NULL; i++)
		oc = json_object_get(md, keys[i]);
	if (!json_is_object(oc))
		return true;
	rq = json_object_get(oc, "requires");
	/* requires.config names OpenClaw's own settings, which do not
	 * exist here: such a skill could not work. */
	return all_of(json_object_get(oc, "os"), is_linux, true) &&
	    all_of(json_object_get(rq, "bins"), on_path, false) &&
	    all_of(json_object_get(rq, "anyBins"), on_path, true) &&
	    all_of(json_object_get(rq, "env"), env_set, false) &&
	    all_of(json_object_get(rq, "config"), never, false);
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
