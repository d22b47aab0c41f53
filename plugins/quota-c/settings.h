/* The quota policy's settings (VDIPlugin.spec.settings), as plugins/quota defines them: parsed
 * from JSON with defaults filled in, checked, and written back normalised. */
#ifndef QUOTA_SETTINGS_H
#define QUOTA_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define DEFAULT_MAX_SESSIONS_PER_USER 3
#define DEFAULT_MAX_GPU_SLICES_PER_USER 4
#define DEFAULT_MAX_TIMEOUT_SECONDS (8 * 3600)
#define DEFAULT_TIMEOUT_SECONDS 3600

typedef struct {
  /* Most active sessions one user may have. */
  uint32_t max_sessions_per_user;
  /* Most GPU slices one user may hold across all sessions. */
  uint32_t max_gpu_slices_per_user;
  /* Longest timeout a session may ask for; longer ones are clamped. */
  uint64_t max_timeout_seconds;
  /* Timeout given to sessions that ask for none (0). */
  uint64_t default_timeout_seconds;
  /* Templates each group may start (an object of arrays of strings; `*` as a group means
   * everyone, as a template any template), or NULL: every template to everyone. Points into
   * root. */
  const json_value *templates_by_group;
  /* The parsed document (freed by settings_free). */
  json_value *root;
} settings;

/* Why settings were refused: the field and the reason, both malloc'ed. */
typedef struct {
  char *field;
  char *reason;
} settings_error;

/* Parses and checks text[0..len) (empty means all defaults). Returns 1, or 0 with *err set. */
int settings_parse(const char *text, size_t len, settings *out, settings_error *err);

/* The settings as normalised JSON (every field present), malloc'ed; NULL when out of memory. */
char *settings_to_json(const settings *s, size_t *len);

/* A borrowed UTF-8 string with its length (component-model strings are not NUL-terminated). */
typedef struct {
  const char *ptr;
  size_t len;
} str_ref;

/* Whether the settings let a user in these groups start this template. */
int settings_allow_template(const settings *s, str_ref template_name, const str_ref *groups,
                            size_t group_count);

void settings_free(settings *s);

#endif
