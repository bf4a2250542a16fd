"""The package's shape: functions short enough to read at a glance."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "memcurv"
MAX_FUNCTION_LINES = 60


def test_every_function_is_at_most_60_lines():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long



# The package's layers, lowest first: a module may import from its own layer and the layers below it, never from a
# layer above (a subpackage is a layer; so is each top-level module, at its place in the order).
LAYERS = (
    ("settings", "seeds"),  # typed settings, seeded random streams: the standard library only
    ("io", "tables"),  # atomic files and provenance; the catalogue of the tables a study writes
    ("data",),  # the dataset registry, the in-memory Dataset, label noise
    ("estimators",),  # curvature, memorization, privacy accounting, the audit's bound
    ("training",),  # models and how they are trained
    ("analysis",),  # reading a run's tables: theory, bootstrap, readings, claims
    ("config",),  # validation: reads the datasets' options and the defects' values
    ("figures",),  # one module per figure
    ("report",),  # the replication report, the summary of every report
    ("jobs",),  # the workflow's jobs, which call everything below
    ("cli", "__main__"),  # the command line, which dispatches to the jobs
)
LAYER_OF = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _unit(module: str) -> str:
    """The layer a dotted module name (memcurv.x.y) belongs to: its first component below memcurv."""
    return module.split(".")[1]


def _imports(path: Path) -> set[str]:
    """The memcurv modules a file imports, at any depth of its code (lazy imports inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("memcurv.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "memcurv":
            # from memcurv.x import y: the module x, or its submodule y
            found |= {f"{node.module}.{a.name}" for a in node.names} | ({node.module} - {"memcurv"})
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(SRC.rglob("*.py"))}


def test_every_module_and_subpackage_has_a_layer():
    units = {_unit(m) for m in _graph() if m != "memcurv"}
    assert units == set(LAYER_OF), units ^ set(LAYER_OF)


def test_imports_run_one_way_down_the_layers():
    upward = [f"{module} imports {target}" for module, targets in _graph().items() if module != "memcurv"
              for target in targets if LAYER_OF[_unit(target)] > LAYER_OF[_unit(module)]]
    assert not upward, upward


def test_no_module_imports_itself_back_through_others():
    graph = _graph()
    modules = set(graph)

    def resolve(target: str) -> str:  # `from memcurv.x import name`: the module x (a function's name is not one)
        return target if target in modules else target.rsplit(".", 1)[0]

    edges = {m: {resolve(t) for t in targets} & modules for m, targets in graph.items()}
    cycles, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(" -> ".join(path[path.index(module):] + [module]))
            return
        if module in done:
            return
        for target in sorted(edges[module]):
            visit(target, path + [module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    assert not cycles, cycles


def test_every_subpackage_says_what_it_is_for():
    for init in sorted(SRC.glob("*/__init__.py")):
        assert ast.get_docstring(ast.parse(init.read_text())), init.parent.name
