"""Template `{{name}}`: renders a session as one Pod (the template's image, the admitted
resources, on the placed node, under Pod Security "restricted") and one Service in front of it.
The host checks the objects, fills in the namespace and its labels, and owns them.

componentize-py generates `wit_world` from wit/ at build time. Errors are returned by raising
componentize_py_types.Err; any other exception traps.
"""

import json
from typing import List

import wit_world
from componentize_py_types import Err
from wit_world.imports import types

DEFAULTS = {
    # Port the desktop serves on; the Service forwards to it.
    "port": 8080,
    # uid (and gid) the desktop runs as; never 0.
    "runAsUser": 1000,
}


def parse_settings(text: str) -> dict:
    """Parses settings JSON (empty means defaults); raises Err(FieldError)."""
    try:
        raw = json.loads(text) if text.strip() else {}
    except ValueError as e:
        raise Err(types.FieldError("settings", str(e)))
    if not isinstance(raw, dict):
        raise Err(types.FieldError("settings", "must be a JSON object"))
    s = dict(DEFAULTS)
    for key, value in raw.items():
        if key not in s:
            raise Err(types.FieldError(key, f"unknown field `{key}`"))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise Err(types.FieldError(key, "must be a non-negative integer"))
        s[key] = value
    if s["runAsUser"] == 0:
        raise Err(types.FieldError("runAsUser", "sessions never run as root (uid 0)"))
    if not 0 < s["port"] <= 65535:
        raise Err(types.FieldError("port", "must be between 1 and 65535"))
    return s


def objects(s: dict, req: types.SessionRequest, template: types.TemplateInfo, placement: types.Placement) -> List[dict]:
    if not template.image:
        raise Err(types.PluginError_Invalid(types.FieldError("template.image", "must not be empty")))
    r = req.spec.resources
    # The Service selects the pod by the label the host puts on every session object.
    selector = {"vdi.dev/session": req.name}
    metadata = {"name": req.name, "namespace": req.namespace, "labels": selector}
    resources = {"cpu": f"{r.cpu_millis}m", "memory": f"{r.memory_mib}Mi"}
    if r.gpu_slices > 0:
        resources["nvidia.com/gpu"] = str(r.gpu_slices)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "nodeName": placement.node,
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": s["runAsUser"],
                "runAsGroup": s["runAsUser"],
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "desktop",
                    "image": template.image,
                    "ports": [{"name": "http", "containerPort": s["port"], "protocol": "TCP"}],
                    "resources": {"requests": resources, "limits": resources},
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": s["port"], "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [pod, service]


class WitWorld(wit_world.WitWorld):
    def configure(self, settings: str) -> str:
        return json.dumps(parse_settings(settings))

    def render(
        self,
        settings: str,
        request: types.SessionRequest,
        template: types.TemplateInfo,
        placement: types.Placement,
    ) -> List[str]:
        try:
            s = parse_settings(settings)
        except Err as e:
            raise Err(types.PluginError_Invalid(e.value))
        return [json.dumps(o) for o in objects(s, request, template, placement)]
