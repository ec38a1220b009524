"""The layers of the package (docs/architecture.md): every module imports only its own layer and the layers
below it, there is no import cycle, and the light paths (import omnigenome, folding, design, the CLI's help)
load neither Lightning nor Hydra."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "omnigenome"
# Lowest first; a module may import its own layer and the layers before it (docs/architecture.md).
LAYERS = [
    ("base", ["omnigenome", "omnigenome.utils", "omnigenome.constants", "omnigenome.extras", "omnigenome.settings",
              "omnigenome.structure", "omnigenome.tokenizer"]),
    ("science", ["omnigenome.folding", "omnigenome.metrics"]),
    ("model", ["omnigenome.model"]),
    ("data", ["omnigenome.data", "omnigenome.objectives"]),
    ("use", ["omnigenome.ssp", "omnigenome.design", "omnigenome.inference"]),
    ("training", ["omnigenome.training"]),
    ("finetune", ["omnigenome.finetune"]),
    ("entry", ["omnigenome.app", "omnigenome.cli"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best = None
    for k, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (k, len(prefix))
    assert best is not None, f"{module} is in no layer of docs/architecture.md"
    return best[0]


def imports_of(path: Path) -> set[str]:
    """Every omnigenome module a file imports, at the top or inside a function."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules}


GRAPH = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_imports_go_downward():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {i} ({LAYERS[layer_of(i)][0]})"
              for m, imported in GRAPH.items() for i in sorted(imported) if layer_of(i) > layer_of(m)]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycles():
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w == v:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_layer_test_sees_a_violation(tmp_path):
    """The checks above would fail on an upward import (the rule is not vacuous)."""
    assert layer_of("omnigenome.model.loading") < layer_of("omnigenome.training.module")
    assert "omnigenome.model.modeling" in GRAPH["omnigenome.model.loading"]


HEAVY = ("lightning", "pytorch_lightning", "hydra")

LIGHT_PATHS = {
    "import": "import omnigenome",
    "fold": "from omnigenome.folding import fold; fold('GGGGAAACCCC')",
    "design": "from omnigenome.design import design; design('((((....))))...((((....))))', budget_seconds=2)",
    "design cli": "from omnigenome.cli import main; main(['design', '--structure', '((((....))))', 'trajectories=1',"
                  " '--budget-seconds', '2'])",
    "fold cli": "from omnigenome.cli import main; main(['fold', 'GGGGAAACCCC', '--engine', 'vienna'])",
}


@pytest.mark.parametrize("path", sorted(LIGHT_PATHS))
def test_light_paths_load_neither_lightning_nor_hydra(path, tmp_path):
    code = LIGHT_PATHS[path] + "; import sys; print(sorted({m.split('.')[0] for m in sys.modules} & set(%r)))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_help_imports_nothing_heavy(tmp_path):
    code = ("import sys\nfrom omnigenome.cli import build_parser\nbuild_parser().format_help()\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'hydra', 'RNA', 'numpy'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_every_subpackage_goes_into_the_wheel():
    """pyproject.toml lists packages explicitly (conf/ is mapped into the package); a new folder must be listed."""
    import tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert folders - listed == set(), f"add to [tool.setuptools] packages: {sorted(folders - listed)}"
