"""The package's shape, checked: imports point one way, never in a cycle (function-local imports
counted), the library neither parses arguments nor prints, and `import stocksent` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "stocksent"
HEAVY = ("torch", "matplotlib", "sklearn", "tqdm", "pyarrow", "pandas", "scipy", "onnxruntime", "pyspark", "ray")

# A module may import modules of its own layer or a lower one (DESIGN.md: imports point down), type-only
# imports included. The core is layered too, so a message's path through any command goes down only:
# rules (text, labels, columns) < the things built on them (config, readers, writers, vocab) < what
# holds messages (corpus, model) < splits and the model directory < engines < evaluation < the model
# < training and the report < the adapters < the command line. A dotted entry puts one module apart.
LAYERS = [
    ("version", "lazy", "errors", "compiled"),
    ("atomic", "lifetime", "text", "labels", "columns"),
    ("config", "writers", "vocab", "dataset", "readers"),
    ("tokens", "encoding"),
    ("batching", "model", "corpus"),
    ("splits", "artifacts", "rates"),
    ("inference",),
    ("evaluation",),
    ("sentiment",),
    ("training", "evaluation.report"),
    ("batch", "signals", "serving", "tools", "spark"),
    ("cli", "__main__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    """The rank of `module`'s most specific entry in LAYERS (`evaluation.report`, else `evaluation`)."""
    parts = module.split(".")[1:]
    for length in range(len(parts), 0, -1):
        name = ".".join(parts[:length])
        for rank, names in enumerate(LAYERS):
            if name in names:
                return rank
    raise AssertionError(f"{module} is in no layer of tests/test_layout.py: add it to LAYERS")


def runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (never executed: annotations only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(module: str) -> set[str]:
    """Modules of the package this one imports anywhere: top level, inside functions, and the
    type-only imports under `if TYPE_CHECKING:` (a cycle of types is a cycle of ideas)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports are not used in this package; resolve them anyway
                base = module.rsplit(".", node.level - (MODULES[module].name == "__init__.py"))[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            names = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source for alias in node.names
            ]
        else:
            continue
        found.update(name for name in names if name == "stocksent" or name.startswith("stocksent."))
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_no_import_cycles_counting_function_local_imports() -> None:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(GRAPH[node]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if m != "stocksent"
        for t in targets
        if t != "stocksent" and layer_of(t) > layer_of(m)
    ]
    assert upward == [], "imports against the layering: " + ", ".join(sorted(upward))


def test_nothing_outside_the_cli_imports_it_and_the_library_parses_no_arguments() -> None:
    into_cli = [
        m
        for m, targets in GRAPH.items()
        if not m.startswith(("stocksent.cli", "stocksent.__main__"))
        and any(t.startswith("stocksent.cli") for t in targets)
    ]
    assert into_cli == []
    for module, path in MODULES.items():
        if module.startswith("stocksent.cli"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in runtime_nodes(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert "argparse" not in names, f"{module} imports argparse: parsing belongs in stocksent.cli"


def test_the_library_logs_instead_of_printing() -> None:
    printing = []
    for module, path in MODULES.items():
        if module.startswith("stocksent.cli") or module == "stocksent.__main__":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        main_blocks = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
        inside_main = {id(n) for block in main_blocks for n in ast.walk(block)}
        printing += [
            f"{module}:{n.lineno}"
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id == "print"
            and id(n) not in inside_main
        ]
    assert printing == [], "print() in library modules (use logging.getLogger('stocksent...')): " + ", ".join(printing)


@pytest.mark.parametrize(
    "code",
    [
        "import stocksent",
        "import stocksent; stocksent.TrainConfig; stocksent.StocksentError; stocksent.preset('default')",
        "from stocksent.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "from stocksent.cli import main\ntry:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass",
    ],
)
def test_import_and_help_load_no_heavy_library(code: str) -> None:
    probe = f"{code}\nimport sys\nprint('heavy:' + ','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "heavy:"


def test_import_stocksent_leaves_the_matplotlib_backend_alone() -> None:
    probe = (
        "import matplotlib; before = matplotlib.get_backend()\n"
        "import stocksent; from stocksent.evaluation.plots import learning_curve_png\n"
        "learning_curve_png([{'epoch': 1, 'train_loss': 1, 'val_loss': 1, 'train_accuracy': 0.5, "
        "'val_accuracy': 0.5}])\n"
        "import sys; print(before == matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={"MPLBACKEND": "svg", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def calls_of(module: str) -> list[str]:
    """The names called in `module`: `f(...)` as "f", `x.f(...)` as ".f"."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                names.append(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                names.append("." + node.func.attr)
    return names


def test_modules_stay_short() -> None:
    """One job per module: a module past 500 lines is doing several (readers.py was 697, data.py 525)."""
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert long == {}, f"modules over 500 lines: {long}"


def test_messages_are_read_only_by_the_readers() -> None:
    """One way in: only stocksent.readers parses message files (CSV, JSON, Parquet); the price file of
    the index's plot and the index table the lead-lag study reads back are not messages."""
    readers = {".open_csv", ".read_csv", ".ParquetFile", ".DictReader", ".reader", ".read_table", ".read_parquet"}
    found = [
        f"{m}: {name}"
        for m in MODULES
        if not m.startswith("stocksent.readers") and m not in ("stocksent.signals.plot", "stocksent.signals.study")
        for name in calls_of(m)
        if name in readers
    ]
    assert found == [], "message files parsed outside stocksent.readers: " + ", ".join(found)


def test_tables_are_written_only_by_the_writers() -> None:
    """One way out: every table a command writes goes through stocksent.writers (format, atomic, formulas)."""
    writers = {".to_csv", ".to_parquet", ".ParquetWriter", ".CSVWriter", ".write_csv", ".write_table", ".DictWriter"}
    found = [f"{m}: {name}" for m in MODULES if m != "stocksent.writers" for name in calls_of(m) if name in writers]
    assert found == [], "tables written outside stocksent.writers: " + ", ".join(found)


def test_one_threshold_step() -> None:
    """P(bullish) to a label in one place (stocksent.labels): no other module compares with a threshold."""
    found = []
    for module, path in MODULES.items():
        if module == "stocksent.labels":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.GtE, ast.Lt)) for op in node.ops):
                if any("threshold" in ast.unparse(side) for side in node.comparators):
                    found.append(f"{module}:{node.lineno}")
    assert found == [], "threshold comparisons outside stocksent.labels: " + ", ".join(found)
