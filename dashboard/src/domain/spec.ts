// A JSON spec typed by an admin: an object, or the reason it is not one.
export type Parsed = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

export function parseSpec(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `spec: not JSON (${e instanceof Error ? e.message : String(e)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'spec: must be a JSON object' };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** A Kubernetes object name (RFC 1123 label) for an `<input pattern>` (`v`-flag syntax). */
export const NAME_PATTERN = '[a-z0-9]([a-z0-9\\-]*[a-z0-9])?';
