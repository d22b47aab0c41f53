"""Scheduler `{{name}}`: places each session on the first node (in the given order) with enough
free CPU and memory and, when it asks for GPU slices, the first GPU with enough free slices and
memory, counting the placements made earlier in the same batch.

componentize-py generates `wit_world` from wit/ at build time. Errors are returned by raising
componentize_py_types.Err; any other exception traps.
"""

import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import wit_world
from componentize_py_types import Err
from wit_world.imports import types


def parse_settings(text: str) -> dict:
    """Parses settings JSON (empty means defaults; there are no settings yet); raises Err(FieldError)."""
    try:
        raw = json.loads(text) if text.strip() else {}
    except ValueError as e:
        raise Err(types.FieldError("settings", str(e)))
    if not isinstance(raw, dict):
        raise Err(types.FieldError("settings", "must be a JSON object"))
    unknown = next(iter(raw), None)
    if unknown is not None:
        raise Err(types.FieldError(unknown, f"unknown field `{unknown}`"))
    return {}


@dataclass
class Taken:
    """What the batch's earlier placements took from one node."""

    cpu_millis: int = 0
    memory_mib: int = 0
    # Per GPU index: (slices, memory).
    gpus: Dict[int, Tuple[int, int]] = field(default_factory=dict)


def place_one(
    request: types.SessionRequest, nodes: List[types.Node], taken: Dict[str, Taken]
) -> types.PlacementDecision:
    r = request.spec.resources
    reasons = []
    for node in nodes:
        t = taken.setdefault(node.name, Taken())
        if node.cpu_millis_free - t.cpu_millis < r.cpu_millis or node.memory_mib_free - t.memory_mib < r.memory_mib:
            reasons.append(f"{node.name}: not enough CPU or memory")
            continue
        gpu: Optional[int] = None
        if r.gpu_slices > 0:
            for g in node.gpus:
                slices, memory = t.gpus.get(g.index, (0, 0))
                if (
                    g.slices_total - g.slices_used - slices >= r.gpu_slices
                    and g.memory_mib - g.memory_used_mib - memory >= r.gpu_memory_mib
                ):
                    gpu = g.index
                    break
            if gpu is None:
                reasons.append(f"{node.name}: no GPU with enough free slices")
                continue
        t.cpu_millis += r.cpu_millis
        t.memory_mib += r.memory_mib
        if gpu is not None:
            slices, memory = t.gpus.get(gpu, (0, 0))
            t.gpus[gpu] = (slices + r.gpu_slices, memory + r.gpu_memory_mib)
        return types.PlacementDecision_Placed(types.Placement(node.name, gpu, "first fit"))
    return types.PlacementDecision_Unschedulable(reasons)


class WitWorld(wit_world.WitWorld):
    def configure(self, settings: str) -> str:
        return json.dumps(parse_settings(settings))

    def place(
        self, settings: str, requests: List[types.SessionRequest], nodes: List[types.Node]
    ) -> List[types.PlacementDecision]:
        try:
            parse_settings(settings)
        except Err as e:
            raise Err(types.PluginError_Invalid(e.value))
        taken: Dict[str, Taken] = {}
        return [place_one(r, nodes, taken) for r in requests]
