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

