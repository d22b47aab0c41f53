/* See json.h. A recursive-descent parser with a depth limit, so hostile settings cannot
 * exhaust the stack. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
  const char *p;
  const char *end;
  const char *error;
  int depth;
} parser;

static void skip_space(parser *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
    s->p++;
  }
}

static json_value *fail(parser *s, const char *message) {
  if (s->error == NULL) {
    s->error = message;
  }
  return NULL;
}

static json_value *new_value(parser *s, json_kind kind) {
  json_value *v = calloc(1, sizeof *v);
  if (v == NULL) {
    return fail(s, "out of memory");
  }
  v->kind = kind;
  return v;
}

static int literal(parser *s, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
    return 0;
  }
  s->p += n;
  return 1;
}

static int hex4(parser *s, unsigned *out) {
  unsigned v = 0;
  if (s->end - s->p < 4) {
    return 0;
  }
  for (int i = 0; i < 4; i++) {
    char c = *s->p++;
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= (unsigned)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= (unsigned)(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= (unsigned)(c - 'A' + 10);
    } else {
      return 0;
    }
  }
  *out = v;
  return 1;
}

/* Appends code point cp as UTF-8 to out (room for 4 bytes is the caller's). */
static size_t put_utf8(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Parses a string after its opening quote; an escape never makes the text longer, so the
 * rest of the input bounds the output. */
static char *parse_string_raw(parser *s) {
  char *out = malloc((size_t)(s->end - s->p) + 1);
  size_t n = 0;
  if (out == NULL) {
    fail(s, "out of memory");
    return NULL;
  }
  while (s->p < s->end) {
    unsigned char c = (unsigned char)*s->p++;
    if (c == '"') {
      out[n] = '\0';
      return out;
    }
    if (c < 0x20) {
      break;
    }
    if (c != '\\') {
      out[n++] = (char)c;
      continue;
    }
    if (s->p >= s->end) {
      break;
    }
    char e = *s->p++;
    switch (e) {
      case '"': out[n++] = '"'; break;
      case '\\': out[n++] = '\\'; break;
      case '/': out[n++] = '/'; break;
      case 'b': out[n++] = '\b'; break;
      case 'f': out[n++] = '\f'; break;
      case 'n': out[n++] = '\n'; break;
      case 'r': out[n++] = '\r'; break;
      case 't': out[n++] = '\t'; break;
      case 'u': {
        unsigned cp;
        if (!hex4(s, &cp) || cp == 0) {
          free(out);
          fail(s, "invalid \\u escape in a string");
          return NULL;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned lo;
          if (!literal(s, "\\u") || !hex4(s, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
            free(out);
            fail(s, "unpaired surrogate in a string");
            return NULL;
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          free(out);
          fail(s, "unpaired surrogate in a string");
          return NULL;
        }
        n += put_utf8(out + n, cp);
        break;
      }
      default:
        free(out);
        fail(s, "invalid escape in a string");
        return NULL;
    }
  }
  free(out);
  fail(s, "unterminated string");
  return NULL;
}

static json_value *parse_value(parser *s);

static json_value *parse_number(parser *s) {
  json_value *v = new_value(s, JSON_NUMBER);
  if (v == NULL) {
    return NULL;
  }
  int negative = 0;
  if (s->p < s->end && *s->p == '-') {
    negative = 1;
    s->p++;
  }
  if (s->p >= s->end || *s->p < '0' || *s->p > '9') {
    free(v);
    return fail(s, "invalid number");
  }
  int overflow = 0;
  uint64_t n = 0;
  const char *digits = s->p;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
    unsigned d = (unsigned)(*s->p++ - '0');
    if (n > (UINT64_MAX - d) / 10) {
      overflow = 1;
    }
    n = n * 10 + d;
  }
  if (*digits == '0' && s->p - digits > 1) {
    free(v);
    return fail(s, "invalid number (leading zero)");
  }
  int fraction = 0;
  if (s->p < s->end && *s->p == '.') {
    fraction = 1;
    s->p++;
    if (s->p >= s->end || *s->p < '0' || *s->p > '9') {
      free(v);
      return fail(s, "invalid number");
    }
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
      s->p++;
    }
  }
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
    fraction = 1;
    s->p++;
    if (s->p < s->end && (*s->p == '+' || *s->p == '-')) {
      s->p++;
    }
    if (s->p >= s->end || *s->p < '0' || *s->p > '9') {
      free(v);
      return fail(s, "invalid number");
    }
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
      s->p++;
    }
  }
  v->is_integer = !negative && !fraction && !overflow;
  v->integer = v->is_integer ? n : 0;
  return v;
}

/* Appends an item to a container; returns 0 when out of memory. */
static int push(json_value *container, char *key, json_value *value) {
  json_member *items = realloc(container->items, (container->len + 1) * sizeof *items);
  if (items == NULL) {
    return 0;
  }
  container->items = items;
  items[container->len].key = key;
  items[container->len].value = value;
  container->len++;
  return 1;
}

static json_value *parse_container(parser *s, int object) {
  char close = object ? '}' : ']';
  json_value *v = new_value(s, object ? JSON_OBJECT : JSON_ARRAY);
  if (v == NULL) {
    return NULL;
  }
  if (++s->depth > MAX_DEPTH) {
    free(v);
    return fail(s, "nested too deeply");
  }
  skip_space(s);
  if (s->p < s->end && *s->p == close) {
    s->p++;
    s->depth--;
    return v;
  }
  for (;;) {
    char *key = NULL;
    skip_space(s);
    if (object) {
      if (s->p >= s->end || *s->p != '"') {
        json_free(v);
        return fail(s, "expected a member name");
      }
      s->p++;
      key = parse_string_raw(s);
      if (key == NULL) {
        json_free(v);
        return NULL;
      }
      skip_space(s);
      if (s->p >= s->end || *s->p != ':') {
        free(key);
        json_free(v);
        return fail(s, "expected ':' after a member name");
      }
      s->p++;
    }
    json_value *item = parse_value(s);
    if (item == NULL || !push(v, key, item)) {
      free(key);
      json_free(item);
      json_free(v);
      return fail(s, "out of memory");
    }
    skip_space(s);
    if (s->p < s->end && *s->p == ',') {
      s->p++;
      continue;
    }
    if (s->p < s->end && *s->p == close) {
      s->p++;
      s->depth--;
      return v;
    }
    json_free(v);
    return fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static json_value *parse_value(parser *s) {
  skip_space(s);
  if (s->p >= s->end) {
    return fail(s, "unexpected end of input");
  }
  char c = *s->p;
  if (c == '{' || c == '[') {
    s->p++;
    return parse_container(s, c == '{');
  }
  if (c == '"') {
    s->p++;
    char *text = parse_string_raw(s);
    if (text == NULL) {
      return NULL;
    }
    json_value *v = new_value(s, JSON_STRING);
    if (v == NULL) {
      free(text);
      return NULL;
    }
    v->string = text;
    return v;
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    return parse_number(s);
  }
  if (literal(s, "null")) {
    return new_value(s, JSON_NULL);
  }
  if (literal(s, "true") || literal(s, "false")) {
    json_value *v = new_value(s, JSON_BOOL);
    if (v != NULL) {
      v->boolean = s->p[-1] == 'e' && s->p[-2] == 'u';
    }
    return v;
  }
  return fail(s, "unexpected character");
}

json_value *json_parse(const char *text, size_t len, const char **error) {
  parser s = {text, text + len, NULL, 0};
  json_value *v = parse_value(&s);
  if (v != NULL) {
    skip_space(&s);
    if (s.p != s.end) {
      json_free(v);
      v = NULL;
      fail(&s, "trailing characters after the value");
    }
  }
  *error = v == NULL ? (s.error != NULL ? s.error : "invalid JSON") : NULL;
  return v;
}

void json_free(json_value *v) {
  if (v == NULL) {
    return;
  }
  for (size_t i = 0; i < v->len; i++) {
    free(v->items[i].key);
    json_free(v->items[i].value);
  }
  free(v->items);
  free(v->string);
  free(v);
}
