// Template `{{name}}`: renders a session as one Pod (the template's image, the admitted
// resources, on the placed node, under Pod Security "restricted") and one Service in front of
// it. The host checks the objects, fills in the namespace and its labels, and owns them.
//
// componentize-qjs maps the WIT types: records have camelCase keys, variants are {tag, val},
// option<T> is T or null, u64 are plain numbers, and a thrown value is the function's error.

const DEFAULTS = {
  // Port the desktop serves on; the Service forwards to it.
  port: 8080,
  // uid (and gid) the desktop runs as; never 0.
  runAsUser: 1000,
};

function parseSettings(json) {
  const raw = json.trim() === "" ? {} : JSON.parse(json);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw { field: "settings", reason: "must be a JSON object" };
  }
  const s = { ...DEFAULTS };
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in DEFAULTS)) throw { field: key, reason: `unknown field \`${key}\`` };
    if (!Number.isInteger(value) || value < 0) {
      throw { field: key, reason: "must be a non-negative integer" };
    }
    s[key] = value;
  }
  if (s.runAsUser === 0) throw { field: "runAsUser", reason: "sessions never run as root (uid 0)" };
  if (s.port === 0 || s.port > 65535) throw { field: "port", reason: "must be between 1 and 65535" };
  return s;
}

export function configure(settings) {
  return JSON.stringify(parseSettings(settings));
}

export function render(settings, request, template, placement) {
  let s;
  try {
    s = parseSettings(settings);
  } catch (e) {
    throw { tag: "invalid", val: e };
  }
  if (template.image === "") {
    throw { tag: "invalid", val: { field: "template.image", reason: "must not be empty" } };
  }
  const r = request.spec.resources;
  // The Service selects the pod by the label the host puts on every session object.
  const selector = { "vdi.dev/session": request.name };
  const metadata = { name: request.name, namespace: request.namespace, labels: selector };
  const resources = { cpu: `${r.cpuMillis}m`, memory: `${r.memoryMib}Mi` };
  if (r.gpuSlices > 0) resources["nvidia.com/gpu"] = String(r.gpuSlices);
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata,
    spec: {
      nodeName: placement.node,
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: s.runAsUser,
        runAsGroup: s.runAsUser,
        seccompProfile: { type: "RuntimeDefault" },
      },
      containers: [
        {
          name: "desktop",
          image: template.image,
          ports: [{ name: "http", containerPort: s.port, protocol: "TCP" }],
          resources: { requests: resources, limits: resources },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        },
      ],
    },
  };
  const service = {
    apiVersion: "v1",
    kind: "Service",
    metadata,
    spec: {
      type: "ClusterIP",
      selector,
      ports: [{ name: "http", port: s.port, targetPort: "http", protocol: "TCP" }],
    },
  };
  return [pod, service].map((o) => JSON.stringify(o));
}
