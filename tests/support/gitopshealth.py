"""How Argo CD, Flux and kstatus judge our objects, asked of their real engines.

`tests/testbed/build.sh gitopshealth` builds (once, cached like the test bed) a small Go
program that runs the shipped `deploy/argocd` Lua health checks in gopher-lua (Argo CD's
Lua 5.1 engine), the shipped `deploy/flux` healthCheckExprs in cel-go with Flux's order
(generation, inProgress, failed, current), and sigs.k8s.io/cli-utils' kstatus. Nothing
here re-implements a rule: the verdicts are the engines'.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["Verdict", "binary", "judge", "table"]

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tests" / "testbed" / "build.sh"
Obj = dict[str, Any]


@cache
def binary() -> Path:
    """The checker, built from the Go module proxy the first time (about a minute)."""
    done = subprocess.run(
        ["bash", str(BUILD), "gitopshealth"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        raise AssertionError(f"building gitopshealth failed:\n{done.stderr}")
    return Path(lines[-1])


@dataclass(frozen=True)
class Verdict:
    """One object as the three engines see it, with the conditions they saw."""

    kind: str
    name: str
    phase: str
    conditions: dict[str, tuple[str, str]]
    """type -> (status, reason)"""
    argocd: str
    argocd_message: str
    flux: str
    kstatus: str
    errors: tuple[str, ...]

    @property
    def triple(self) -> tuple[str, str, str]:
        """(kstatus, Argo CD, Flux)"""
        return self.kstatus, self.argocd, self.flux


def judge(objects: list[Obj]) -> list[Verdict]:
    done = subprocess.run(
        [
            str(binary()),
            "-argocd",
            str(ROOT / "deploy" / "argocd"),
            "-flux",
            str(ROOT / "deploy" / "flux"),
        ],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise AssertionError(f"gitopshealth failed: {done.stderr}")
    out = []
    for obj, r in zip(objects, json.loads(done.stdout), strict=True):
        conds = (obj.get("status") or {}).get("conditions") or []
        errors = tuple(r[e]["error"] for e in ("argocd", "flux", "kstatus") if r[e].get("error"))
        out.append(
            Verdict(
                kind=r["kind"],
                name=r["name"],
                phase=r.get("phase", ""),
                conditions={c["type"]: (c["status"], c.get("reason", "")) for c in conds},
                argocd=r["argocd"]["status"],
                argocd_message=r["argocd"].get("message", ""),
                flux=r["flux"]["status"],
                kstatus=r["kstatus"]["status"],
                errors=errors,
            )
        )
    return out


def _cond(v: Verdict, type_: str) -> str:
    found = v.conditions.get(type_)
    return "-" if found is None else f"{found[0]} ({found[1]})"


def table(verdicts: list[Verdict]) -> str:
    """A Markdown table: kind, phase, the conditions, and the three engines' verdicts."""
    columns: tuple[str, ...] = ("kind", "object", "phase", "Ready", "Reconciling", "Stalled")
    columns += ("Degraded",)
    columns += ("kstatus", "Argo CD", "Flux")
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for v in verdicts:
        cells = [v.kind, v.name, v.phase or "-"]
        cells += [_cond(v, t) for t in ("Ready", "Reconciling", "Stalled", "Degraded")]
        cells += [v.kstatus, v.argocd, v.flux]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
