#include "reconciler/base/common.h"
#include "schema/node.h"
#include "reconciler/base/strmap.h"

#include <yaml.h>

rc_node *rc_node_new_scalar(const char *s, size_t len, bool quoted, rc_loc loc)
{
	rc_node *n = rc_calloc(1, sizeof(*n));

	n->kind = RC_NODE_SCALAR;
	n->loc = loc;
	n->str = rc_strndup(s, len);
	n->len = len;
	n->quoted = quoted;
	n->span = 1;
	n->weight = 1;
	return n;
}

rc_node *rc_node_new_map(rc_loc loc)
{
	rc_node *n = rc_calloc(1, sizeof(*n));

	n->kind = RC_NODE_MAP;
	n->loc = loc;
	n->span = 1;
	n->weight = 1;
	return n;
}

rc_node *rc_node_new_seq(rc_loc loc)
{
	rc_node *n = rc_node_new_map(loc);

	n->kind = RC_NODE_SEQ;
	return n;
}

void rc_node_free(rc_node *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->n; i++) {
		if (n->keys)
			rc_node_free(n->keys[i]);
		rc_node_free(n->vals[i]);
	}
	free(n->keys);
	free(n->vals);
	free(n->str);
	free(n);
}

static void reserve(rc_node *n, size_t need)
{
	size_t cap = n->cap;

	if (need <= cap)
		return;
	RC_GROW(n->vals, cap, need);
	if (n->kind == RC_NODE_MAP) {
		size_t kcap = n->cap;

		RC_GROW(n->keys, kcap, need);
	}
	n->cap = cap;
}

void rc_node_map_append(rc_node *map, rc_node *key, rc_node *val)
{
	reserve(map, map->n + 1);
	map->keys[map->n] = key;
	map->vals[map->n] = val;
	map->n++;
	map->weight += key->weight + val->weight;
}

void rc_node_seq_append(rc_node *seq, rc_node *val)
{
	reserve(seq, seq->n + 1);
	seq->vals[seq->n++] = val;
	seq->weight += val->weight;
}

static ssize_t find_key(const rc_node *map, const char *key)
{
	size_t i;

	if (!map || map->kind != RC_NODE_MAP)
		return -1;
	for (i = 0; i < map->n; i++)
		if (!strcmp(map->keys[i]->str, key))
			return (ssize_t)i;
	return -1;
}

rc_node *rc_node_get(const rc_node *map, const char *key)
{
	ssize_t i = find_key(map, key);

	return i < 0 ? NULL : map->vals[i];
}

rc_node *rc_node_get_key(const rc_node *map, const char *key)
{
	ssize_t i = find_key(map, key);

	return i < 0 ? NULL : map->keys[i];
}

bool rc_node_remove(rc_node *map, const char *key)
{
	ssize_t i = find_key(map, key);

	if (i < 0)
		return false;
	map->weight -= map->keys[i]->weight + map->vals[i]->weight;
	rc_node_free(map->keys[i]);
	rc_node_free(map->vals[i]);
	memmove(&map->keys[i], &map->keys[i + 1],
		(map->n - (size_t)i - 1) * sizeof(rc_node *));
	memmove(&map->vals[i], &map->vals[i + 1],
		(map->n - (size_t)i - 1) * sizeof(rc_node *));
	map->n--;
	return true;
}

rc_node *rc_node_copy(const rc_node *n)
{
	rc_node *c;
	size_t i;

	if (!n)
		return NULL;
	if (n->kind == RC_NODE_SCALAR) {
		c = rc_node_new_scalar(n->str, n->len, n->quoted, n->loc);
		c->span = n->span;
		return c;
	}
	c = n->kind == RC_NODE_MAP ? rc_node_new_map(n->loc)
				   : rc_node_new_seq(n->loc);
	c->span = n->span;
	reserve(c, n->n);
	for (i = 0; i < n->n; i++) {
		if (n->kind == RC_NODE_MAP)
			rc_node_map_append(c, rc_node_copy(n->keys[i]),
					   rc_node_copy(n->vals[i]));
		else
			rc_node_seq_append(c, rc_node_copy(n->vals[i]));
	}
	return c;
}

void rc_node_drop_nulls(rc_node *n)
{
	size_t i, w = 0;

	if (!n || n->kind == RC_NODE_SCALAR)
		return;
	for (i = 0; i < n->n; i++) {
		if (n->kind == RC_NODE_MAP && rc_node_is_null(n->vals[i])) {
			n->weight -= n->keys[i]->weight + n->vals[i]->weight;
			rc_node_free(n->keys[i]);
			rc_node_free(n->vals[i]);
			continue;
		}
		rc_node_drop_nulls(n->vals[i]);
		if (n->keys)
			n->keys[w] = n->keys[i];
		n->vals[w++] = n->vals[i];
	}
	n->n = w;
}

static rc_node *merge(const rc_node *base, const rc_node *over)
{
	rc_node *out;
	size_t i;

	if (!base || base->kind != RC_NODE_MAP || over->kind != RC_NODE_MAP) {
		out = rc_node_copy(over);
		rc_node_drop_nulls(out);
		return out;
	}
	out = rc_node_new_map(over->loc);
	out->span = over->span;
	for (i = 0; i < base->n; i++) {
		const rc_node *ov = rc_node_get(over, base->keys[i]->str);

		if (!ov) {
			rc_node *v = rc_node_copy(base->vals[i]);

			if (rc_node_is_null(v)) {
				rc_node_free(v);
				continue;
			}
			rc_node_drop_nulls(v);
			rc_node_map_append(out, rc_node_copy(base->keys[i]), v);
		} else if (!rc_node_is_null(ov)) {
			rc_node_map_append(out,
					   rc_node_copy(rc_node_get_key(
						   over, base->keys[i]->str)),
					   merge(base->vals[i], ov));
		}
	}
	for (i = 0; i < over->n; i++) {
		if (rc_node_get(base, over->keys[i]->str) ||
		    rc_node_is_null(over->vals[i]))
			continue;
		rc_node_map_append(out, rc_node_copy(over->keys[i]),
				   merge(NULL, over->vals[i]));
	}
	return out;
}

rc_node *rc_node_merge(const rc_node *base, const rc_node *overlay)
{
	if (!overlay) {
		rc_node *c = rc_node_copy(base);

		rc_node_drop_nulls(c);
		return c;
	}
	return merge(base, overlay);
}

rc_scalar_type rc_node_scalar_type(const rc_node *n)
{
	const char *s;
	char *end;

	if (!n || n->kind != RC_NODE_SCALAR)
		return RC_SCALAR_STR;
	if (n->quoted)
		return RC_SCALAR_STR;
	s = n->str;
	if (!*s || !strcmp(s, "~") || !strcmp(s, "null") ||
	    !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return RC_SCALAR_NULL;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") ||
	    !strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return RC_SCALAR_BOOL;
	/* [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+ */
	{
		const char *p = s;

		if (*p == '-' || *p == '+')
			p++;
		if (*p && strspn(p, "0123456789") == strlen(p))
			return RC_SCALAR_INT;
		if ((!strncmp(s, "0o", 2) && s[2] &&
		     strspn(s + 2, "01234567") == strlen(s + 2)) ||
		    (!strncmp(s, "0x", 2) && s[2] &&
		     strspn(s + 2, "0123456789abcdefABCDEF") == strlen(s + 2)))
			return RC_SCALAR_INT;
	}
	if (!strcmp(s, ".inf") || !strcmp(s, "-.inf") || !strcmp(s, "+.inf") ||
	    !strcmp(s, ".nan") || !strcmp(s, ".NaN"))
		return RC_SCALAR_FLOAT;
	if (strpbrk(s, "0123456789") && strspn(s, "+-.0123456789eE") == strlen(s)) {
		errno = 0;
		(void)strtod(s, &end);
		if (*end == '\0' && errno == 0 && s[strlen(s) - 1] != '.' &&
		    strcmp(s, "."))
			return RC_SCALAR_FLOAT;
		if (*end == '\0' && errno == 0)
			return RC_SCALAR_FLOAT;
	}
	return RC_SCALAR_STR;
}

bool rc_node_is_null(const rc_node *n)
{
	return n && n->kind == RC_NODE_SCALAR &&
	       rc_node_scalar_type(n) == RC_SCALAR_NULL;
}

const char *rc_node_kind_name(const rc_node *n)
{
	if (!n)
		return "nothing";
	switch (n->kind) {
	case RC_NODE_MAP:
		return "a map";
	case RC_NODE_SEQ:
		return "a list";
	default:
		break;
	}
	switch (rc_node_scalar_type(n)) {
	case RC_SCALAR_NULL:
		return "null";
	case RC_SCALAR_BOOL:
		return "a boolean";
	case RC_SCALAR_INT:
		return "an integer";
	case RC_SCALAR_FLOAT:
		return "a number";
	default:
		return "a string";
	}
}

bool rc_utf8_valid(const char *text, size_t len, int *line, int *col)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = 0;
	int l = 1, c = 1;

	while (i < len) {
		unsigned char b = p[i];
		size_t need;
		uint32_t cp;

		if (b < 0x80) {
			if (b == 0)
				goto bad;
			i++;
			if (b == '\n') {
				l++;
				c = 1;
			} else {
				c++;
			}
			continue;
		}
		if (b >= 0xC2 && b <= 0xDF) {
			need = 1;
			cp = b & 0x1F;
		} else if (b >= 0xE0 && b <= 0xEF) {
			need = 2;
			cp = b & 0x0F;
		} else if (b >= 0xF0 && b <= 0xF4) {
			need = 3;
			cp = b & 0x07;
		} else {
			goto bad;
		}
		if (i + need >= len)
			goto bad;
		for (size_t k = 1; k <= need; k++) {
			if (i + k >= len || (p[i + k] & 0xC0) != 0x80)
				goto bad;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		    (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
			goto bad;
		i += need + 1;
		c++;
	}
	return true;
bad:
	*line = l;
	*col = c;
	return false;
}

/* ---- the parser ---- */

typedef struct {
	char *name;
	rc_node *node; /* NULL while the anchored collection is open */
} anchor;

typedef struct {
	rc_node *node;
	rc_strmap *index;     /* maps with many keys: key -> value */
	rc_node *pending_key; /* maps: key read, value not yet */
	bool drop_value;      /* the pending key was refused: drop its value */
	rc_node **merges;     /* maps: values of '<<' keys, applied at end */
	size_t nmerges, capmerges;
	char *anchor;
} frame;

typedef struct {
	const char *file;
	rc_diags *diags;
	anchor *anchors;
	size_t nanchors, capanchors;
	frame *stack;
	size_t depth, capstack;
	size_t nodes; /* nodes made in this document, aliases expanded */
	rc_node **graveyard; /* dropped nodes an anchor may still point at */
	size_t ngrave, capgrave;
	bool failed;
} parser;

/* Whether the parser is inside a map value where secrets are written
 * (reconcile's `secrets`, a Kubernetes Secret's `data`/`stringData`):
 * diagnostics there never show their source line's value. */
static bool in_secrets(const parser *p)
{
	for (size_t i = 0; i < p->depth; i++) {
		const rc_node *k = p->stack[i].pending_key;

		if (k && (!strcmp(k->str, "secrets") || !strcmp(k->str, "data") ||
			  !strcmp(k->str, "stringData")))
			return true;
	}
	return false;
}

#define P_ERROR(p, loc, span, ...)                                       \
	rc_diags_add((p)->diags, RC_DIAG_ERROR, (loc), (span),            \
		     in_secrets(p), __VA_ARGS__)

static rc_loc mark_loc(const parser *p, yaml_mark_t m)
{
	rc_loc loc = {p->file, (int)m.line + 1, (int)m.column + 1};

	return loc;
}

static int mark_span(yaml_mark_t a, yaml_mark_t b)
{
	if (a.line != b.line || b.column <= a.column)
		return 1;
	return (int)(b.column - a.column);
}

static void set_anchor(parser *p, const char *name, rc_node *node)
{
	size_t i;

	for (i = 0; i < p->nanchors; i++) {
		if (!strcmp(p->anchors[i].name, name)) {
			p->anchors[i].node = node; /* redefinition: last wins */
			return;
		}
	}
	RC_GROW(p->anchors, p->capanchors, p->nanchors + 1);
	p->anchors[p->nanchors].name = rc_strdup(name);
	p->anchors[p->nanchors].node = node;
	p->nanchors++;
}

static void clear_anchors(parser *p)
{
	size_t i;

	for (i = 0; i < p->nanchors; i++)
		free(p->anchors[i].name);
	p->nanchors = 0;
}

static void bury(parser *p, rc_node *n)
{
	RC_GROW(p->graveyard, p->capgrave, p->ngrave + 1);
	p->graveyard[p->ngrave++] = n;
}

static bool is_merge_key(const rc_node *k)
{
	return k->kind == RC_NODE_SCALAR && !k->quoted && !strcmp(k->str, "<<");
}

/* The key node named key in the open map, or NULL. Maps with more than a
 * few keys get an index, so that checking duplicates stays linear. */
static const rc_node *find_key_node(frame *f, const char *key)
{
	size_t i;

	if (!f->index && f->node->n >= 16) {
		f->index = rc_calloc(1, sizeof(rc_strmap));
		for (i = 0; i < f->node->n; i++)
			rc_strmap_put(f->index, f->node->keys[i]->str,
				      f->node->keys[i]);
	}
	if (f->index)
		return rc_strmap_get(f->index, key);
	for (i = 0; i < f->node->n; i++)
		if (!strcmp(f->node->keys[i]->str, key))
			return f->node->keys[i];
	return NULL;
}

static void free_index(frame *f)
{
	if (f->index) {
		rc_strmap_release(f->index);
		free(f->index);
		f->index = NULL;
	}
}

/* Adds a finished node to the open collection (or returns it as root). */
static void attach(parser *p, rc_node *node, rc_node **root)
{
	const rc_node *first;
	frame *f;

	if (p->depth == 0) {
		*root = node;
		return;
	}
	f = &p->stack[p->depth - 1];
	if (f->node->kind == RC_NODE_SEQ) {
		rc_node_seq_append(f->node, node);
		return;
	}
	if (!f->pending_key) {
		if (node->kind != RC_NODE_SCALAR) {
			P_ERROR(p, node->loc, 1,
				      "a map key must be a scalar, not %s",
				      rc_node_kind_name(node));
			p->failed = true;
			/* keep the tree well-formed: use a placeholder key */
			f->pending_key = rc_node_new_scalar("?", 1, true,
							    node->loc);
			f->drop_value = true;
			bury(p, node);
			return;
		}
		f->pending_key = node;
		return;
	}
	if (f->drop_value) {
		bury(p, f->pending_key);
		bury(p, node);
		f->pending_key = NULL;
		f->drop_value = false;
		return;
	}
	if (is_merge_key(f->pending_key)) {
		RC_GROW(f->merges, f->capmerges, f->nmerges + 1);
		f->merges[f->nmerges++] = node;
		bury(p, f->pending_key);
		f->pending_key = NULL;
		return;
	}
	first = find_key_node(f, f->pending_key->str);
	if (first) {
		P_ERROR(p, f->pending_key->loc,
			      f->pending_key->span,
			      "duplicate key '%s' (first at line %d)",
			      f->pending_key->str, first->loc.line);
		p->failed = true;
		bury(p, f->pending_key);
		bury(p, node);
		f->pending_key = NULL;
		return;
	}
	rc_node_map_append(f->node, f->pending_key, node);
	if (f->index)
		rc_strmap_put(f->index, f->pending_key->str, f->pending_key);
	f->pending_key = NULL;
}

static void apply_merges(parser *p, frame *f)
{
	size_t m, i, j;

	for (m = 0; m < f->nmerges; m++) {
		rc_node *src = f->merges[m];
		rc_node **maps = &src;
		size_t nmaps = 1;

		if (src->kind == RC_NODE_SEQ) {
			maps = src->vals;
			nmaps = src->n;
		}
		for (j = 0; j < nmaps; j++) {
			rc_node *mp = maps[j];

			if (mp->kind != RC_NODE_MAP) {
				P_ERROR(p, mp->loc, mp->span,
					      "a merge key '<<' takes a map or a "
					      "list of maps, not %s",
					      rc_node_kind_name(mp));
				p->failed = true;
				continue;
			}
			for (i = 0; i < mp->n; i++) {
				if (rc_node_get(f->node, mp->keys[i]->str))
					continue;
				rc_node_map_append(f->node,
						   rc_node_copy(mp->keys[i]),
						   rc_node_copy(mp->vals[i]));
			}
		}
		bury(p, src);
	}
	free(f->merges);
	f->merges = NULL;
	f->nmerges = f->capmerges = 0;
}

static bool tag_is_str(const yaml_char_t *tag)
{
	return tag && !strcmp((const char *)tag, "tag:yaml.org,2002:str");
}

static bool tag_ok(parser *p, const yaml_char_t *tag, yaml_mark_t m,
		   const char *expected)
{
	char want[64];

	if (!tag || !strcmp((const char *)tag, "!"))
		return true;
	snprintf(want, sizeof(want), "tag:yaml.org,2002:%s", expected);
	if (!strcmp((const char *)tag, want))
		return true;
	if (!strcmp(expected, "str") || !strcmp(expected, "scalar")) {
		static const char *scalar_tags[] = {"str", "int", "bool",
						    "null", "float"};
		for (size_t i = 0; i < RC_ARRAY_SIZE(scalar_tags); i++) {
			snprintf(want, sizeof(want), "tag:yaml.org,2002:%s",
				 scalar_tags[i]);
			if (!strcmp((const char *)tag, want))
				return true;
		}
	}
	P_ERROR(p, mark_loc(p, m), 1,
		      "unsupported YAML tag '%s'", (const char *)tag);
	p->failed = true;
	return false;
}

static bool count_nodes(parser *p, size_t n, yaml_mark_t m)
{
	if (p->nodes + n > RC_YAML_MAX_NODES) {
		if (!p->failed)
			P_ERROR(p, mark_loc(p, m), 1,
				      "document too large: more than %zu nodes "
				      "once aliases are expanded",
				      RC_YAML_MAX_NODES);
		p->failed = true;
		return false;
	}
	p->nodes += n;
	return true;
}

static void free_stack(parser *p)
{
	while (p->depth > 0) {
		frame *f = &p->stack[--p->depth];

		free_index(f);
		rc_node_free(f->node);
		rc_node_free(f->pending_key);
		for (size_t i = 0; i < f->nmerges; i++)
			rc_node_free(f->merges[i]);
		free(f->merges);
		free(f->anchor);
	}
}

int rc_yaml_parse(rc_node ***docs_out, size_t *ndocs_out, const char *file,
		  const char *text, size_t len, rc_diags *diags)
{
	yaml_parser_t yp;
	yaml_event_t ev;
	parser p;
	rc_node **docs = NULL, *root = NULL;
	size_t ndocs = 0, capdocs = 0;
	bool done = false, in_doc = false;
	int line, col, rc = 0;

	*docs_out = NULL;
	*ndocs_out = 0;
	memset(&p, 0, sizeof(p));
	p.file = file;
	p.diags = diags;

	if (len > RC_YAML_MAX_FILE_SIZE) {
		rc_loc loc = {file, 0, 0};

		P_ERROR(&p, loc, 1,
			      "file too large: %zu bytes (the limit is %zu)",
			      len, RC_YAML_MAX_FILE_SIZE);
		return -1;
	}
	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
		/* keep the BOM for libyaml, which skips it */
	} else if (len >= 2 && ((unsigned char)text[0] == 0xFE ||
				(unsigned char)text[0] == 0xFF)) {
		rc_loc loc = {file, 1, 1};

		P_ERROR(&p, loc, 1, "file is not UTF-8 (UTF-16?)");
		return -1;
	}
	if (memchr(text, '\0', len)) {
		const char *nul = memchr(text, '\0', len), *q;
		rc_loc loc = {file, 1, 1};

		for (q = text; q < nul; q++) {
			if (*q == '\n') {
				loc.line++;
				loc.col = 1;
			} else if (((unsigned char)*q & 0xC0) != 0x80) {
				loc.col++;
			}
		}
		rc_diags_add(diags, RC_DIAG_ERROR, loc, 1, true,
			     "NUL byte (not allowed in a configuration file)");
		return -1;
	}
	if (!rc_utf8_valid(text, len, &line, &col)) {
		rc_loc loc = {file, line, col};

		rc_diags_add(diags, RC_DIAG_ERROR, loc, 1, true,
			     "invalid UTF-8");
		return -1;
	}

	yaml_parser_initialize(&yp);
	yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
	yaml_parser_set_encoding(&yp, YAML_UTF8_ENCODING);

	while (!done) {
		if (!yaml_parser_parse(&yp, &ev)) {
			rc_loc loc = mark_loc(&p, yp.problem_mark);

			if (yp.context)
				P_ERROR(&p, loc, 1, "%s %s",
					      yp.problem ? yp.problem
							 : "syntax error",
					      yp.context);
			else
				P_ERROR(&p, loc, 1, "%s",
					      yp.problem ? yp.problem
							 : "syntax error");
			rc = -1;
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			root = NULL;
			in_doc = true;
			p.nodes = 0;
			clear_anchors(&p);
			break;
		case YAML_DOCUMENT_END_EVENT:
			RC_GROW(docs, capdocs, ndocs + 1);
			docs[ndocs++] = root;
			root = NULL;
			in_doc = false;
			break;
		case YAML_SCALAR_EVENT: {
			rc_node *n;
			bool quoted = ev.data.scalar.style !=
					      YAML_PLAIN_SCALAR_STYLE ||
				      tag_is_str(ev.data.scalar.tag);

			tag_ok(&p, ev.data.scalar.tag, ev.start_mark, "scalar");
			if (!count_nodes(&p, 1, ev.start_mark)) {
				rc = -1;
				done = true;
				break;
			}
			n = rc_node_new_scalar(
				(const char *)ev.data.scalar.value,
				ev.data.scalar.length, quoted,
				mark_loc(&p, ev.start_mark));
			n->span = mark_span(ev.start_mark, ev.end_mark);
			if (memchr(ev.data.scalar.value, '\0',
				   ev.data.scalar.length)) {
				P_ERROR(&p, n->loc, n->span,
					      "NUL character in a scalar");
				p.failed = true;
			}
			if (ev.data.scalar.anchor)
				set_anchor(&p, (const char *)ev.data.scalar.anchor,
					   n);
			attach(&p, n, &root);
			break;
		}
		case YAML_ALIAS_EVENT: {
			const char *name = (const char *)ev.data.alias.anchor;
			rc_node *target = NULL, *n;
			bool known = false;
			size_t i;

			for (i = 0; i < p.nanchors; i++) {
				if (!strcmp(p.anchors[i].name, name)) {
					target = p.anchors[i].node;
					known = true;
				}
			}
			if (!known || !target) {
				P_ERROR(&p, mark_loc(&p, ev.start_mark),
					      mark_span(ev.start_mark,
							ev.end_mark),
					      known ? "alias '*%s' refers to a "
						      "node that contains it"
						    : "unknown alias '*%s'",
					      name);
				rc = -1;
				done = true;
				break;
			}
			if (!count_nodes(&p, target->weight, ev.start_mark)) {
				rc = -1;
				done = true;
				break;
			}
			n = rc_node_copy(target);
			attach(&p, n, &root);
			break;
		}
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			bool is_map = ev.type == YAML_MAPPING_START_EVENT;
			const yaml_char_t *anch =
				is_map ? ev.data.mapping_start.anchor
				       : ev.data.sequence_start.anchor;
			frame *f;

			tag_ok(&p,
			       is_map ? ev.data.mapping_start.tag
				      : ev.data.sequence_start.tag,
			       ev.start_mark, is_map ? "map" : "seq");
			if (p.depth >= RC_YAML_MAX_DEPTH) {
				P_ERROR(&p, mark_loc(&p, ev.start_mark),
					      1,
					      "nesting too deep (the limit is "
					      "%d levels)",
					      RC_YAML_MAX_DEPTH);
				rc = -1;
				done = true;
				break;
			}
			if (!count_nodes(&p, 1, ev.start_mark)) {
				rc = -1;
				done = true;
				break;
			}
			RC_GROW(p.stack, p.capstack, p.depth + 1);
			f = &p.stack[p.depth++];
			memset(f, 0, sizeof(*f));
			f->node = is_map ? rc_node_new_map(mark_loc(&p, ev.start_mark))
					 : rc_node_new_seq(mark_loc(&p, ev.start_mark));
			if (anch) {
				f->anchor = rc_strdup((const char *)anch);
				set_anchor(&p, f->anchor, NULL);
			}
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT: {
			frame f = p.stack[--p.depth];

			free_index(&f);
			if (f.nmerges)
				apply_merges(&p, &f);
			if (f.pending_key) { /* cannot happen with libyaml */
				rc_node_free(f.pending_key);
			}
			if (f.anchor) {
				set_anchor(&p, f.anchor, f.node);
				free(f.anchor);
			}
			attach(&p, f.node, &root);
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	if (in_doc || p.depth) {
		free_stack(&p);
		rc_node_free(root);
	}
	yaml_parser_delete(&yp);
	clear_anchors(&p);
	for (size_t g = 0; g < p.ngrave; g++)
		rc_node_free(p.graveyard[g]);
	free(p.graveyard);
	free(p.anchors);
	free(p.stack);
	if (p.failed)
		rc = -1;
	*docs_out = docs;
	*ndocs_out = ndocs;
	return rc;
}
