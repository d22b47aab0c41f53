#!/usr/bin/env python3
"""Validates Kubernetes manifests strictly (unknown fields fail).

usage: validate-manifests.py --kubernetes-version 1.37 [--crds FILE]... MANIFEST...

Built-in kinds are checked by kubernetes-validate against its Kubernetes JSON schemas (strict);
custom resources against the openAPIV3Schema of their CustomResourceDefinition, found in the
--crds files or among the manifests themselves, with every object schema closed
(additionalProperties: false) unless it says x-kubernetes-preserve-unknown-fields. A kind with
no schema at all is an error. Every failure line names the document and the field. Runs with the
Python of the tools venv (scripts/setup.sh), which has kubernetes-validate and jsonschema.
"""

import argparse
import sys

import jsonschema
import yaml
from kubernetes_validate import utils as kv

# What the API server itself validates on every custom resource, outside the CRD's schema.
META = {"apiVersion", "kind", "metadata"}


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def closed(schema):
    """The CRD schema with every object closed to fields it does not name (structural strictness)."""
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) if k in ("items", "additionalProperties") else v for k, v in schema.items()}
    if "properties" in schema:
        out["properties"] = {k: closed(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
            out["additionalProperties"] = False
    for key in ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
                "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
                "x-kubernetes-embedded-resource", "x-kubernetes-validations", "nullable"):
        out.pop(key, None)
    if schema.get("nullable"):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def crd_schemas(docs):
    schemas = {}
    for d in docs:
        if d.get("kind") != "CustomResourceDefinition":
            continue
        spec = d["spec"]
        for v in spec["versions"]:
            schema = closed(v.get("schema", {}).get("openAPIV3Schema", {"type": "object"}))
            props = schema.setdefault("properties", {})
            for field in META:
                props.setdefault(field, {"type": ["object"] if field == "metadata" else "string"})
            schema["additionalProperties"] = schema.get("additionalProperties", False)
            schemas[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = schema
    return schemas


def name(doc):
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{doc.get('kind')} {doc.get('apiVersion')} {ns + '/' if ns else ''}{meta.get('name')}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kubernetes-version", required=True)
    p.add_argument("--crds", action="append", default=[])
    p.add_argument("manifests", nargs="+")
    args = p.parse_args()

    docs = [(path, d) for path in args.manifests for d in load(path)]
    schemas = crd_schemas([d for path in args.crds for d in load(path)] + [d for _, d in docs])
    errors = 0
    for path, doc in docs:
        where = f"{path}: {name(doc)}"
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in schemas:
            validator = jsonschema.Draft202012Validator(schemas[key])
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
                field = ".".join(str(x) for x in e.path) or "(document)"
                print(f"ERROR {where}: {field}: {e.message} (CRD schema)")
                errors += 1
            continue
        try:
            kv.validate(doc, args.kubernetes_version, strict=True)
        except kv.ValidationError as e:
            field = ".".join(str(x) for x in e.path) or "(document)"
            print(f"ERROR {where}: {field}: {e.message} (Kubernetes {e.version} schema, strict)")
            errors += 1
        except kv.SchemaNotFoundError:
            print(f"ERROR {where}: no schema: neither Kubernetes {args.kubernetes_version} nor a given CRD defines {key[1]} {key[0]}")
            errors += 1
    print(f"{len(docs)} documents, {errors} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
