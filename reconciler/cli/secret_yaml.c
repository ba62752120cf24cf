/* Encrypted block scalars found and replaced in YAML text (secret_yaml.h). */
#include "reconciler/base/common.h"
#include "reconciler/cli/secret_yaml.h"

typedef struct {
	int indent;
	char *key;
} level;

typedef struct {
	level *v;
	size_t n, cap;
} stack;

static void pop_to(stack *s, int indent)
{
	while (s->n && s->v[s->n - 1].indent >= indent)
		free(s->v[--s->n].key);
}

static void push(stack *s, int indent, const char *key, size_t len)
{
	RC_GROW(s->v, s->cap, s->n + 1);
	s->v[s->n].indent = indent;
	s->v[s->n++].key = rc_strndup(key, len);
}

/* The end of the line starting at pos (its '\n' or len). */
static size_t line_end(const char *text, size_t len, size_t pos)
{
	const char *nl = memchr(text + pos, '\n', len - pos);

	return nl ? (size_t)(nl - text) : len;
}

static int spaces(const char *p, const char *end)
{
	int n = 0;

	while (p + n < end && p[n] == ' ')
		n++;
	return n;
}

static bool blank(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return false;
	return true;
}

/* The key at p (plain, or quoted without escapes) and where its value
 * starts; false when the line holds no `key:`. */
static bool parse_key(const char *p, const char *end, const char **key,
		      size_t *klen, const char **val)
{
	const char *q;

	if (p < end && (*p == '"' || *p == '\'')) {
		q = memchr(p + 1, *p, (size_t)(end - p - 1));
		if (!q || q + 1 >= end || q[1] != ':')
			return false;
		*key = p + 1;
		*klen = (size_t)(q - p - 1);
		q++;
	} else {
		if (p >= end || *p == '{' || *p == '[' || *p == '#')
			return false;
		for (q = p; q < end; q++)
			if (*q == ':' &&
			    (q + 1 == end || q[1] == ' ' || q[1] == '\t' ||
			     q[1] == '\r'))
				break;
		if (q >= end)
			return false;
		*key = p;
		*klen = (size_t)(q - p);
	}
	*val = q + 1;
	return true;
}

/* Whether the value text [p, end) is a block scalar header: its style
 * ('|' or '>') in *style and an explicit indentation (0: none). */
static bool block_header(const char *p, const char *end, char *style,
			 int *explicit)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= end || (*p != '|' && *p != '>'))
		return false;
	*style = *p++;
	*explicit = 0;
	for (; p < end && *p != ' ' && *p != '\t' && *p != '\r'; p++) {
		if (*p >= '1' && *p <= '9')
			*explicit = *p - '0';
		else if (*p != '-' && *p != '+')
			return false;
	}
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	return p == end || *p == '#';
}

static void add_block(rc_yaml_block **out, size_t *n, size_t *cap,
		      const stack *s, const char *text, int line,
		      size_t start, size_t end, int indent)
{
	rc_yaml_block *b;
	rc_buf v = RC_BUF_INIT;
	size_t pos = start;

	RC_GROW(*out, *cap, *n + 1);
	b = &(*out)[(*n)++];
	memset(b, 0, sizeof(*b));
	b->line = line;
	b->start = start;
	b->end = end;
	b->indent = indent;
	while (pos < end) {
		size_t e = line_end(text, end, pos), le = e;

		if (le > pos && text[le - 1] == '\r')
			le--;
		if (le - pos > (size_t)indent)
			rc_buf_put(&v, text + pos + indent,
				   le - pos - (size_t)indent);
		rc_buf_putc(&v, '\n');
		pos = e + 1;
	}
	b->value = rc_buf_detach(&v);
	/* the keys above; the last level is `encrypted` itself */
	b->npath = s->n ? s->n - 1 : 0;
	b->path = rc_calloc(b->npath + 1, sizeof(char *));
	for (size_t i = 0; i < b->npath; i++)
		b->path[i] = rc_strdup(s->v[i].key);
}

/* One significant line of the scan (not blank, not a comment). */
typedef struct {
	const stack *s;     /* the keys down to this line's (if it has one) */
	size_t start;       /* the line's offset */
	size_t end;         /* past the line, or past its block scalar's
			       last non-blank content line */
	int lineno;
	int indent;         /* the line's leading spaces */
	int col;            /* the column of the key (or item's value) */
	bool is_key;
	const char *val, *val_end; /* the text after the key's colon */
	bool block;         /* the value is a block scalar ... */
	char style;         /* '|' or '>' */
	size_t cstart;      /* ... whose content starts here */
	int cind;           /* ... indented so (0: no content) */
} scan_line;

typedef void (*scan_fn)(void *ctx, const scan_line *l);

/* Calls fn for each significant line of text, in order, skipping the
 * content of block scalars. */
static void scan(const char *text, size_t len, scan_fn fn, void *ctx)
{
	stack s = {0};
	size_t pos = 0;
	int lineno = 0;

	while (pos < len) {
		size_t e = line_end(text, len, pos);
		const char *p = text + pos, *end = text + e, *key = NULL;
		size_t klen = 0;
		int col = spaces(p, end), parent, explicit = 0;
		scan_line l = {.s = &s, .start = pos, .end = e < len ? e + 1 : len};

		lineno++;
		l.lineno = lineno;
		pos = e + 1;
		if (blank(p, end) || p[col] == '#')
			continue;
		if (col == 0 && end - p >= 3 &&
		    (!strncmp(p, "---", 3) || !strncmp(p, "...", 3))) {
			pop_to(&s, -1);
			continue;
		}
		l.indent = col;
		p += col;
		pop_to(&s, col);
		parent = col;
		/* sequence items: "- ", possibly nested */
		while (p < end && *p == '-' &&
		       (p + 1 == end || p[1] == ' ' || p[1] == '\r')) {
			int extra;

			push(&s, col, "-", 1);
			parent = col;
			p++;
			col++;
			extra = spaces(p, end);
			p += extra;
			col += extra;
		}
		l.is_key = parse_key(p, end, &key, &klen, &l.val);
		if (l.is_key) {
			pop_to(&s, col);
			push(&s, col, key, klen);
			parent = col;
		} else {
			l.val = p;
		}
		l.val_end = end;
		l.col = col;
		l.block = block_header(l.val, end, &l.style, &explicit);
		if (l.block) {
			/* the content: blank lines, and lines indented
			 * deeper than the parent */
			size_t q = pos;

			l.cstart = pos;
			if (explicit)
				l.cind = parent + explicit;
			while (q < len) {
				size_t qe = line_end(text, len, q);
				int ind = spaces(text + q, text + qe);

				if (!blank(text + q, text + qe)) {
					if (ind <= parent ||
					    (l.cind && ind < l.cind))
						break;
					if (!l.cind)
						l.cind = ind;
					l.end = qe < len ? qe + 1 : len;
				}
				q = qe + 1;
			}
			if (l.end < l.cstart)
				l.end = l.cstart;
			/* go on after the content (trailing blank lines are
			 * then skipped as blank) */
			for (; pos < l.end; pos++)
				if (text[pos] == '\n')
					lineno++;
		}
		fn(ctx, &l);
	}
	pop_to(&s, -1);
	free(s.v);
}

typedef struct {
	const char *text;
	rc_yaml_block *out;
	size_t n, cap;
} find_ctx;

static void find_block(void *ctx, const scan_line *l)
{
	find_ctx *f = ctx;
	const level *top = l->s->n ? &l->s->v[l->s->n - 1] : NULL;

	if (l->is_key && l->block && l->style == '|' && l->cind && top &&
	    !strcmp(top->key, "encrypted"))
		add_block(&f->out, &f->n, &f->cap, l->s, f->text, l->lineno,
			  l->cstart, l->end, l->cind);
}

void rc_yaml_blocks_find(const char *text, size_t len, rc_yaml_block **out,
			 size_t *n)
{
	find_ctx f = {.text = text};

	scan(text, len, find_block, &f);
	*out = f.out;
	*n = f.n;
}

void rc_yaml_blocks_free(rc_yaml_block *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(b[i].value);
		for (size_t k = 0; k < b[i].npath; k++)
			free(b[i].path[k]);
		free(b[i].path);
	}
	free(b);
}

void rc_yaml_block_describe(rc_buf *out, const rc_yaml_block *b)
{
	for (size_t i = 0; i < b->npath; i++)
		rc_buf_printf(out, "%s%s", i ? "." : "", b->path[i]);
}

void rc_yaml_indent_lines(rc_buf *out, const char *value, int indent, bool nl)
{
	const char *p = value;

	while (*p) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l)
			rc_buf_putn(out, ' ', (size_t)indent);
		rc_buf_put(out, p, l);
		p += l;
		if (*p)
			p++;
		if (*p || nl)
			rc_buf_putc(out, '\n');
	}
}

void rc_yaml_blocks_replace(rc_buf *out, const char *text, size_t len,
			    const rc_yaml_block *blocks, size_t n,
			    const char *const *values)
{
	size_t pos = 0;

	for (size_t i = 0; i < n; i++) {
		const rc_yaml_block *b = &blocks[i];

		if (!values[i])
			continue;
		rc_buf_put(out, text + pos, b->start - pos);
		rc_yaml_indent_lines(out, values[i], b->indent,
				     b->end > b->start &&
					     text[b->end - 1] == '\n');
		pos = b->end;
	}
	rc_buf_put(out, text + pos, len - pos);
}

/* ------------------------------------------------------ putting entries */

typedef struct {
	const char *const *path;
	size_t npath;
	bool found, done;
	size_t start, end;
	int col;       /* the key's column (-1: the document) */
	int child;     /* the first child line's indentation (-1: none) */
	int lineno;
	const char *val, *val_end;
} entry_ctx;

static bool stack_is(const stack *s, const char *const *path, size_t n)
{
	if (s->n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s->v[i].key, path[i]))
			return false;
	return true;
}

static void find_entry(void *ctx, const scan_line *l)
{
	entry_ctx *e = ctx;

	if (e->done)
		return;
	if (e->found) {
		if (l->indent <= e->col) {
			e->done = true;
			return;
		}
		if (e->child < 0)
			e->child = l->indent;
		e->end = l->end;
		return;
	}
	if (l->is_key && stack_is(l->s, e->path, e->npath)) {
		e->found = true;
		e->start = l->start;
		e->end = l->end;
		e->col = l->col;
		e->lineno = l->lineno;
		e->val = l->val;
		e->val_end = l->val_end;
	}
}

/* The entry at path in text (npath 0: the whole document). */
static void entry_find(entry_ctx *e, const char *text, size_t len,
		       const char *const *path, size_t npath)
{
	memset(e, 0, sizeof(*e));
	e->path = path;
	e->npath = npath;
	e->child = -1;
	if (!npath) {
		e->found = true;
		e->col = -1;
	}
	scan(text, len, find_entry, e);
}

/* Whether the entry's value is written on its key's line (other than a
 * comment). */
static bool entry_inline(const entry_ctx *e)
{
	const char *p = e->val;

	if (!p)
		return false;
	while (p < e->val_end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	return p < e->val_end && *p != '#';
}

static void put_entry(rc_buf *out, int ind, const char *name,
		      const char *armored)
{
	rc_buf_putn(out, ' ', (size_t)ind);
	rc_buf_printf(out, "%s:\n", name);
	rc_buf_putn(out, ' ', (size_t)ind + 2);
	rc_buf_puts(out, "encrypted: |\n");
	rc_yaml_indent_lines(out, armored, ind + 4, true);
}

int rc_yaml_secret_put(rc_buf *out, const char *text, size_t len,
		       const char *const *path, size_t npath,
		       const char *name, const char *armored)
{
	const char **p = rc_calloc(npath + 3, sizeof(char *));
	entry_ctx m, sec, ent;
	rc_buf add = RC_BUF_INIT;
	size_t at, cut;
	int rc = 0;

	memcpy(p, path, npath * sizeof(char *));
	p[npath] = "secrets";
	p[npath + 1] = name;
	entry_find(&m, text, len, path, npath);
	if (!m.found) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "no '%s' mapping to add to", path[npath - 1]);
		goto done;
	}
	if (entry_inline(&m)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "'%s' is written on one line (flow style) at "
				  "line %d: add the entry by hand",
				  path[npath - 1], m.lineno);
		goto done;
	}
	entry_find(&sec, text, len, p, npath + 1);
	if (sec.found && entry_inline(&sec)) {
		rc = rc_error_set(RC_EINVALID, RC_ECLASS_CONFIG,
				  "'secrets' is written on one line (flow "
				  "style) at line %d: add the entry by hand",
				  sec.lineno);
		goto done;
	}
	entry_find(&ent, text, len, p, npath + 2);
	if (ent.found) {
		at = ent.start;
		cut = ent.end;
		put_entry(&add, ent.col, name, armored);
	} else if (sec.found) {
		at = cut = sec.end;
		put_entry(&add, sec.child >= 0 ? sec.child : sec.col + 2, name,
			  armored);
	} else {
		int ind = m.child >= 0 ? m.child : m.col + 2;

		at = cut = m.found && npath ? m.end : len;
		rc_buf_putn(&add, ' ', (size_t)ind);
		rc_buf_puts(&add, "secrets:\n");
		put_entry(&add, ind + 2, name, armored);
	}
	rc_buf_put(out, text, at);
	if (at && text[at - 1] != '\n')
		rc_buf_putc(out, '\n');
	rc_buf_put(out, add.ptr, add.len);
	rc_buf_put(out, text + cut, len - cut);
done:
	rc_buf_release(&add);
	free(p);
	return rc;
}
