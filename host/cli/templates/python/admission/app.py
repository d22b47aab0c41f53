"""Admission policy `{{name}}`: refuses sessions that ask for more GPU slices than allowed.

componentize-py generates `wit_world` from wit/ at build time. Errors are returned by raising
componentize_py_types.Err; any other exception traps.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import types

# Most GPU slices one session may ask for when the settings say nothing.
DEFAULT_MAX_GPU_SLICES = 2


def parse_settings(text: str) -> dict:
    """Parses settings JSON (empty means defaults); raises Err(FieldError)."""
    raw = json.loads(text) if text.strip() else {}
    s = {"maxGpuSlices": DEFAULT_MAX_GPU_SLICES}
    for key, value in raw.items():
        if key not in s:
            raise Err(types.FieldError(key, f"unknown field `{key}`"))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise Err(types.FieldError(key, "must be a non-negative integer"))
        s[key] = value
    return s


class WitWorld(wit_world.WitWorld):
    def configure(self, settings: str) -> str:
        return json.dumps(parse_settings(settings))

    def review(self, settings: str, request: types.SessionRequest, context: types.AdmissionContext) -> types.Verdict:
        try:
            s = parse_settings(settings)
        except Err as e:
            raise Err(types.PluginError_Invalid(e.value))
        asks = request.spec.resources.gpu_slices
        if asks > s["maxGpuSlices"]:
            return types.Verdict_Deny(
                f'session "{request.name}" asks for {asks} GPU slices (limit {s["maxGpuSlices"]})'
            )
        return types.Verdict_Allow()
