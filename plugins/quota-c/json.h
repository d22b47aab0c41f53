/* A small JSON reader for the quota policy's settings: a tree of values from one UTF-8 text,
 * with a message on failure. Integers only (the settings hold no fractions). */
#ifndef QUOTA_JSON_H
#define QUOTA_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  JSON_NULL,
  JSON_BOOL,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
} json_kind;

typedef struct json_value json_value;

/* An object member or an array element (then key is NULL). */
typedef struct json_member {
  char *key;
  json_value *value;
} json_member;

struct json_value {
  json_kind kind;
  /* JSON_BOOL: 0 or 1. */
  int boolean;
  /* JSON_NUMBER: is_integer says whether the text was an integer within [0, 2^64); then
   * integer holds it. A negative, fractional or exponent number has is_integer 0. */
  int is_integer;
  uint64_t integer;
  /* JSON_STRING: NUL-terminated UTF-8 (a \u0000 escape is refused). */
  char *string;
  /* JSON_ARRAY and JSON_OBJECT: items in document order. */
  json_member *items;
  size_t len;
};

/* Parses text[0..len). Returns NULL and sets *error (a static message) on malformed input. */
json_value *json_parse(const char *text, size_t len, const char **error);

/* Frees a tree from json_parse. */
void json_free(json_value *v);

#endif
