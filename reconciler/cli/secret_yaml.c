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

void rc_yaml_blocks_find(const char *text, size_t len, rc_yaml_block **out,
			 size_t *n)
{
	stack s = {0};
	size_t pos = 0, cap = 0;
	int lineno = 0;

	*out = NULL;
	*n = 0;
	while (pos < len) {
		size_t e = line_end(text, len, pos);
		const char *p = text + pos, *end = text + e, *key = NULL,
			   *val;
		size_t klen = 0;
		int col = spaces(p, end), parent, explicit, cind = 0;
		char style;
		bool is_key;

		lineno++;
		pos = e + 1;
		if (blank(p, end) || p[col] == '#')
			continue;
		if (col == 0 && end - p >= 3 &&
		    (!strncmp(p, "---", 3) || !strncmp(p, "...", 3))) {
			pop_to(&s, -1);
			continue;
		}
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
		is_key = parse_key(p, end, &key, &klen, &val);
		if (is_key) {
			pop_to(&s, col);
			push(&s, col, key, klen);
			parent = col;
		} else {
			val = p;
		}
		if (!block_header(val, end, &style, &explicit))
			continue;
		/* the content: blank lines, and lines indented deeper than
		 * the parent */
		size_t start = pos, last_end = pos, q = pos;

		if (explicit)
			cind = parent + explicit;
		while (q < len) {
			size_t qe = line_end(text, len, q);
			int ind = spaces(text + q, text + qe);

			if (!blank(text + q, text + qe)) {
				if (ind <= parent || (cind && ind < cind))
					break;
				if (!cind)
					cind = ind;
				last_end = qe < len ? qe + 1 : len;
			}
			q = qe + 1;
		}
		if (is_key && klen == 9 && !strncmp(key, "encrypted", 9) &&
		    style == '|' && cind)
			add_block(out, n, &cap, &s, text, lineno, start,
				  last_end, cind);
		/* go on after the content (trailing blank lines are then
		 * skipped as blank) */
		for (; pos < last_end; pos++)
			if (text[pos] == '\n')
				lineno++;
	}
	pop_to(&s, -1);
	free(s.v);
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
