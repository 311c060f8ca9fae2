"""The house by role (STYLE.md): no import cycles, arrows one way between the packages, small files with
distinct names, and every `--help` works."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from regaze.cli import COMMANDS, build_parser

PACKAGE = Path(__file__).resolve().parents[1] / "regaze"
LEAVES = {"regaze", "regaze.geometry", "regaze.config", "regaze.errors", "regaze.checkpoint", "regaze.dist",
          "regaze.image_metrics", "regaze.image_io", "regaze.image_plot"}
# role -> roles it may import (besides itself)
MAY_IMPORT = {
    "leaves": set(),
    "model": {"leaves"},
    "data": {"leaves"},
    "training": {"leaves", "model", "data"},
    "evaluation": {"leaves", "model", "data"},
    "augment": {"leaves", "model", "data"},
    "demo": {"leaves", "model", "data", "training", "evaluation", "augment"},
    "export": {"leaves", "model"},
    "app": {"leaves", "model", "data"},
    "commands": {"leaves", "model", "data", "training", "evaluation", "augment", "demo", "export", "app"},
}
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = ["regaze", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _role(module: str) -> str:
    if module in LEAVES:
        return "leaves"
    if module == "regaze.cli":
        return "commands"
    role = module.split(".")[1]
    assert role in MAY_IMPORT, f"{module}: not in a known package; add its role to tests/test_layout.py"
    return role


def _imports(module: str) -> set[str]:
    """regaze modules that `module` imports anywhere in its file (lazy imports inside functions too)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: _imports(m) for m in MODULES}


def _find_cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(m: str):
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                cycle = visit(n)
                if cycle:
                    return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(GRAPH):
        if m not in state:
            cycle = visit(m)
            if cycle:
                return cycle
    return None


def test_no_import_cycle():
    cycle = _find_cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle(monkeypatch):
    monkeypatch.setitem(GRAPH, "regaze.errors", GRAPH["regaze.errors"] | {"regaze.config"})  # config imports errors
    assert _find_cycle() is not None


def test_arrows_go_one_way_between_roles():
    wrong = sorted(f"{m} ({_role(m)}) imports {n} ({_role(n)})" for m, deps in GRAPH.items() for n in deps
                   if _role(n) != _role(m) and _role(n) not in MAY_IMPORT[_role(m)])
    assert not wrong, "\n".join(wrong)


def test_model_knows_nothing_of_data_training_or_the_cli():
    for m, deps in GRAPH.items():
        if m.startswith("regaze.model"):
            assert not {n for n in deps if n.split(".")[1:2] and n.split(".")[1] in ("data", "training", "commands", "cli")}, m


def test_files_are_small_and_distinctly_named():
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"
    names: dict[str, list[str]] = {}
    for p in MODULES.values():
        if p.name != "__init__.py" and "commands" not in p.relative_to(PACKAGE).parts:
            names.setdefault(p.name, []).append(str(p.relative_to(PACKAGE)))
    assert not {k: v for k, v in names.items() if len(v) > 1}, "two modules share a file name"
    assert "utils.py" not in names


def test_every_package_says_what_it_holds_and_may_import():
    for m, p in MODULES.items():
        if p.name == "__init__.py" and m != "regaze":
            doc = ast.get_docstring(ast.parse(p.read_text())) or ""
            assert "import" in doc.lower(), f"{p}: the docstring should say what the package holds and what it may import"


def _subcommand_paths() -> list[list[str]]:
    import argparse

    paths = [[]]

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    paths.append(prefix + [name])
                    walk(sub, prefix + [name])

    walk(build_parser(), [])
    return paths


@pytest.mark.parametrize("command", _subcommand_paths(), ids=lambda c: " ".join(c) or "regaze")
def test_every_help_runs(command, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*command, "--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_every_registered_command_is_reachable():
    assert {c[0] for c in _subcommand_paths() if c} == set(COMMANDS)
