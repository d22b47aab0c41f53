/* See settings.h. Field names, defaults and messages are plugins/quota's, so the same vectors
 * pass. */
#include "settings.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_printf(const char *format, ...) {
  va_list args;
  va_start(args, format);
  int n = vsnprintf(NULL, 0, format, args);
  va_end(args);
  if (n < 0) {
    return NULL;
  }
  char *out = malloc((size_t)n + 1);
  if (out == NULL) {
    return NULL;
  }
  va_start(args, format);
  vsnprintf(out, (size_t)n + 1, format, args);
  va_end(args);
  return out;
}

static int refuse(settings_error *err, const char *field, char *reason) {
  err->field = dup_printf("%s", field);
  err->reason = reason;
  return 0;
}

/* An integer field: a non-negative JSON integer no larger than max. */
static int integer_field(const json_member *m, uint64_t max, uint64_t *out, settings_error *err) {
  const json_value *v = m->value;
  if (v->kind != JSON_NUMBER || !v->is_integer) {
    return refuse(err, m->key, dup_printf("must be a non-negative integer"));
  }
  if (v->integer > max) {
    return refuse(err, m->key, dup_printf("must be at most %llu", (unsigned long long)max));
  }
  *out = v->integer;
  return 1;
}

static int templates_field(const json_member *m, const json_value **out, settings_error *err) {
  const json_value *v = m->value;
  if (v->kind == JSON_NULL) {
    *out = NULL;
    return 1;
  }
  int ok = v->kind == JSON_OBJECT;
  for (size_t i = 0; ok && i < v->len; i++) {
    const json_value *list = v->items[i].value;
    ok = list->kind == JSON_ARRAY;
    for (size_t j = 0; ok && j < list->len; j++) {
      ok = list->items[j].value->kind == JSON_STRING;
    }
  }
  if (!ok) {
    return refuse(err, m->key, dup_printf("must be an object of group -> list of templates"));
  }
  *out = v;
  return 1;
}

int settings_parse(const char *text, size_t len, settings *out, settings_error *err) {
  memset(out, 0, sizeof *out);
  out->max_sessions_per_user = DEFAULT_MAX_SESSIONS_PER_USER;
  out->max_gpu_slices_per_user = DEFAULT_MAX_GPU_SLICES_PER_USER;
  out->max_timeout_seconds = DEFAULT_MAX_TIMEOUT_SECONDS;
  out->default_timeout_seconds = DEFAULT_TIMEOUT_SECONDS;
  size_t start = 0;
  while (start < len && strchr(" \t\r\n", text[start]) != NULL) {
    start++;
  }
  if (start == len) {
    return 1;
  }
  const char *error = NULL;
  out->root = json_parse(text, len, &error);
  if (out->root == NULL) {
    return refuse(err, "settings", dup_printf("%s", error));
  }
  if (out->root->kind != JSON_OBJECT) {
    return refuse(err, "settings", dup_printf("must be a JSON object"));
  }
  for (size_t i = 0; i < out->root->len; i++) {
    const json_member *m = &out->root->items[i];
    uint64_t n = 0;
    int ok;
    if (strcmp(m->key, "maxSessionsPerUser") == 0) {
      ok = integer_field(m, UINT32_MAX, &n, err);
      out->max_sessions_per_user = (uint32_t)n;
    } else if (strcmp(m->key, "maxGpuSlicesPerUser") == 0) {
      ok = integer_field(m, UINT32_MAX, &n, err);
      out->max_gpu_slices_per_user = (uint32_t)n;
    } else if (strcmp(m->key, "maxTimeoutSeconds") == 0) {
      ok = integer_field(m, UINT64_MAX, &out->max_timeout_seconds, err);
    } else if (strcmp(m->key, "defaultTimeoutSeconds") == 0) {
      ok = integer_field(m, UINT64_MAX, &out->default_timeout_seconds, err);
    } else if (strcmp(m->key, "templatesByGroup") == 0) {
      ok = templates_field(m, &out->templates_by_group, err);
    } else {
      ok = refuse(err, m->key, dup_printf("unknown field `%s`", m->key));
    }
    if (!ok) {
      return 0;
    }
  }
  if (out->max_timeout_seconds == 0) {
    return refuse(err, "maxTimeoutSeconds", dup_printf("must be greater than 0"));
  }
  if (out->default_timeout_seconds == 0) {
    return refuse(err, "defaultTimeoutSeconds", dup_printf("must be greater than 0"));
  }
  if (out->default_timeout_seconds > out->max_timeout_seconds) {
    return refuse(err, "defaultTimeoutSeconds",
                  dup_printf("%llu exceeds maxTimeoutSeconds %llu",
                             (unsigned long long)out->default_timeout_seconds,
                             (unsigned long long)out->max_timeout_seconds));
  }
  return 1;
}

/* A growing output buffer; ok drops to 0 once an allocation fails. */
typedef struct {
  char *data;
  size_t len;
  size_t cap;
  int ok;
} buffer;

static void put(buffer *b, const char *text, size_t n) {
  if (!b->ok) {
    return;
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->cap + n + 1) * 2;
    char *data = realloc(b->data, cap);
    if (data == NULL) {
      b->ok = 0;
      return;
    }
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, text, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void put_str(buffer *b, const char *text) { put(b, text, strlen(text)); }

static void put_json_string(buffer *b, const char *text) {
  put_str(b, "\"");
  for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
    char escaped[8];
    if (*p == '"' || *p == '\\') {
      escaped[0] = '\\';
      escaped[1] = (char)*p;
      put(b, escaped, 2);
    } else if (*p < 0x20) {
      snprintf(escaped, sizeof escaped, "\\u%04x", *p);
      put_str(b, escaped);
    } else {
      put(b, (const char *)p, 1);
    }
  }
  put_str(b, "\"");
}

char *settings_to_json(const settings *s, size_t *len) {
  buffer b = {NULL, 0, 0, 1};
  char number[256];
  snprintf(number, sizeof number,
           "{\"maxSessionsPerUser\":%lu,\"maxGpuSlicesPerUser\":%lu,\"maxTimeoutSeconds\":%llu,"
           "\"defaultTimeoutSeconds\":%llu,\"templatesByGroup\":",
           (unsigned long)s->max_sessions_per_user, (unsigned long)s->max_gpu_slices_per_user,
           (unsigned long long)s->max_timeout_seconds,
           (unsigned long long)s->default_timeout_seconds);
  put_str(&b, number);
  if (s->templates_by_group == NULL) {
    put_str(&b, "null");
  } else {
    put_str(&b, "{");
    for (size_t i = 0; i < s->templates_by_group->len; i++) {
      const json_member *group = &s->templates_by_group->items[i];
      put_str(&b, i == 0 ? "" : ",");
      put_json_string(&b, group->key);
      put_str(&b, ":[");
      for (size_t j = 0; j < group->value->len; j++) {
        put_str(&b, j == 0 ? "" : ",");
        put_json_string(&b, group->value->items[j].value->string);
      }
      put_str(&b, "]");
    }
    put_str(&b, "}");
  }
  put_str(&b, "}");
  if (!b.ok) {
    free(b.data);
    return NULL;
  }
  *len = b.len;
  return b.data;
}

static int equals(const char *text, str_ref s) {
  return strlen(text) == s.len && memcmp(text, s.ptr, s.len) == 0;
}

/* Whether the group's list names this template or `*`. */
static int group_allows(const settings *s, str_ref group, str_ref template_name) {
  for (size_t g = 0; g < s->templates_by_group->len; g++) {
    const json_member *m = &s->templates_by_group->items[g];
    if (!equals(m->key, group)) {
      continue;
    }
    for (size_t i = 0; i < m->value->len; i++) {
      const char *t = m->value->items[i].value->string;
      if (strcmp(t, "*") == 0 || equals(t, template_name)) {
        return 1;
      }
    }
  }
  return 0;
}

int settings_allow_template(const settings *s, str_ref template_name, const str_ref *groups,
                            size_t group_count) {
  static const str_ref everyone = {"*", 1};
  if (s->templates_by_group == NULL || group_allows(s, everyone, template_name)) {
    return 1;
  }
  for (size_t i = 0; i < group_count; i++) {
    if (group_allows(s, groups[i], template_name)) {
      return 1;
    }
  }
  return 0;
}

void settings_free(settings *s) {
  json_free(s->root);
  s->root = NULL;
  s->templates_by_group = NULL;
}
