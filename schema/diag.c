#include "reconciler/base/common.h"
#include "schema/diag.h"
#include "reconciler/base/log.h"

#define DIAG_DEFAULT_LIMIT 500

void rc_diags_init(rc_diags *d)
{
	memset(d, 0, sizeof(*d));
	d->limit = DIAG_DEFAULT_LIMIT;
}

void rc_diags_release(rc_diags *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->items[i].message);
	free(d->items);
	for (i = 0; i < d->nsources; i++) {
		free(d->sources[i]->name);
		free(d->sources[i]->data);
		free(d->sources[i]);
	}
	free(d->sources);
	rc_strmap_release(&d->source_index);
	memset(d, 0, sizeof(*d));
}

static bool same_loc(rc_loc a, rc_loc b)
{
	if (a.line != b.line || a.col != b.col)
		return false;
	if (a.file == b.file)
		return true;
	return a.file && b.file && !strcmp(a.file, b.file);
}

void rc_diags_add(rc_diags *d, rc_diag_severity sev, rc_loc loc, int span,
		  bool sensitive, const char *fmt, ...)
{
	va_list ap;
	rc_buf b = RC_BUF_INIT_MAX(8192);
	size_t i;

	va_start(ap, fmt);
	rc_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	for (i = 0; i < d->n; i++) {
		if (d->items[i].severity == sev && same_loc(d->items[i].loc, loc) &&
		    !strcmp(d->items[i].message, b.ptr)) {
			rc_buf_release(&b);
			return;
		}
	}
	if (sev == RC_DIAG_ERROR)
		d->nerrors++;
	else if (sev == RC_DIAG_WARNING)
		d->nwarnings++;
	if (d->n >= d->limit) {
		d->dropped++;
		rc_buf_release(&b);
		return;
	}
	RC_GROW(d->items, d->cap, d->n + 1);
	d->items[d->n].severity = sev;
	d->items[d->n].loc = loc;
	d->items[d->n].span = span > 0 ? span : 1;
	d->items[d->n].sensitive = sensitive;
	d->items[d->n].message = rc_buf_detach(&b);
	d->n++;
}

const char *rc_diags_add_source(rc_diags *d, const char *name, char *data,
				size_t len)
{
	rc_diag_file *s = rc_strmap_get(&d->source_index, name);

	if (s) {
		if (data) {
			free(s->data);
			s->data = data;
			s->len = len;
		}
		return s->name;
	}
	s = rc_calloc(1, sizeof(*s));
	s->name = rc_strdup(name);
	s->data = data;
	s->len = len;
	RC_GROW(d->sources, d->capsources, d->nsources + 1);
	d->sources[d->nsources++] = s;
	rc_strmap_put(&d->source_index, s->name, s);
	return s->name;
}

const char *rc_diags_intern(rc_diags *d, const char *name)
{
	return rc_diags_add_source(d, name, NULL, 0);
}

const rc_diag_file *rc_diags_source(const rc_diags *d, const char *name)
{
	if (!name)
		return NULL;
	return rc_strmap_get(&d->source_index, name);
}

static int cmp_diag(const rc_diag *a, const rc_diag *b)
{
	int c;

	if (a->loc.file != b->loc.file) {
		if (!a->loc.file)
			return -1;
		if (!b->loc.file)
			return 1;
		c = strcmp(a->loc.file, b->loc.file);
		if (c)
			return c;
	}
	if (a->loc.line != b->loc.line)
		return a->loc.line < b->loc.line ? -1 : 1;
	if (a->loc.col != b->loc.col)
		return a->loc.col < b->loc.col ? -1 : 1;
	return 0;
}

void rc_diags_sort(rc_diags *d)
{
	size_t i, j;

	/* insertion sort: stable, and the lists are short */
	for (i = 1; i < d->n; i++) {
		rc_diag t = d->items[i];

		for (j = i; j > 0 && cmp_diag(&d->items[j - 1], &t) > 0; j--)
			d->items[j] = d->items[j - 1];
		d->items[j] = t;
	}
}

/* Finds line `line` (1-based) in src; sets *len; NULL if out of range. */
static const char *find_line(const rc_diag_file *src, int line, size_t *len)
{
	const char *p = src->data, *end = src->data + src->len, *nl;
	int l = 1;

	while (l < line && p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return NULL;
		p = nl + 1;
		l++;
	}
	if (l != line || p > end)
		return NULL;
	nl = memchr(p, '\n', (size_t)(end - p));
	*len = nl ? (size_t)(nl - p) : (size_t)(end - p);
	if (*len && p[*len - 1] == '\r')
		(*len)--;
	return p;
}

static void format_source_line(const rc_diag *dg, const rc_diag_file *src,
			       rc_buf *out, bool color)
{
	size_t len, i, shown;
	const char *line = find_line(src, dg->loc.line, &len);
	int col = 1;
	char num[16];

	if (!line || dg->loc.col < 1)
		return;
	snprintf(num, sizeof(num), "%d", dg->loc.line);
	shown = len;
	if (dg->sensitive) {
		const char *colon = memchr(line, ':', len);

		shown = colon ? (size_t)(colon - line) + 1 : 0;
	}
	rc_buf_printf(out, " %5s | ", num);
	rc_buf_put(out, line, shown);
	if (shown < len)
		rc_buf_puts(out, " <redacted>");
	rc_buf_puts(out, "\n       | ");
	if (shown < len) {
		/* the caret goes under "<redacted>" */
		for (i = 0; i < shown; i++)
			if (((unsigned char)line[i] & 0xC0) != 0x80)
				rc_buf_putc(out, line[i] == '\t' ? '\t' : ' ');
		rc_buf_putc(out, ' ');
		col = dg->loc.col;
	}
	for (i = 0; i < len && col < dg->loc.col; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c & 0xC0) == 0x80)
			continue; /* continuation byte: same column */
		rc_buf_putc(out, c == '\t' ? '\t' : ' ');
		col++;
	}
	if (color)
		rc_buf_puts(out, "\033[1;32m");
	rc_buf_putc(out, '^');
	if (!dg->sensitive && dg->span > 1)
		rc_buf_putn(out, '~', (size_t)dg->span - 1);
	if (color)
		rc_buf_puts(out, "\033[0m");
	rc_buf_putc(out, '\n');
}

void rc_diags_format(const rc_diags *d, rc_buf *out, bool color)
{
	static const char *names[] = {"error", "warning", "note"};
	static const char *colors[] = {"\033[1;31m", "\033[1;35m",
				       "\033[1;36m"};
	size_t i;

	for (i = 0; i < d->n; i++) {
		const rc_diag *dg = &d->items[i];
		const rc_diag_file *src = rc_diags_source(d, dg->loc.file);

		if (color)
			rc_buf_puts(out, "\033[1m");
		if (dg->loc.file && dg->loc.line > 0)
			rc_buf_printf(out, "%s:%d:%d: ", dg->loc.file,
				      dg->loc.line, dg->loc.col);
		else if (dg->loc.file)
			rc_buf_printf(out, "%s: ", dg->loc.file);
		if (color)
			rc_buf_printf(out, "\033[0m%s%s:\033[0m ",
				      colors[dg->severity],
				      names[dg->severity]);
		else
			rc_buf_printf(out, "%s: ", names[dg->severity]);
		rc_buf_puts(out, dg->message);
		rc_buf_putc(out, '\n');
		if (src && src->data)
			format_source_line(dg, src, out, color);
	}
	if (d->dropped)
		rc_buf_printf(out, "note: %zu more diagnostics not shown\n",
			      d->dropped);
	rc_redact(out);
}

void rc_diags_print(const rc_diags *d, FILE *f, bool color)
{
	rc_buf b = RC_BUF_INIT;

	rc_diags_format(d, &b, color);
	fwrite(b.ptr, 1, b.len, f);
	rc_buf_release(&b);
}

size_t rc_edit_distance(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[65], prev, tmp, best;

	if (la > 64 || lb > 64)
		return cap + 1;
	if ((la > lb ? la - lb : lb - la) > cap)
		return cap + 1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		best = row[0];
		for (j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) ==
						      tolower((unsigned char)b[j - 1])
					      ? 0
					      : 1;
			size_t v = prev + cost;

			if (row[j] + 1 < v)
				v = row[j] + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			tmp = row[j];
			row[j] = v;
			prev = tmp;
			if (v < best)
				best = v;
		}
		if (best > cap)
			return cap + 1;
	}
	return row[lb];
}

const char *rc_did_you_mean(const char *word, const char *const *candidates,
			    size_t n)
{
	size_t i, best = SIZE_MAX, cap;
	const char *hit = NULL;

	cap = strlen(word) <= 3 ? 1 : strlen(word) <= 6 ? 2 : 3;
	for (i = 0; i < n; i++) {
		size_t dist = rc_edit_distance(word, candidates[i], cap);

		if (dist <= cap && dist < best) {
			best = dist;
			hit = candidates[i];
		}
	}
	return hit;
}
