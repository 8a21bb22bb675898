"""The layers of docs/architecture.md hold: every import of Bosun's server code goes down (or stays within its
layer), and no module name repeats across layers."""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lowest first; a module may import its own layer and the ones before it.
LAYERS = [
    ("rules", ["sequences.rules"]),
    ("models", ["sequences.models"]),
    ("store", ["sequences.store"]),
    ("notices", ["sequences.notices"]),
    ("transitions", ["sequences.transitions"]),
    ("services", ["sequences.configuration", "sequences.freeze_config", "sequences.registrations",
                  "sequences.integration_logs", "sequences.engine", "sequences.demo"]),
    ("interfaces", ["sequences.api", "sequences.admin", "sequences.apps", "sequences.management", "bridge"]),
]
PACKAGES = {"sequences"}  # only a docstring: it belongs to no layer


def layer_of(module: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def modules():
    for package in ("sequences", "bridge"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            yield name, path


def imports(name: str, path: Path):
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def test_every_import_goes_down_or_stays_in_its_layer():
    upward = []
    for name, path in modules():
        if name in PACKAGES:
            continue
        own = layer_of(name)
        assert own is not None, f"{name} belongs to no layer: add it to LAYERS and docs/architecture.md"
        for target in imports(name, path):
            rank = layer_of(target)
            if rank is not None and rank > own:
                upward.append(f"{name} ({LAYERS[own][0]}) imports {target} ({LAYERS[rank][0]})")
    assert upward == []


def test_no_module_name_repeats_across_layers():
    seen = defaultdict(set)
    for name, path in modules():
        if path.name != "__init__.py" and name.startswith("sequences.") and name not in PACKAGES:
            seen[path.stem].add(LAYERS[layer_of(name)][0] + ":" + name)
    repeated = {stem: sorted(where) for stem, where in seen.items() if len(where) > 1}
    assert repeated == {}
