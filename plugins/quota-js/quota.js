// The quota admission policy (plugins/quota) written again in JavaScript, to show that a
// vdi:plugin component can come from any language. It must pass the same vectors
// (plugins/testdata/quota) as the Rust original, word for word.
//
// Built with componentize-qjs (QuickJS): records arrive with camelCase keys, variants as
// {tag, val}, u64 as plain numbers; a result's error is thrown.

const DEFAULTS = {
  maxSessionsPerUser: 3,
  maxGpuSlicesPerUser: 4,
  maxTimeoutSeconds: 8 * 3600,
  defaultTimeoutSeconds: 3600,
  templatesByGroup: null,
};

function fieldError(field, reason) {
  return { field, reason };
}

function parseSettings(json) {
  let raw = {};
  if (json.trim() !== "") {
    try {
      raw = JSON.parse(json);
    } catch (e) {
      throw fieldError("settings", String(e));
    }
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw fieldError("settings", "must be a JSON object");
  }
  const s = { ...DEFAULTS };
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in DEFAULTS)) {
      throw fieldError(key, `unknown field \`${key}\``);
    }
    if (key === "templatesByGroup") {
      if (value !== null && (typeof value !== "object" || Array.isArray(value))) {
        throw fieldError(key, "must be an object of group -> list of templates");
      }
    } else if (!Number.isInteger(value) || value < 0) {
      throw fieldError(key, "must be a non-negative integer");
    }
    s[key] = value;
  }
  if (s.maxTimeoutSeconds === 0) throw fieldError("maxTimeoutSeconds", "must be greater than 0");
  if (s.defaultTimeoutSeconds === 0) throw fieldError("defaultTimeoutSeconds", "must be greater than 0");
  if (s.defaultTimeoutSeconds > s.maxTimeoutSeconds) {
    throw fieldError(
      "defaultTimeoutSeconds",
      `${s.defaultTimeoutSeconds} exceeds maxTimeoutSeconds ${s.maxTimeoutSeconds}`,
    );
  }
  return s;
}

export function configure(settings) {
  return JSON.stringify(parseSettings(settings));
}

export function review(settings, request, context) {
  let s;
  try {
    s = parseSettings(settings);
  } catch (e) {
    throw { tag: "invalid", val: e };
  }
  const spec = request.spec;
  const user = spec.user;
  if (s.templatesByGroup) {
    const allowed = (group) =>
      (s.templatesByGroup[group] || []).some((t) => t === "*" || t === spec.template);
    if (!allowed("*") && !user.groups.some(allowed)) {
      const groups = user.groups.length === 0 ? "none" : user.groups.join(", ");
      return {
        tag: "deny",
        val: `template "${spec.template}" is not allowed for user "${user.name}" (groups: ${groups})`,
      };
    }
  }
  // On update the session is already among the active ones: count the others.
  const others = context.activeSessions.filter((a) => a.name !== request.name);
  const count = others.length;
  const slices = others.reduce((sum, a) => sum + a.resources.gpuSlices, 0);
  if (context.operation === "create" && count >= s.maxSessionsPerUser) {
    return {
      tag: "deny",
      val: `user "${user.name}" already has ${count} active sessions (limit ${s.maxSessionsPerUser})`,
    };
  }
  const asks = spec.resources.gpuSlices;
  const wanted = slices + asks;
  if (asks > 0 && wanted > s.maxGpuSlicesPerUser) {
    return {
      tag: "deny",
      val: `user "${user.name}" would hold ${wanted} GPU slices (holds ${slices}, asks ${asks}; limit ${s.maxGpuSlicesPerUser})`,
    };
  }
  const timeout =
    spec.timeoutSeconds === 0
      ? s.defaultTimeoutSeconds
      : Math.min(spec.timeoutSeconds, s.maxTimeoutSeconds);
  if (timeout === spec.timeoutSeconds) {
    return { tag: "allow" };
  }
  return { tag: "mutate", val: { ...spec, timeoutSeconds: timeout } };
}
