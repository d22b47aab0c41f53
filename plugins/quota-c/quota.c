/* The quota admission policy (plugins/quota) written again in C, to show that a vdi:plugin
 * component can come from any language the component model reaches. It passes the same vectors
 * (plugins/testdata/quota) as the Rust original, word for word.
 *
 * Bindings: `wit-bindgen c` (out/gen/admission.{h,c}). Arguments arrive owned by this code
 * (freed here); what a function returns is freed by the generated post-return after the host
 * has read it, so it must be malloc'ed and share nothing with the arguments. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admission.h"
#include "settings.h"

static str_ref ref(const admission_string_t *s) {
  str_ref r = {(const char *)s->ptr, s->len};
  return r;
}

/* Formats into a new component-model string; 0 when out of memory. */
static int string_printf(admission_string_t *out, const char *format, ...) {
  va_list args;
  va_start(args, format);
  int n = vsnprintf(NULL, 0, format, args);
  va_end(args);
  if (n < 0) {
    return 0;
  }
  char *text = malloc((size_t)n + 1);
  if (text == NULL) {
    return 0;
  }
  va_start(args, format);
  vsnprintf(text, (size_t)n + 1, format, args);
  va_end(args);
  out->ptr = (uint8_t *)text;
  out->len = (size_t)n;
  return 1;
}

/* Moves a settings error into a field-error (taking its strings). */
static void field_error(settings_error *e, admission_field_error_t *out) {
  out->field.ptr = (uint8_t *)e->field;
  out->field.len = e->field == NULL ? 0 : strlen(e->field);
  out->reason.ptr = (uint8_t *)e->reason;
  out->reason.len = e->reason == NULL ? 0 : strlen(e->reason);
}

bool exports_admission_configure(admission_string_t *text, admission_string_t *ret,
                                 admission_field_error_t *err) {
  settings s;
  settings_error e = {NULL, NULL};
  int ok = settings_parse((const char *)text->ptr, text->len, &s, &e);
  admission_string_free(text);
  if (!ok) {
    settings_free(&s);
    field_error(&e, err);
    return false;
  }
  size_t len = 0;
  char *json = settings_to_json(&s, &len);
  settings_free(&s);
  if (json == NULL) {
    admission_string_dup(&err->field, "settings");
    admission_string_dup(&err->reason, "out of memory");
    return false;
  }
  ret->ptr = (uint8_t *)json;
  ret->len = len;
  return true;
}

/* "a, b" or "none". */
static int join_groups(const admission_list_string_t *groups, admission_string_t *out) {
  if (groups->len == 0) {
    return string_printf(out, "none");
  }
  size_t len = 0;
  for (size_t i = 0; i < groups->len; i++) {
    len += groups->ptr[i].len + 2;
  }
  char *text = malloc(len + 1);
  if (text == NULL) {
    return 0;
  }
  size_t n = 0;
  for (size_t i = 0; i < groups->len; i++) {
    if (i > 0) {
      memcpy(text + n, ", ", 2);
      n += 2;
    }
    memcpy(text + n, groups->ptr[i].ptr, groups->ptr[i].len);
    n += groups->ptr[i].len;
  }
  out->ptr = (uint8_t *)text;
  out->len = n;
  return 1;
}

/* The decision; 0 only when out of memory. */
static int decide(const settings *s, admission_session_request_t *request,
                  const admission_admission_context_t *context, admission_verdict_t *ret) {
  vdi_plugin_types_session_spec_t *spec = &request->spec;
  const admission_list_string_t *groups = &spec->user.groups;
  int user_len = (int)spec->user.name.len;
  const char *user = (const char *)spec->user.name.ptr;

  str_ref *group_refs = calloc(groups->len + 1, sizeof *group_refs);
  if (group_refs == NULL) {
    return 0;
  }
  for (size_t i = 0; i < groups->len; i++) {
    group_refs[i] = ref(&groups->ptr[i]);
  }
  int allowed = settings_allow_template(s, ref(&spec->template_), group_refs, groups->len);
  free(group_refs);
  if (!allowed) {
    admission_string_t names;
    if (!join_groups(groups, &names)) {
      return 0;
    }
    ret->tag = VDI_PLUGIN_TYPES_VERDICT_DENY;
    int ok = string_printf(&ret->val.deny, "template \"%.*s\" is not allowed for user \"%.*s\" (groups: %.*s)",
                           (int)spec->template_.len, (const char *)spec->template_.ptr, user_len, user,
                           (int)names.len, (const char *)names.ptr);
    admission_string_free(&names);
    return ok;
  }

  /* On update the session is already among the active ones: count the others. */
  uint64_t count = 0;
  uint64_t slices = 0;
  for (size_t i = 0; i < context->active_sessions.len; i++) {
    const vdi_plugin_types_active_session_t *a = &context->active_sessions.ptr[i];
    if (a->name.len == request->name.len && memcmp(a->name.ptr, request->name.ptr, a->name.len) == 0) {
      continue;
    }
    count++;
    slices += a->resources.gpu_slices;
  }
  if (context->operation == VDI_PLUGIN_TYPES_OPERATION_CREATE && count >= s->max_sessions_per_user) {
    ret->tag = VDI_PLUGIN_TYPES_VERDICT_DENY;
    return string_printf(&ret->val.deny, "user \"%.*s\" already has %llu active sessions (limit %lu)",
                         user_len, user, (unsigned long long)count,
                         (unsigned long)s->max_sessions_per_user);
  }
  uint64_t asks = spec->resources.gpu_slices;
  uint64_t wanted = slices + asks;
  if (asks > 0 && wanted > s->max_gpu_slices_per_user) {
    ret->tag = VDI_PLUGIN_TYPES_VERDICT_DENY;
    return string_printf(&ret->val.deny,
                         "user \"%.*s\" would hold %llu GPU slices (holds %llu, asks %llu; limit %lu)",
                         user_len, user, (unsigned long long)wanted, (unsigned long long)slices,
                         (unsigned long long)asks, (unsigned long)s->max_gpu_slices_per_user);
  }
  uint64_t timeout = spec->timeout_seconds == 0 ? s->default_timeout_seconds
                     : spec->timeout_seconds < s->max_timeout_seconds ? spec->timeout_seconds
                                                                     : s->max_timeout_seconds;
  if (timeout == spec->timeout_seconds) {
    ret->tag = VDI_PLUGIN_TYPES_VERDICT_ALLOW;
    return 1;
  }
  /* The verdict takes the request's spec (the caller frees the rest of the request). */
  ret->tag = VDI_PLUGIN_TYPES_VERDICT_MUTATE;
  ret->val.mutate = *spec;
  ret->val.mutate.timeout_seconds = timeout;
  memset(spec, 0, sizeof *spec);
  return 1;
}

bool exports_admission_review(admission_string_t *text, admission_session_request_t *request,
                              admission_admission_context_t *context, admission_verdict_t *ret,
                              admission_plugin_error_t *err) {
  settings s;
  settings_error e = {NULL, NULL};
  bool ok = true;
  if (!settings_parse((const char *)text->ptr, text->len, &s, &e)) {
    err->tag = VDI_PLUGIN_TYPES_PLUGIN_ERROR_INVALID;
    field_error(&e, &err->val.invalid);
    ok = false;
  } else if (!decide(&s, request, context, ret)) {
    err->tag = VDI_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL;
    admission_string_dup(&err->val.internal, "out of memory");
    ok = false;
  }
  settings_free(&s);
  admission_string_free(text);
  admission_session_request_free(request);
  admission_admission_context_free(context);
  return ok;
}
