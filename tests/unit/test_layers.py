"""The import graph runs one way: every module imports only its own layer or the layers below.

    5  worker.cli
    4  worker.app
    3  worker.delivery  worker.kafka  worker.io  worker.quality
    2  worker.pipeline  worker.health  worker.status  worker.snapshot
    1  worker.records  worker.config  worker.deadletter  worker.logs
    0  worker.stages  worker.metrics  topics

The stages import nothing of the worker but each other; nothing in worker/ or topics/ imports
bench/ or tests/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {
    "topics": 0, "worker.stages": 0, "worker.metrics": 0,
    "worker.records": 1, "worker.config": 1, "worker.deadletter": 1, "worker.logs": 1,
    "worker.pipeline": 2, "worker.health": 2, "worker.status": 2, "worker.snapshot": 2,
    "worker.delivery": 3, "worker.kafka": 3, "worker.io": 3, "worker.quality": 3,
    "worker.app": 4,
    "worker.cli": 5,
}


def layer_of(module: str) -> str | None:
    matches = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return max(matches, key=len) if matches else None


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted([*ROOT.joinpath("worker").rglob("*.py"), *ROOT.joinpath("topics").rglob("*.py")]):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def imports_of(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("module,path", modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_only_its_own_layer_or_below(module, path):
    if module == "worker":  # the package itself: imports nothing
        assert not imports_of(module, path)
        return
    own = layer_of(module)
    assert own is not None, f"{module} is in no layer: add it to LAYERS"
    wrong = []
    for name in imports_of(module, path):
        if name.split(".")[0] in {"bench", "tests"}:
            wrong.append(name)
            continue
        target = layer_of(name)
        if target is None or target == own:
            continue
        if LAYERS[target] > LAYERS[own] or (own == "worker.stages" and not target.startswith("worker.stages")):
            wrong.append(f"{name} (layer {LAYERS[target]})")
    assert not wrong, f"{module} (layer {LAYERS[own]}) imports upwards: {sorted(set(wrong))}"
