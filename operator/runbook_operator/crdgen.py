"""Render the CustomResourceDefinitions from the pydantic models.

pydantic's JSON Schema is not a structural CRD schema: it uses `$ref`/`$defs`,
`anyOf: [X, {type: null}]` for optionals, `title` everywhere, `const`, and
`additionalProperties: true` for free-form maps; the API server rejects or
prunes all of these. `structural()` translates one into the other, and the
e2e suite proves the result by loading it into a real API server.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .core.gitops import GitOpsRecord, GitOpsSpec
from .core.identity import RequestedBy
from .core.notify import Notifications, NotifyRef
from .core.resource import CATEGORY, Resource
from .kinds import RESOURCES

__all__ = ["crd", "render_all", "structural", "write_all"]

_DROP = {"title", "examples", "discriminator", "$schema", "$id"}
Schema = dict[str, Any]


def structural(schema: Schema, *, keep_defaults: bool = True) -> Schema:
    """Translate a pydantic JSON Schema into a structural OpenAPI v3 schema."""
    defs: dict[str, Schema] = schema.get("$defs", {})
    return _convert(schema, defs, keep_defaults)


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    ref = node.get("$ref")
    if ref is None:
        return node
    target = copy.deepcopy(defs[ref.rsplit("/", 1)[-1]])
    siblings = {k: v for k, v in node.items() if k != "$ref"}
    return {**target, **siblings}


def _convert(node: Schema, defs: dict[str, Schema], keep_defaults: bool) -> Schema:
    node = _resolve(node, defs)
    if "anyOf" in node:
        return _optional(node, defs, keep_defaults)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "default" and (not keep_defaults or value is None):
            continue
        out.update(_keyword(key, value, defs, keep_defaults))
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    return out


def _optional(node: Schema, defs: dict[str, Schema], keep_defaults: bool) -> Schema:
    """`anyOf: [X, {type: null}]` -> X with `nullable: true`."""
    branches = [b for b in node["anyOf"] if b.get("type") != "null"]
    if len(branches) != 1:
        raise ValueError(f"unions other than Optional[X] have no structural form: {node}")
    siblings = {k: v for k, v in node.items() if k != "anyOf"}
    out = _convert({**_resolve(branches[0], defs), **siblings}, defs, keep_defaults)
    if len(branches) < len(node["anyOf"]):
        out["nullable"] = True
    return out


def _keyword(key: str, value: Any, defs: dict[str, Schema], keep_defaults: bool) -> Schema:
    """One keyword of a schema node, translated (possibly into another keyword)."""
    if key == "const":
        return {"enum": [value]}
    if key == "properties":
        return {"properties": {n: _convert(s, defs, keep_defaults) for n, s in value.items()}}
    if key == "items":
        return {"items": _convert(value, defs, keep_defaults)}
    if key == "additionalProperties":
        if value is True or value == {}:
            return {"x-kubernetes-preserve-unknown-fields": True}
        if value is False:
            return {}
        return {"additionalProperties": _convert(value, defs, keep_defaults)}
    if key == "allOf" and len(value) == 1:
        return _convert(value[0], defs, keep_defaults)
    return {key: copy.deepcopy(value)}


def _schema(resource: Resource) -> Schema:
    spec = structural(resource.spec.model_json_schema(by_alias=True))
    if resource.spec_rules:
        spec.setdefault("x-kubernetes-validations", []).extend(resource.spec_rules)
    if resource.cluster_scoped:  # configuration nobody reports on: no status
        return _document(resource, spec, None)
    status = structural(resource.status.model_json_schema(by_alias=True), keep_defaults=False)
    if resource.operation:
        notify = structural(NotifyRef.model_json_schema(by_alias=True))
        notify["description"] = "Who to tell of this operation (default: the namespace's "
        notify["description"] += "default Notifiers), and of which moments."
        spec.setdefault("properties", {})["notify"] = notify
        record = structural(Notifications.model_json_schema(by_alias=True), keep_defaults=False)
        record["description"] = "What was sent to Notifiers, and whether it was delivered."
        status.setdefault("properties", {})["notifications"] = record
        who = structural(RequestedBy.model_json_schema(by_alias=True), keep_defaults=False)
        who["description"] = "Who created this operation, as the API server authenticated "
        who["description"] += "them (stamped by admission, copied before anything changed)."
        status["properties"]["requestedBy"] = who
    if resource.targets is not None:
        pause = structural(GitOpsSpec.model_json_schema(by_alias=True))
        pause["description"] = "What to do about targets that Argo CD or Flux also manage."
        spec.setdefault("properties", {})["gitops"] = pause
        record = structural(GitOpsRecord.model_json_schema(by_alias=True), keep_defaults=False)
        record["description"] = GitOpsRecord.__doc__ or ""
        status.setdefault("properties", {})["gitops"] = record
    if resource.one_shot:
        spec.setdefault("properties", {})["runId"] = {
            "type": "string",
            "maxLength": 128,
            "description": (
                "Names this run. An object of the same kind and name created again (by Argo "
                "CD or Flux, after it was deleted) with the same runId is not run again; "
                "give a new value to run it again on purpose. Without it, objects that Git "
                "manages are keyed by a hash of their spec."
            ),
        }
    return _document(resource, spec, status)


def _document(resource: Resource, spec: Schema, status: Schema | None) -> Schema:
    properties: Schema = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec,
    }
    if status is not None:
        properties["status"] = status
    return {
        "type": "object",
        "description": resource.description,
        "required": ["spec"],
        "properties": properties,
    }


def crd(resource: Resource) -> Schema:
    """The CustomResourceDefinition of one kind, as a plain dict."""
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "jsonPath": c.json_path,
            **({"description": c.description} if c.description else {}),
            **({"priority": c.priority} if c.priority else {}),
        }
        for c in resource.columns
    ]
    columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": resource.crd_name},
        "spec": {
            "group": resource.group,
            "scope": "Cluster" if resource.cluster_scoped else "Namespaced",
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.singular,
                "shortNames": list(resource.short_names),
                "categories": [CATEGORY] if resource.operation else [],
            },
            "versions": [
                {
                    "name": resource.version,
                    "served": True,
                    "storage": True,
                    **({} if resource.cluster_scoped else {"subresources": {"status": {}}}),
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": _schema(resource)},
                }
            ],
        },
    }


def render_all() -> dict[str, str]:
    """File name -> YAML text for every kind, deterministic."""
    header = (
        "# Generated by `runbook-operator crds` from operator/runbook_operator/api. Do not edit.\n"
    )
    return {
        f"{r.group}_{r.plural}.yaml": header + yaml.safe_dump(crd(r), sort_keys=False, width=100)
        for r in RESOURCES
    }


def write_all(out: Path) -> list[Path]:
    """Write every CRD into `out`, removing CRD files of kinds that no longer exist."""
    out.mkdir(parents=True, exist_ok=True)
    rendered = render_all()
    for stale in out.glob("*.yaml"):
        if stale.name not in rendered:
            stale.unlink()
    written = []
    for name, text in rendered.items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written
