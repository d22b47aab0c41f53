/* Unit tests of the JSON reader and the settings, compiled natively and run by build.sh before
 * it builds the component. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "settings.h"

static int failures = 0;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                        \
    }                                                                    \
  } while (0)

static json_value *parse(const char *text, const char **error) {
  return json_parse(text, strlen(text), error);
}

static void json_reads_values_and_refuses_malformed_text(void) {
  const char *error = NULL;
  json_value *v = parse(" {\"a\": [1, \"x\\u00e9\\ud83d\\ude00\\n\", true, null, -2, 1.5]} ", &error);
  CHECK(v != NULL && error == NULL);
  if (v != NULL) {
    CHECK(v->kind == JSON_OBJECT && v->len == 1 && strcmp(v->items[0].key, "a") == 0);
    const json_value *a = v->items[0].value;
    CHECK(a->kind == JSON_ARRAY && a->len == 6);
    CHECK(a->items[0].value->is_integer && a->items[0].value->integer == 1);
    CHECK(strcmp(a->items[1].value->string, "x\xc3\xa9\xf0\x9f\x98\x80\n") == 0);
    CHECK(a->items[2].value->kind == JSON_BOOL && a->items[2].value->boolean == 1);
    CHECK(a->items[3].value->kind == JSON_NULL);
    CHECK(a->items[4].value->kind == JSON_NUMBER && !a->items[4].value->is_integer);
    CHECK(a->items[5].value->kind == JSON_NUMBER && !a->items[5].value->is_integer);
  }
  json_free(v);

  v = parse("18446744073709551616", &error);
  CHECK(v != NULL && !v->is_integer);
  json_free(v);

  const char *bad[] = {"", "{", "{\"a\" 1}", "[1,]", "01", "\"\\x\"", "\"\\u0000\"", "\"\\ud800\"",
                       "{} x", "tru", "\"a\nb\""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    error = NULL;
    v = parse(bad[i], &error);
    if (v != NULL || error == NULL) {
      fprintf(stderr, "accepted malformed JSON: %s\n", bad[i]);
      failures++;
    }
    json_free(v);
  }

  char deep[200];
  memset(deep, '[', sizeof deep - 1);
  deep[sizeof deep - 1] = '\0';
  v = parse(deep, &error);
  CHECK(v == NULL && error != NULL && strstr(error, "deeply") != NULL);
}

/* Parses settings expecting a refusal of field with a reason containing `reason`. */
static void refused(const char *text, const char *field, const char *reason) {
  settings s;
  settings_error e = {NULL, NULL};
  int ok = settings_parse(text, strlen(text), &s, &e);
  if (ok || e.field == NULL || strcmp(e.field, field) != 0 || e.reason == NULL ||
      strstr(e.reason, reason) == NULL) {
    fprintf(stderr, "settings %s: expected %s: %s, got %s: %s\n", text, field, reason,
            e.field ? e.field : "(none)", e.reason ? e.reason : "(none)");
    failures++;
  }
  free(e.field);
  free(e.reason);
  settings_free(&s);
}

static void settings_refuse_what_the_rust_policy_refuses(void) {
  refused("{\"maxSessions\": 1}", "maxSessions", "unknown field `maxSessions`");
  refused("{\"maxSessionsPerUser\": -1}", "maxSessionsPerUser", "non-negative integer");
  refused("{\"maxSessionsPerUser\": 1.5}", "maxSessionsPerUser", "non-negative integer");
  refused("{\"maxGpuSlicesPerUser\": \"2\"}", "maxGpuSlicesPerUser", "non-negative integer");
  refused("{\"maxGpuSlicesPerUser\": 4294967296}", "maxGpuSlicesPerUser", "at most 4294967295");
  refused("{\"maxTimeoutSeconds\": 0}", "maxTimeoutSeconds", "must be greater than 0");
  refused("{\"defaultTimeoutSeconds\": 0}", "defaultTimeoutSeconds", "must be greater than 0");
  refused("{\"maxTimeoutSeconds\": 600}", "defaultTimeoutSeconds", "3600 exceeds maxTimeoutSeconds 600");
  refused("{\"templatesByGroup\": {\"staff\": \"ubuntu\"}}", "templatesByGroup", "group -> list");
  refused("{\"templatesByGroup\": {\"staff\": [1]}}", "templatesByGroup", "group -> list");
  refused("[]", "settings", "JSON object");
  refused("{", "settings", "");
}

static int allows(const settings *s, const char *template_name, const char *group) {
  str_ref t = {template_name, strlen(template_name)};
  str_ref g = {group, group == NULL ? 0 : strlen(group)};
  return settings_allow_template(s, t, &g, group == NULL ? 0 : 1);
}

static void settings_normalise_and_grant_templates(void) {
  settings s;
  settings_error e = {NULL, NULL};
  size_t len = 0;
  CHECK(settings_parse("  ", 2, &s, &e));
  char *json = settings_to_json(&s, &len);
  CHECK(json != NULL &&
        strcmp(json, "{\"maxSessionsPerUser\":3,\"maxGpuSlicesPerUser\":4,\"maxTimeoutSeconds\":28800,"
                     "\"defaultTimeoutSeconds\":3600,\"templatesByGroup\":null}") == 0);
  CHECK(allows(&s, "anything", NULL));
  free(json);
  settings_free(&s);

  const char *text = "{\"templatesByGroup\": {\"staff\": [\"ubuntu\"], \"admins\": [\"*\"], "
                     "\"q\\\"uote\": []}, \"maxSessionsPerUser\": 7}";
  CHECK(settings_parse(text, strlen(text), &s, &e));
  CHECK(s.max_sessions_per_user == 7);
  CHECK(allows(&s, "ubuntu", "staff"));
  CHECK(!allows(&s, "blender", "staff"));
  CHECK(allows(&s, "blender", "admins"));
  CHECK(!allows(&s, "ubuntu", NULL));
  CHECK(!allows(&s, "ubuntu", "staf"));
  json = settings_to_json(&s, &len);
  settings_free(&s);
  /* What configure returns reads back to the same settings. */
  CHECK(json != NULL && strstr(json, "\"q\\\"uote\":[]") != NULL);
  CHECK(json != NULL && settings_parse(json, len, &s, &e));
  CHECK(s.max_sessions_per_user == 7 && allows(&s, "ubuntu", "staff") && !allows(&s, "x", "staff"));
  free(json);
  settings_free(&s);
}

int main(void) {
  json_reads_values_and_refuses_malformed_text();
  settings_refuse_what_the_rust_policy_refuses();
  settings_normalise_and_grant_templates();
  if (failures > 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("quota-c unit tests: ok\n");
  return 0;
}
