"""The package's shape: stage subpackages in pipeline order, each used by the others only through its face."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "m365audit"

# Lower stages first. A module may import from its own package, from the root modules (errors, models) and from
# the face of a package on a lower level; never from a higher one, and never from inside another package.
LAYERS: list[tuple[str, ...]] = [
    ("evidence",),
    ("graph",),
    ("collect",),
    ("policy",),
    ("evaluate",),
    ("report",),
    ("drift",),
    ("audit",),
    ("operations", "simulator"),
    ("cli",),
]
LEVEL = {pkg: i for i, names in enumerate(LAYERS) for pkg in names}
ROOT_MODULES = {"m365audit", "m365audit.errors", "m365audit.models"}
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "policies" not in p.parts)


def _package_of(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else None


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every m365audit import, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "m365audit":
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "m365audit"]
    return found


def test_every_subpackage_has_a_level() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LEVEL), "a new subpackage needs its place in LAYERS and a paragraph in docs/architecture.md"
    described = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert [p for p in sorted(packages) if f"**`{p}/`**" not in described] == []


def _problems(path: Path) -> list[str]:
    me = _package_of(path)
    out = []
    for line, module, names in _imports(path):
        parts = module.split(".")
        if module in ROOT_MODULES and not (module == "m365audit" and set(names) - {"__version__"}):
            continue
        target = parts[1] if len(parts) > 1 and parts[1] in LEVEL else None
        if module == "m365audit":  # `from m365audit import graph` would bypass the rules below
            target = None
        where = f"{path.relative_to(ROOT)}:{line}: {module}"
        if target is None:
            out.append(f"{where}: import a stage's face or a root module (errors, models)")
        elif target == me:
            continue
        elif len(parts) > 2:
            out.append(f"{where}: reaches inside {target}/; import from m365audit.{target} (its face)")
        elif me is not None and LEVEL[target] >= LEVEL[me]:
            out.append(f"{where}: {me} (level {LEVEL[me]}) imports {target} (level {LEVEL[target]}): not below")
        elif me is None and path.name not in ("__main__.py",):
            out.append(f"{where}: a root module imports a stage; root modules are the vocabulary below every stage")
    return out


def test_imports_go_down_the_pipeline_and_through_faces() -> None:
    problems = [p for path in _modules() for p in _problems(path)]
    assert problems == []


def test_the_boundary_test_sees_a_violation() -> None:
    """The checker itself: an upward import and a reach inside another package are reported."""
    probe = PACKAGE / "graph" / "_probe_layout.py"
    probe.write_text("from m365audit.collect import SOURCES\nfrom m365audit.evidence.items import is_list\n")
    try:
        problems = _problems(probe)
    finally:
        probe.unlink()
    assert len(problems) == 2 and "not below" in problems[0] and "reaches inside" in problems[1]


def test_no_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    names = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in _modules()}
    for mod, path in names.items():
        deps = set()
        for _, module, imported in _imports(path):
            for candidate in [f"{module}.{n}" for n in imported] + [module]:
                if candidate in names and candidate != mod:
                    deps.add(candidate)
                    break
        graph[mod] = deps
    seen: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        for dep in graph[node]:
            if seen.get(dep) == 1:
                # a package's face importing its own modules is not a cycle back into the package
                if not (dep == node.rsplit(".", 1)[0] or node.startswith(dep + ".")):
                    pytest.fail("import cycle: " + " -> ".join([*stack, node, dep]))
            elif dep not in seen:
                visit(dep, [*stack, node])
        seen[node] = 2

    for mod in graph:
        if mod not in seen:
            visit(mod, [])


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_small_and_say_what_they_are_for(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES, f"{path.name}: split it by job (guide: {MAX_LINES} lines)"
    doc = ast.get_docstring(ast.parse(text))
    assert doc and doc.strip(), f"{path.name} needs a one-line docstring saying what it is for"


def test_only_the_cli_prints() -> None:
    """print(), sys.stdout/stderr writes and sys.exit live in cli/ (the simulator's own entry point excepted)."""
    offenders = []
    for path in _modules():
        if _package_of(path) in ("cli", "simulator"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                base = ast.unparse(f.value) if isinstance(f, ast.Attribute) else ""
                if name == "print" and not base or base in ("sys.stdout", "sys.stderr") and name == "write" \
                        or base == "sys" and name == "exit" or base == "click" and name == "echo":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(f)}")
    assert offenders == []


WRITERS = {("base.py", "echo"), ("base.py", "echo_json"), ("terminal.py", "emit")}
"""The functions of cli/ that may write to a stream directly: the echo wrapper (clean()) and the log handler."""


def _raw_writes(path: Path) -> list[str]:
    """click.echo/secho, print() and sys.stdout/stderr writes outside the echo wrapper of cli/base.py."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed = {id(n) for func in ast.walk(tree) if isinstance(func, ast.FunctionDef)
               and (path.name, func.name) in WRITERS for n in ast.walk(func)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "click" and \
                {a.name for a in node.names} & {"echo", "secho"}:
            found.append(f"{path.name}:{node.lineno}: from click import echo")
        if not isinstance(node, ast.Call) or id(node) in allowed:
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        base = ast.unparse(f.value) if isinstance(f, ast.Attribute) else ""
        if (base == "click" and name in ("echo", "secho")) or (name == "print" and not base) \
                or (base in ("sys.stdout", "sys.stderr") and name in ("write", "writelines")):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(f)}")
    return sorted(set(found))


def test_the_cli_prints_only_through_its_echo_wrapper() -> None:
    """Tenant strings are hostile: every line the CLI prints passes clean() (cli/terminal.py)."""
    offenders = [p for path in _modules() if _package_of(path) == "cli" for p in _raw_writes(path)]
    assert offenders == []


def test_the_echo_check_sees_a_raw_echo() -> None:
    probe = PACKAGE / "cli" / "_probe_echo.py"
    probe.write_text('"""Probe."""\nimport click\nimport sys\n\n\ndef f() -> None:\n    click.echo("x")\n'
                     '    sys.stderr.write("y")\n')
    try:
        found = _raw_writes(probe)
    finally:
        probe.unlink()
    assert len(found) == 2
