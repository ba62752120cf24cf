/* Label selectors (k=v, k!=v, k, !k, k in (a,b), k notin (a,b), k>n, k<n)
 * and field selectors (metadata.name=x, ...), as LIST and WATCH take them. */
#include "tests/fake/kube/kube.h"

enum op {
	OP_EQ,
	OP_NEQ,
	OP_IN,
	OP_NOTIN,
	OP_EXISTS,
	OP_NOT_EXISTS,
	OP_GT,
	OP_LT
};

struct req {
	char *key;
	enum op op;
	char **values;
	size_t nvalues;
};

struct kf_selector {
	bool fields;
	struct req *reqs;
	size_t n, cap;
};

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

static char *word(const char **p, const char *stop)
{
	const char *s = *p;

	while (**p && !strchr(stop, **p))
		(*p)++;
	return rc_strndup(s, (size_t)(*p - s));
}

static void add_value(struct req *r, char *v)
{
	r->values = rc_realloc(r->values, (r->nvalues + 1) * sizeof(char *));
	r->values[r->nvalues++] = v;
}

static int parse_req(struct kf_selector *sel, const char **p, rc_buf *err)
{
	struct req r = {0};
	bool neg = false;

	skip_ws(p);
	if (**p == '!') {
		neg = true;
		(*p)++;
		skip_ws(p);
	}
	r.key = word(p, " \t=!,()<>");
	if (!*r.key) {
		rc_buf_printf(err,
			      "unable to parse requirement: found '%c', "
			      "expected: identifier",
			      **p ? **p : ' ');
		goto fail;
	}
	skip_ws(p);
	if (neg) {
		r.op = OP_NOT_EXISTS;
	} else if (!**p || **p == ',') {
		r.op = OP_EXISTS;
	} else if (**p == '=' || (**p == '!' && (*p)[1] == '=')) {
		r.op = **p == '!' ? OP_NEQ : OP_EQ;
		*p += **p == '!' ? 2 : 1;
		if (r.op == OP_EQ && **p == '=')
			(*p)++;
		skip_ws(p);
		add_value(&r, word(p, " \t,()"));
	} else if (**p == '<' || **p == '>') {
		r.op = **p == '<' ? OP_LT : OP_GT;
		(*p)++;
		skip_ws(p);
		add_value(&r, word(p, " \t,()"));
		if (!*r.values[0] ||
		    strspn(r.values[0], "-0123456789") != strlen(r.values[0])) {
			rc_buf_printf(err, "unable to parse requirement: for "
					   "'Gt', 'Lt' operators, the value "
					   "must be an integer");
			goto fail;
		}
	} else if (!strncmp(*p, "in", 2) || !strncmp(*p, "notin", 5)) {
		r.op = (*p)[0] == 'i' ? OP_IN : OP_NOTIN;
		*p += r.op == OP_IN ? 2 : 5;
		skip_ws(p);
		if (**p != '(') {
			rc_buf_printf(err,
				      "unable to parse requirement: found "
				      "'%c', expected: '('",
				      **p ? **p : ' ');
			goto fail;
		}
		(*p)++;
		for (;;) {
			skip_ws(p);
			add_value(&r, word(p, " \t,()"));
			skip_ws(p);
			if (**p == ',') {
				(*p)++;
				continue;
			}
			if (**p == ')') {
				(*p)++;
				break;
			}
			rc_buf_printf(err,
				      "unable to parse requirement: found "
				      "'%c', expected: ',', or ')'",
				      **p ? **p : ' ');
			goto fail;
		}
	} else {
		rc_buf_printf(err,
			      "unable to parse requirement: found '%c', "
			      "expected: in, notin, =, ==, !=, gt, lt",
			      **p);
		goto fail;
	}
	if (sel->fields && r.op != OP_EQ && r.op != OP_NEQ) {
		rc_buf_printf(err,
			      "invalid selector: '%s'; can't understand "
			      "'%s'",
			      r.key, r.key);
		goto fail;
	}
	skip_ws(p);
	if (**p && **p != ',') {
		rc_buf_printf(err,
			      "unable to parse requirement: found '%c', "
			      "expected: ','",
			      **p);
		goto fail;
	}
	RC_GROW(sel->reqs, sel->cap, sel->n + 1);
	sel->reqs[sel->n++] = r;
	return 0;
fail:
	free(r.key);
	for (size_t i = 0; i < r.nvalues; i++)
		free(r.values[i]);
	free(r.values);
	return -1;
}

void kf_selector_free(struct kf_selector *sel)
{
	if (!sel)
		return;
	for (size_t i = 0; i < sel->n; i++) {
		free(sel->reqs[i].key);
		for (size_t j = 0; j < sel->reqs[i].nvalues; j++)
			free(sel->reqs[i].values[j]);
		free(sel->reqs[i].values);
	}
	free(sel->reqs);
	free(sel);
}

int kf_selector_parse(struct kf_selector **out, const char *s, bool fields,
		      rc_buf *err)
{
	struct kf_selector *sel;
	const char *p = s;

	*out = NULL;
	if (!s)
		return 0;
	skip_ws(&p);
	if (!*p)
		return 0;
	sel = rc_calloc(1, sizeof(*sel));
	sel->fields = fields;
	for (;;) {
		if (parse_req(sel, &p, err) < 0) {
			kf_selector_free(sel);
			return -1;
		}
		if (*p != ',')
			break;
		p++;
	}
	*out = sel;
	return 0;
}

static const char *field_value(json_t *obj, const char *key, char *num,
			       size_t numlen)
{
	json_t *v = kf_jget(obj, key);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(num, numlen, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return num;
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	return NULL;
}

static bool req_match(const struct kf_selector *sel, const struct req *r,
		      json_t *obj)
{
	char num[32];
	const char *v;
	bool in = false;

	if (sel->fields) {
		v = field_value(obj, r->key, num, sizeof(num));
		if (!v)
			v = "";
	} else {
		v = json_string_value(
		    json_object_get(kf_jget(obj, "metadata.labels"), r->key));
	}
	switch (r->op) {
	case OP_EXISTS:
		return v != NULL;
	case OP_NOT_EXISTS:
		return v == NULL;
	case OP_EQ:
		return v && !strcmp(v, r->values[0]);
	case OP_NEQ:
		return !v || strcmp(v, r->values[0]);
	case OP_IN:
	case OP_NOTIN:
		for (size_t i = 0; v && i < r->nvalues; i++)
			if (!strcmp(v, r->values[i]))
				in = true;
		return r->op == OP_IN ? in : !in;
	case OP_GT:
	case OP_LT:
		if (!v || !*v || strspn(v, "-0123456789") != strlen(v))
			return false;
		return r->op == OP_GT ? strtoll(v, NULL, 10) >
					    strtoll(r->values[0], NULL, 10)
				      : strtoll(v, NULL, 10) <
					    strtoll(r->values[0], NULL, 10);
	}
	return false;
}

bool kf_selector_match(const struct kf_selector *sel, json_t *obj)
{
	if (!sel)
		return true;
	for (size_t i = 0; i < sel->n; i++)
		if (!req_match(sel, &sel->reqs[i], obj))
			return false;
	return true;
}
