"""The committed CRDs are exactly what the models render, and are structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook_operator.crdgen import crd, render_all, structural
from runbook_operator.kinds import RESOURCES

CRDS = Path(__file__).resolve().parents[2] / "crds"
FORBIDDEN = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const", "definitions"}


def test_committed_crds_are_up_to_date() -> None:
    rendered = render_all()
    on_disk = {p.name: p.read_text() for p in CRDS.glob("*.yaml")}
    assert set(on_disk) == set(rendered), (
        "crds/ has missing or extra files: run `runbook-operator crds`"
    )
    stale = [name for name, text in rendered.items() if on_disk[name] != text]
    assert not stale, f"stale CRDs {stale}: run `runbook-operator crds`"


def _walk(node: Any, path: str = "") -> list[str]:
    """Paths of every keyword the API server's structural schema rejects."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in FORBIDDEN:
                found.append(f"{path}/{key}")
            if key == "additionalProperties" and isinstance(value, bool):
                found.append(f"{path}/{key}")
            found += _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _walk(value, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_schema_is_structural(resource: Any) -> None:
    schema = crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []


def _typed(node: dict[str, Any], path: str) -> list[str]:
    """Structural schemas need a type on every node (or preserve-unknown-fields)."""
    missing = []
    if "type" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        missing.append(path)
    for name, sub in node.get("properties", {}).items():
        missing += _typed(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        missing += _typed(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        missing += _typed(node["additionalProperties"], f"{path}{{}}")
    return missing


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_every_node_has_a_type(resource: Any) -> None:
    schema = crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _typed(schema, "") == []


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_every_spec_field_is_documented(resource: Any) -> None:
    spec = crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]

    def undocumented(node: dict[str, Any], path: str) -> list[str]:
        out = []
        for name, sub in node.get("properties", {}).items():
            if not sub.get("description"):
                out.append(f"{path}.{name}")
            out += undocumented(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            out += undocumented(node["items"], f"{path}[]")
        return out

    assert undocumented(spec, "spec") == []


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_names_columns_and_category(resource: Any) -> None:
    doc = crd(resource)
    names = doc["spec"]["names"]
    # `kubectl get runbook` lists the operations, not their configuration (Notifier).
    assert names["categories"] == (["runbook"] if resource.operation else [])
    assert names["shortNames"]
    version = doc["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[-1] == "Age"
    if resource.cluster_scoped:  # configuration no controller reports on (MaintenancePolicy)
        assert doc["spec"]["scope"] == "Cluster" and "subresources" not in version
        assert "status" not in version["schema"]["openAPIV3Schema"]["properties"]
        return
    assert doc["spec"]["scope"] == "Namespaced"
    assert version["subresources"] == {"status": {}}
    assert "Phase" in columns or "Ready" in columns


def test_optional_becomes_nullable_without_null_default() -> None:
    schema = {
        "type": "object",
        "properties": {
            "x": {
                "anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}],
                "default": None,
                "description": "an x",
            },
        },
        "$defs": {"X": {"type": "object", "title": "X", "properties": {"a": {"type": "integer"}}}},
    }
    out = structural(schema)
    assert out["properties"]["x"] == {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "description": "an x",
        "nullable": True,
    }


def test_free_form_maps_preserve_unknown_fields() -> None:
    out = structural({"type": "object", "additionalProperties": True})
    assert out == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    out = structural({"type": "object", "additionalProperties": {"type": "string"}})
    assert out == {"type": "object", "additionalProperties": {"type": "string"}}


def test_const_becomes_single_enum() -> None:
    assert structural({"const": "a"}) == {"enum": ["a"], "type": "string"}


def test_unions_are_refused() -> None:
    with pytest.raises(ValueError, match="Optional"):
        structural({"anyOf": [{"type": "string"}, {"type": "integer"}]})


def test_rendering_is_deterministic_yaml() -> None:
    first, second = render_all(), render_all()
    assert first == second
    for text in first.values():
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"
