/*
 * The Heroku driver's mapping: the pure half, with no network. The driver
 * (drivers/heroku.c) calls these to turn an environment into resources,
 * Platform API objects into bodies, bodies into request bodies, and a
 * hook into a one-off dyno's command. docs/drivers/heroku.md describes the
 * result for users.
 *
 * Resources (driver "heroku"; every name but an add-on's is the app's):
 *
 *   app                <app>   {name, region, stack[, team][, maintenance]}
 *   config             <app>   {vars: {KEY: "value" | secret object}}
 *   formation          <app>   {<process type>: {quantity, size[, image]}}
 *   addon              <name>  {service, plan, tier, as}
 *   pipeline-coupling  <app>   {pipeline, stage}
 *
 * config, formation, addon and pipeline-coupling depend on the app; the
 * formation on the config and the add-ons (DATABASE_URL exists before the
 * release). An add-on of a data service is precious, and so is an app
 * that holds one (deleting the app deletes its add-ons).
 *
 * Ownership: functions returning char * or json_t * hand over a new
 * string or reference; inputs are borrowed and not modified unless said.
 */
#ifndef RC_DRIVERS_HEROKU_MAP_H
#define RC_DRIVERS_HEROKU_MAP_H

#include <jansson.h>

#include "reconciler/base/common.h"
#include "reconciler/base/buf.h"
#include "reconciler/base/error.h"
#include "drivers/resource.h"
#include "schema/model.h"

#define RC_HEROKU_DRIVER "heroku"
#define RC_HEROKU_API_URL "https://api.heroku.com"
#define RC_HEROKU_REGISTRY "registry.heroku.com"
#define RC_HEROKU_ACCEPT "application/vnd.heroku+json; version=3"
/* The size Heroku gives a process type that names none. */
#define RC_HEROKU_DEFAULT_SIZE "basic"

/* Kinds. */
#define RC_HEROKU_APP "app"
#define RC_HEROKU_CONFIG "config"
#define RC_HEROKU_FORMATION "formation"
#define RC_HEROKU_ADDON "addon"
#define RC_HEROKU_COUPLING "pipeline-coupling"

/*
 * Appends the desired resources of env to out (the table above), each
 * with loc set to where it is declared. Secret values are read with
 * rc_secret_value() (config_dir for file secrets) and kept only as their
 * hashes. Errors (out unchanged): no target.app, a secret whose value is
 * unavailable, a service whose process type another service has too.
 */
int rc_heroku_expand(const rc_env *env, const char *config_dir,
		     rc_resource_set *out);

/* The process type of a service: heroku.process_type, else its name
 * (borrowed). */
const char *rc_heroku_process_type(const rc_service *s);

/* Whether an add-on service holds data (heroku-postgresql, heroku-redis,
 * heroku-kafka, ...): such an add-on is precious. */
bool rc_heroku_data_service(const char *service);
/* The tier of a plan name: what comes before a last "-<digits>"
 * ("essential-0" -> "essential", "standard-2" -> "standard"), else the
 * name ("mini" -> "mini") (new string). */
char *rc_heroku_plan_tier(const char *plan);
/* A dyno size as the API spells it, folded: lower case ("Standard-1X" ->
 * "standard-1x") (new string). */
char *rc_heroku_size_fold(const char *size);

/* Normal forms of API objects (new refs; NULL when the object lacks what
 * the body needs). */
json_t *rc_heroku_app_body(const json_t *app, bool with_maintenance);
json_t *rc_heroku_addon_body(const json_t *addon);

/*
 * The formation body of a formation list (GET /apps/{app}/formation):
 * {<type>: {quantity, size[, image]}}. image is filled only when the
 * process type carries a docker_image (a string, or an object with an id)
 * and then as images[<type>].ref when images[<type>].id is that id, else
 * the raw id (a release reconcile did not make shows as drift). images
 * may be NULL.
 */
json_t *rc_heroku_formation_body(const json_t *list, const json_t *images);

/* The config body of GET /apps/{app}/config-vars restricted to the keys of
 * want (an object whose keys are what to return: the desired keys and the
 * keys reconcile set). A key whose desired value (desired_vars[key]) is a
 * secret object, or that secrets marks (keys -> true), is hashed with
 * rc_secret_json_observed() under the desired object's ref ("unknown"
 * when there is none). The vars' values are never kept otherwise. */
json_t *rc_heroku_config_body(const json_t *vars, const json_t *want,
			      const json_t *desired_vars,
			      const json_t *secrets);

/* Folds equivalent spellings in place: sizes in lower case, quantities
 * given as strings as integers, the tier of an add-on filled from its
 * plan. */
void rc_heroku_normalize(const char *kind, json_t *body);

/* Whether a change at path of kind needs a replace: app /region, /team;
 * addon /service, /tier, /as. */
bool rc_heroku_immutable(const char *kind, const char *path);

/*
 * The one-off dyno command of a hook: each argument single-quoted for sh
 * ('it'\''s'), joined by spaces, then
 *   ; echo "reconcile-exit:<token>:$?"
 * so that the exit status can be read from the output. Appends to out.
 */
void rc_heroku_hook_command(rc_buf *out, const json_t *argv,
			    const char *token);
/* The token of one run of a hook: 16 hex digits of SHA-256(run_id "\n"
 * hook) (new string). */
char *rc_heroku_hook_token(const char *run_id, const char *hook);
/* The exit status a line carries after "reconcile-exit:<token>:", or -1
 * when it carries none (the echo of the command itself carries "$?"). */
int rc_heroku_exit_marker(const char *line, const char *token);

/* The password of `machine <host>` (else of `default`) in the text of a
 * netrc file (new string), or NULL. */
char *rc_heroku_netrc_password(const char *text, const char *host);

/* Checks an API or registry URL: https://, or http:// for a loopback host
 * only (localhost, 127.0.0.0/8, [::1]). RC_EINVALID naming what (e.g.
 * "HEROKU_API_URL") otherwise. */
int rc_heroku_url_check(const char *url, const char *what);

#endif
