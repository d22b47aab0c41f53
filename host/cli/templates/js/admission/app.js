// Admission policy `{{name}}`: refuses sessions that ask for more GPU slices than allowed.
//
// componentize-qjs maps the WIT types: records have camelCase keys, variants are {tag, val},
// u64 are plain numbers, and a thrown value is the function's error.

// Most GPU slices one session may ask for when the settings say nothing.
const DEFAULT_MAX_GPU_SLICES = 2;

function parseSettings(json) {
  const raw = json.trim() === "" ? {} : JSON.parse(json);
  const s = { maxGpuSlices: DEFAULT_MAX_GPU_SLICES };
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in s)) throw { field: key, reason: `unknown field \`${key}\`` };
    if (!Number.isInteger(value) || value < 0) {
      throw { field: key, reason: "must be a non-negative integer" };
    }
    s[key] = value;
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
  const asks = request.spec.resources.gpuSlices;
  if (asks > s.maxGpuSlices) {
    return {
      tag: "deny",
      val: `session "${request.name}" asks for ${asks} GPU slices (limit ${s.maxGpuSlices})`,
    };
  }
  return { tag: "allow" };
}
