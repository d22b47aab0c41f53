"""The quota admission policy (plugins/quota) written again in Python, to show that a
vdi:plugin component can come from any language. It must pass the same vectors
(plugins/testdata/quota) as the Rust original, word for word.

Built with componentize-py; `wit_world` is generated from wit/ at build time. Errors are
returned by raising componentize_py_types.Err; any other exception traps.
"""

import dataclasses
import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import types

DEFAULTS = {
    "maxSessionsPerUser": 3,
    "maxGpuSlicesPerUser": 4,
    "maxTimeoutSeconds": 8 * 3600,
    "defaultTimeoutSeconds": 3600,
    "templatesByGroup": None,
}


def parse_settings(text: str) -> dict:
    """Parses and validates settings JSON (empty means defaults); raises Err(FieldError)."""
    raw = {}
    if text.strip():
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise Err(types.FieldError("settings", str(e)))
    if not isinstance(raw, dict):
        raise Err(types.FieldError("settings", "must be a JSON object"))
    s = dict(DEFAULTS)
    for key, value in raw.items():
        if key not in DEFAULTS:
            raise Err(types.FieldError(key, f"unknown field `{key}`"))
        if key == "templatesByGroup":
            if value is not None and not isinstance(value, dict):
                raise Err(types.FieldError(key, "must be an object of group -> list of templates"))
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise Err(types.FieldError(key, "must be a non-negative integer"))
        s[key] = value
    if s["maxTimeoutSeconds"] == 0:
        raise Err(types.FieldError("maxTimeoutSeconds", "must be greater than 0"))
    if s["defaultTimeoutSeconds"] == 0:
        raise Err(types.FieldError("defaultTimeoutSeconds", "must be greater than 0"))
    if s["defaultTimeoutSeconds"] > s["maxTimeoutSeconds"]:
        raise Err(types.FieldError(
            "defaultTimeoutSeconds",
            f"{s['defaultTimeoutSeconds']} exceeds maxTimeoutSeconds {s['maxTimeoutSeconds']}",
        ))
    return s


class WitWorld(wit_world.WitWorld):
    def configure(self, settings: str) -> str:
        return json.dumps(parse_settings(settings))

    def review(self, settings: str, request: types.SessionRequest,
               context: types.AdmissionContext) -> types.Verdict:
        try:
            s = parse_settings(settings)
        except Err as e:
            raise Err(types.PluginError_Invalid(e.value))
        spec = request.spec
        user = spec.user
        by_group = s["templatesByGroup"]
        if by_group:
            def allowed(group: str) -> bool:
                return any(t in ("*", spec.template) for t in by_group.get(group, []))
            if not allowed("*") and not any(allowed(g) for g in user.groups):
                groups = ", ".join(user.groups) if user.groups else "none"
                return types.Verdict_Deny(
                    f'template "{spec.template}" is not allowed for user "{user.name}" (groups: {groups})')
        # On update the session is already among the active ones: count the others.
        others = [a for a in context.active_sessions if a.name != request.name]
        count = len(others)
        slices = sum(a.resources.gpu_slices for a in others)
        if context.operation == types.Operation.CREATE and count >= s["maxSessionsPerUser"]:
            return types.Verdict_Deny(
                f'user "{user.name}" already has {count} active sessions (limit {s["maxSessionsPerUser"]})')
        asks = spec.resources.gpu_slices
        wanted = slices + asks
        if asks > 0 and wanted > s["maxGpuSlicesPerUser"]:
            return types.Verdict_Deny(
                f'user "{user.name}" would hold {wanted} GPU slices '
                f'(holds {slices}, asks {asks}; limit {s["maxGpuSlicesPerUser"]})')
        if spec.timeout_seconds == 0:
            timeout = s["defaultTimeoutSeconds"]
        else:
            timeout = min(spec.timeout_seconds, s["maxTimeoutSeconds"])
        if timeout == spec.timeout_seconds:
            return types.Verdict_Allow()
        return types.Verdict_Mutate(dataclasses.replace(spec, timeout_seconds=timeout))
