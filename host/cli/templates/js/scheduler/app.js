// Scheduler `{{name}}`: places each session on the first node (in the given order) with enough
// free CPU and memory and, when it asks for GPU slices, the first GPU with enough free slices
// and memory, counting the placements made earlier in the same batch.
//
// componentize-qjs maps the WIT types: records have camelCase keys, variants are {tag, val},
// option<T> is T or null, u64 are plain numbers, and a thrown value is the function's error.

function parseSettings(json) {
  const raw = json.trim() === "" ? {} : JSON.parse(json);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw { field: "settings", reason: "must be a JSON object" };
  }
  // No settings yet: every field is unknown.
  const unknown = Object.keys(raw)[0];
  if (unknown !== undefined) throw { field: unknown, reason: `unknown field \`${unknown}\`` };
  return {};
}

export function configure(settings) {
  return JSON.stringify(parseSettings(settings));
}

// What the batch's earlier placements took from one node: CPU, memory, and per GPU index
// [slices, memory].
function takenOn(taken, node) {
  if (!taken.has(node)) taken.set(node, { cpuMillis: 0, memoryMib: 0, gpus: new Map() });
  return taken.get(node);
}

function placeOne(request, nodes, taken) {
  const r = request.spec.resources;
  const reasons = [];
  for (const node of nodes) {
    const t = takenOn(taken, node.name);
    if (node.cpuMillisFree - t.cpuMillis < r.cpuMillis || node.memoryMibFree - t.memoryMib < r.memoryMib) {
      reasons.push(`${node.name}: not enough CPU or memory`);
      continue;
    }
    let gpu = null;
    if (r.gpuSlices > 0) {
      const fits = node.gpus.find((g) => {
        const [slices, memory] = t.gpus.get(g.index) || [0, 0];
        return (
          g.slicesTotal - g.slicesUsed - slices >= r.gpuSlices &&
          g.memoryMib - g.memoryUsedMib - memory >= r.gpuMemoryMib
        );
      });
      if (fits === undefined) {
        reasons.push(`${node.name}: no GPU with enough free slices`);
        continue;
      }
      gpu = fits.index;
    }
    t.cpuMillis += r.cpuMillis;
    t.memoryMib += r.memoryMib;
    if (gpu !== null) {
      const [slices, memory] = t.gpus.get(gpu) || [0, 0];
      t.gpus.set(gpu, [slices + r.gpuSlices, memory + r.gpuMemoryMib]);
    }
    return { tag: "placed", val: { node: node.name, gpu, reason: "first fit" } };
  }
  return { tag: "unschedulable", val: reasons };
}

export function place(settings, requests, nodes) {
  try {
    parseSettings(settings);
  } catch (e) {
    throw { tag: "invalid", val: e };
  }
  const taken = new Map();
  return requests.map((r) => placeOne(r, nodes, taken));
}
