#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/codec.h"
#include "reconciler/base/crashpoint.h"
#include "reconciler/base/error.h"
#include "reconciler/base/log.h"
#include "state/internal.h"
#include "state/journal.h"

#include <fcntl.h>
#include <uuid/uuid.h>

/* "<16 hex> " before "<length> <json>" */
#define HASH_HEX 16
#define PREFIX_LEN (HASH_HEX + 1)

struct rc_journal {
	int fd;
	char *path;
	char *run_id;
	long long seq; /* of the last record written, 0 before the first */
	off_t size;    /* bytes of complete records in the file */
	bool sync;
	bool broken; /* a failed append left the file's end in doubt */
};

/* A record's checksum: the first HASH_HEX hex digits of SHA-256(data). */
static void checksum(char out[RC_SHA256_HEX_LEN + 1], const void *data,
		     size_t n)
{
	rc_codec_sha256_hex(out, data, n);
	out[HASH_HEX] = '\0';
}

int rc_journal_create(rc_journal **out, const char *state_dir,
		      const char *run_id)
{
	rc_buf dir = RC_BUF_INIT_MAX(PATH_MAX);
	rc_buf path = RC_BUF_INIT_MAX(PATH_MAX);
	char uuid_text[37];
	rc_journal *j = NULL;
	int fd = -1, error;

	*out = NULL;
	if (!run_id) {
		uuid_t u;

		uuid_generate(u);
		uuid_unparse_lower(u, uuid_text);
		run_id = uuid_text;
	} else if (!rc_state_name_ok(run_id)) {
		return rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
				    "invalid run id '%s'", run_id);
	}
	if ((error = rc_buf_printf(&dir, "%s/runs", state_dir)) < 0 ||
	    (error = rc_buf_printf(&path, "%s/%s.journal", dir.ptr, run_id)) <
		    0 ||
	    (error = rc_state_mkdirs(dir.ptr)) < 0)
		goto cleanup;
	fd = open(path.ptr, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
		  0644);
	if (fd < 0) {
		if (errno == EEXIST)
			error = rc_error_set(RC_EEXISTS, RC_ECLASS_STATE,
					     "journal '%s' already exists",
					     path.ptr);
		else
			error = rc_error_set_os("cannot create journal '%s'",
						path.ptr);
		goto cleanup;
	}
	if ((error = rc_state_fsync_dir(dir.ptr)) < 0) {
		close(fd);
		unlink(path.ptr);
		goto cleanup;
	}
	j = rc_calloc(1, sizeof(*j));
	j->fd = fd;
	j->path = rc_buf_detach(&path);
	j->run_id = rc_strdup(run_id);
	j->sync = true;
	*out = j;

cleanup:
	rc_buf_release(&dir);
	rc_buf_release(&path);
	return error;
}

const char *rc_journal_run_id(const rc_journal *j)
{
	return j->run_id;
}

const char *rc_journal_path(const rc_journal *j)
{
	return j->path;
}

long long rc_journal_seq(const rc_journal *j)
{
	return j->seq;
}

void rc_journal_set_sync(rc_journal *j, bool sync)
{
	j->sync = sync;
}

/* A copy of v (new ref) with registered secret values redacted from every
 * string, key and number. */
static json_t *redacted_copy(json_t *v)
{
	rc_buf b = RC_BUF_INIT;
	json_t *out, *item;
	const char *key;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_STRING:
		/* rc_redact() works on C strings: leave one with a NUL in it
		 * to the redaction of the encoded text, where it is \u0000 */
		if (strlen(json_string_value(v)) != json_string_length(v) ||
		    rc_buf_put(&b, json_string_value(v),
			       json_string_length(v)) < 0)
			return json_incref(v);
		rc_redact(&b);
		out = json_stringn(b.ptr, b.len);
		rc_buf_release(&b);
		return out ? out : json_incref(v);
	case JSON_OBJECT:
		out = json_object();
		json_object_foreach(v, key, item)
		{
			rc_buf_clear(&b);
			rc_buf_puts(&b, key);
			rc_redact(&b);
			json_object_set_new(out, b.ptr, redacted_copy(item));
		}
		rc_buf_release(&b);
		return out;
	case JSON_ARRAY:
		out = json_array();
		json_array_foreach(v, i, item)
			json_array_append_new(out, redacted_copy(item));
		return out;
	case JSON_INTEGER:
	case JSON_REAL: {
		/* a number that is (or holds) a secret becomes a string */
		char *text = json_dumps(v, JSON_ENCODE_ANY);

		if (!text || rc_buf_puts(&b, text) < 0) {
			free(text);
			rc_buf_release(&b);
			return json_incref(v);
		}
		rc_redact(&b);
		out = strcmp(b.ptr, text) ? json_string(b.ptr) : json_incref(v);
		free(text);
		rc_buf_release(&b);
		return out;
	}
	default:
		return json_incref(v);
	}
}

/* The record as it is written (new ref): "seq", "time" and "type" first,
 * then the record's own fields in order, secrets redacted. */
static json_t *final_record(rc_journal *j, json_t *record, long long *seq)
{
	json_t *red = redacted_copy(record), *out = json_object(), *v;
	char now[RC_TIME_SIZE];
	const char *key;

	v = json_object_get(red, "seq");
	if (v) {
		json_object_set(out, "seq", v);
		*seq = json_is_integer(v) ? (long long)json_integer_value(v)
					  : j->seq + 1;
	} else {
		*seq = j->seq + 1;
		json_object_set_new(out, "seq", json_integer(*seq));
	}
	v = json_object_get(red, "time");
	if (v) {
		json_object_set(out, "time", v);
	} else {
		rc_time_now(now);
		json_object_set_new(out, "time", json_string(now));
	}
	if ((v = json_object_get(red, "type")) != NULL)
		json_object_set(out, "type", v);
	json_object_foreach(red, key, v)
		if (!json_object_get(out, key))
			json_object_set(out, key, v);
	json_decref(red);
	return out;
}

/* Builds the line "<checksum> <length> <json>\n" for record into line. */
static int frame(rc_buf *line, rc_journal *j, json_t *record, long long *seq)
{
	json_t *rec = final_record(j, record, seq);
	char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	rc_buf body = RC_BUF_INIT_MAX(RC_JOURNAL_MAX_RECORD);
	char sum[RC_SHA256_HEX_LEN + 1];
	int error = 0;

	json_decref(rec);
	if (!text)
		return rc_error_set(RC_EINVALID, RC_ECLASS_JSON,
				    "cannot encode a journal record as JSON");
	if ((error = rc_buf_puts(&body, text)) < 0) {
		rc_error_prefix("journal record");
		goto cleanup;
	}
	/* Keys and values were redacted one by one; what is left to find
	 * is a secret that spans JSON syntax. Redacting it may leave text
	 * that is not JSON: such a record is refused, not written. */
	rc_redact_json(&body);
	if (body.len != strlen(text) || memcmp(body.ptr, text, body.len)) {
		json_t *check = json_loadb(body.ptr, body.len, 0, NULL);

		if (!json_is_object(check)) {
			json_decref(check);
			error = rc_error_set(
				RC_EINVALID, RC_ECLASS_STATE,
				"a journal record holds a secret value that "
				"cannot be redacted from its JSON text");
			goto cleanup;
		}
		json_decref(check);
	}
	rc_buf_clear(line);
	if ((error = rc_buf_putn(line, '0', HASH_HEX)) < 0 ||
	    (error = rc_buf_printf(line, " %zu ", body.len)) < 0 ||
	    (error = rc_buf_put(line, body.ptr, body.len)) < 0)
		goto cleanup;
	checksum(sum, line->ptr + PREFIX_LEN, line->len - PREFIX_LEN);
	if ((error = rc_buf_putc(line, '\n')) < 0)
		goto cleanup;
	memcpy(line->ptr, sum, HASH_HEX);

cleanup:
	free(text);
	rc_buf_release(&body);
	return error;
}

int rc_journal_append(rc_journal *j, json_t *record)
{
	rc_buf line = RC_BUF_INIT_MAX(RC_JOURNAL_MAX_RECORD + 64);
	long long seq = 0;
	int error, r;

	if (j->broken)
		return rc_error_set(RC_ERROR, RC_ECLASS_STATE,
				    "journal '%s' is unusable after a failed "
				    "write",
				    j->path);
	if (!json_is_object(record))
		return rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
				    "a journal record must be a JSON object");
	if ((error = frame(&line, j, record, &seq)) < 0)
		goto cleanup;
	rc_crashpoint("journal");
	if (rc_state_write_all(j->fd, line.ptr, line.len) < 0) {
		error = rc_error_set_os("cannot append to journal '%s'",
					j->path);
		/* take the partial record back so that the file ends with a
		 * whole record; if that fails too, append no more */
		if (ftruncate(j->fd, j->size) < 0)
			j->broken = true;
		goto cleanup;
	}
	if (j->sync) {
		do {
			r = fsync(j->fd);
		} while (r < 0 && errno == EINTR);
		if (r < 0) {
			/* whether the record reached the disk is unknown */
			j->broken = true;
			error = rc_error_set_os("cannot fsync journal '%s'",
						j->path);
			goto cleanup;
		}
	}
	j->size += (off_t)line.len;
	j->seq = seq;
	rc_crashpoint("journal");

cleanup:
	rc_buf_release(&line);
	return error;
}

void rc_journal_close(rc_journal *j)
{
	if (!j)
		return;
	close(j->fd);
	free(j->path);
	free(j->run_id);
	free(j);
}

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* What is wrong with a bad line. */
typedef enum {
	BAD_HEADER, /* not "<16 hex> <digits> " */
	BAD_LENGTH, /* the length field does not match the line */
	BAD_SUM,    /* the checksum does not match */
	BAD_JSON    /* the checksum matches: it was written that way */
} bad_kind;

/*
 * Checks one line (without its '\n') as a record. complete is false for
 * bytes that end the file without a '\n'. On success *rec is the record
 * (new ref); otherwise *kind and why say what is wrong.
 */
static int parse_line(json_t **rec, const char *line, size_t len,
		      bool complete, bad_kind *kind, rc_buf *why)
{
	char sum[RC_SHA256_HEX_LEN + 1];
	json_error_t jerr;
	size_t i, jlen = 0, digits_at = PREFIX_LEN, json_at;
	json_t *v;

	*rec = NULL;
	*kind = BAD_HEADER;
	for (i = 0; i < HASH_HEX; i++)
		if (i >= len || !is_lower_hex(line[i]))
			goto bad_header;
	if (len <= PREFIX_LEN || line[HASH_HEX] != ' ')
		goto bad_header;
	for (i = digits_at; i < len && isdigit((unsigned char)line[i]); i++) {
		if (i - digits_at >= 10)
			goto bad_header;
		jlen = jlen * 10 + (size_t)(line[i] - '0');
	}
	if (i == digits_at || i >= len || line[i] != ' ' ||
	    (line[digits_at] == '0' && i - digits_at > 1))
		goto bad_header;
	json_at = i + 1;
	/* the start of a record cut short is shorter than it says; a whole
	 * one is exactly as long; no record is longer */
	if (len - json_at > jlen || (complete && len - json_at != jlen)) {
		*kind = BAD_LENGTH;
		rc_buf_printf(why,
			      "length field says %zu bytes, the record has %zu",
			      jlen, len - json_at);
		return RC_EINVALID;
	}
	if (!complete) {
		*kind = BAD_SUM;
		rc_buf_puts(why, "incomplete record");
		return RC_EINVALID;
	}
	checksum(sum, line + PREFIX_LEN, len - PREFIX_LEN);
	if (memcmp(sum, line, HASH_HEX)) {
		*kind = BAD_SUM;
		rc_buf_printf(why,
			      "checksum mismatch (recorded %.*s, computed %s)",
			      HASH_HEX, line, sum);
		return RC_EINVALID;
	}
	*kind = BAD_JSON;
	v = json_loadb(line + json_at, jlen, JSON_REJECT_DUPLICATES, &jerr);
	if (!v) {
		rc_buf_printf(why, "invalid JSON: %s", jerr.text);
		return RC_EINVALID;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		rc_buf_puts(why, "the record is not a JSON object");
		return RC_EINVALID;
	}
	*rec = v;
	return 0;

bad_header:
	if (!complete)
		return RC_EINVALID; /* the header itself was cut short */
	rc_buf_puts(why, "malformed header (expected '<checksum> <length> ')");
	return RC_EINVALID;
}

int rc_journal_scan(const char *path, rc_journal_fn fn, void *ctx,
		    bool *torn, long long *torn_offset)
{
	rc_buf why = RC_BUF_INIT_MAX(1024);
	char *line = NULL;
	size_t cap = 0, pos = 0;
	ssize_t got;
	FILE *f;
	int error = 0;

	if (torn)
		*torn = false;
	if (torn_offset)
		*torn_offset = -1;
	f = fopen(path, "re");
	if (!f)
		return rc_error_set_os("cannot open journal '%s'", path);
	/* one record at a time: a journal of many large records is never
	 * held whole */
	while ((got = getline(&line, &cap, f)) > 0) {
		size_t len = (size_t)got;
		bool nl = line[len - 1] == '\n';
		bool last;
		bad_kind kind;
		json_t *rec;
		int c;

		if (nl)
			len--;
		c = getc(f);
		last = c == EOF;
		if (c != EOF)
			ungetc(c, f);
		if (pos + (size_t)got > RC_JOURNAL_MAX_FILE) {
			error = rc_error_set(RC_ETOOBIG, RC_ECLASS_STATE,
					     "journal '%s' is larger than %zu "
					     "bytes",
					     path, RC_JOURNAL_MAX_FILE);
			break;
		}
		rc_buf_clear(&why);
		error = parse_line(&rec, line, len, nl, &kind, &why);
		if (error < 0) {
			/*
			 * A torn append is the last line: either the start of
			 * a record without its '\n' (the process died in
			 * write()), or a whole line whose bytes did not all
			 * reach the disk (power loss). Neither can be longer
			 * than its length field or carry a good checksum.
			 */
			if (last && (kind == BAD_HEADER || kind == BAD_SUM)) {
				error = 0;
				if (torn)
					*torn = true;
				if (torn_offset)
					*torn_offset = (long long)pos;
				break;
			}
			error = rc_error_set(RC_EINVALID, RC_ECLASS_STATE,
					     "%s: corrupt record at byte "
					     "offset %zu: %s",
					     path, pos, why.ptr);
			break;
		}
		error = fn(ctx, rec);
		json_decref(rec);
		if (error > 0) {
			error = 0; /* the reader has what it wanted */
			break;
		}
		if (error < 0)
			break;
		pos += (size_t)got;
	}
	if (error == 0 && ferror(f))
		error = rc_error_set_os("cannot read journal '%s'", path);
	fclose(f);
	free(line);
	rc_buf_release(&why);
	return error;
}

static int collect(void *ctx, json_t *rec)
{
	rc_journal_contents *out = ctx;

	if (out->n < 8 || (out->n & (out->n - 1)) == 0)
		out->records = rc_realloc(out->records,
					  (out->n < 8 ? 8 : 2 * out->n) *
						  sizeof(json_t *));
	out->records[out->n++] = json_incref(rec);
	return 0;
}

int rc_journal_read(rc_journal_contents *out, const char *path)
{
	memset(out, 0, sizeof(*out));
	out->torn_offset = -1;
	return rc_journal_scan(path, collect, out, &out->torn,
			       &out->torn_offset);
}

void rc_journal_contents_release(rc_journal_contents *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++)
		json_decref(c->records[i]);
	free(c->records);
	memset(c, 0, sizeof(*c));
}
