/*
 * The ECS driver's task-definition cache: see drivers/ecs_cache.h.
 */
#include "drivers/ecs_cache.h"

#include "drivers/proc.h" /* files */
#include "reconciler/base/codec.h"
#include "reconciler/base/log.h"

/* <state>/ecs/taskdefs/<sha256 of the ARN>.json, or NULL. */
static char *entry_path(const char *state_dir, const char *arn)
{
	char hex[RC_SHA256_HEX_LEN + 1];
	rc_buf b = RC_BUF_INIT_MAX(PATH_MAX * 2);

	if (!state_dir || !*state_dir || !arn || strncmp(arn, "arn:", 4))
		return NULL;
	rc_codec_sha256_hex(hex, arn, strlen(arn));
	rc_buf_printf(&b, "%s/ecs/taskdefs/%s.json", state_dir, hex);
	return rc_buf_detach(&b);
}

json_t *rc_ecs_cache_get(const char *state_dir, const char *arn)
{
	char *path = entry_path(state_dir, arn);
	json_t *doc = NULL, *answer = NULL;
	const char *got;

	if (!path)
		return NULL;
	if (rc_local_read_json(&doc, path) < 0) {
		if (rc_error_last()->code != RC_ENOTFOUND)
			RC_DEBUG("ecs: cached revision %s ignored: %s", arn,
				 rc_error_last()->message);
		rc_error_clear();
	} else {
		got = json_string_value(json_object_get(doc, "arn"));
		answer = json_object_get(doc, "answer");
		if (got && !strcmp(got, arn) &&
		    json_is_object(json_object_get(answer, "taskDefinition")))
			json_incref(answer);
		else
			answer = NULL;
		if (!answer)
			RC_DEBUG("ecs: cached revision %s ignored: not what "
				 "it should hold",
				 arn);
	}
	json_decref(doc);
	free(path);
	return answer;
}

void rc_ecs_cache_put(const char *state_dir, const char *arn,
		      const json_t *answer)
{
	char *path = entry_path(state_dir, arn), *slash;
	json_t *doc;

	if (!path || !json_is_object(json_object_get(answer, "taskDefinition")))
		goto done;
	slash = strrchr(path, '/');
	*slash = 0;
	if (rc_local_mkdirs(path, 0700) < 0)
		goto fail;
	*slash = '/';
	doc = json_pack("{s:s, s:O}", "arn", arn, "answer", answer);
	if (rc_local_write_json(path, doc) < 0) {
		json_decref(doc);
		goto fail;
	}
	json_decref(doc);
	goto done;
fail:
	RC_WARN("ecs: the task-definition cache was not written: %s",
		rc_error_last()->message);
	rc_error_clear();
done:
	free(path);
}
