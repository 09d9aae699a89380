"""The stairs run one way (docs/internals.md, "Layers"): every import in runtime/minictr, function-level
ones included, goes down the layers. A new arrow that runs up or sideways fails here, naming the file,
the line and the rule."""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "runtime" / "minictr"

# What each part of the package may import of minictr (besides itself and the top-level constants in
# minictr/__init__.py). None: anything but what FORBIDDEN names.
ALLOWED = {
    "errors": set(),
    "wire": {"errors"},
    "spec": {"errors"},
    "client": {"errors", "wire", "spec"},
    "cli": {"client", "spec", "errors", "wire"},
}
# The floors above the services: no service imports them, and the API never imports the daemon
# or the CLI. `main` is the `minictr` command's door: it alone sees both the CLI and the host-side
# commands (daemon, doctor).
UPPER = {"cli", "api", "daemon", "main", "__main__"}
FORBIDDEN = {"api": {"cli", "daemon", "main"}, "daemon": {"cli", "main"}, "main": set(), "__main__": {"cli", "daemon"}}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """(line, imported minictr module) for every import in the file, at any depth."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                # `from minictr import doctor` imports the module minictr.doctor.
                submodule = f"{base}.{alias.name}"
                is_module = (PACKAGE.parent / submodule.replace(".", "/")).with_suffix(".py").exists() or \
                    (PACKAGE.parent / submodule.replace(".", "/")).is_dir()
                yield node.lineno, submodule if is_module else base


def _part(module):
    """The part of the package a module belongs to: `minictr.containers.create` → `containers`;
    None for the top-level constants (minictr/__init__.py) and for anything outside minictr."""
    parts = module.split(".")
    if parts[0] != "minictr" or len(parts) == 1:
        return None
    return parts[1]


def _edges():
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _part(_module_name(path))
        for line, target in _imports(path):
            target_part = _part(target)
            if target_part and target_part != source:
                yield path.relative_to(PACKAGE.parent), line, source, target, target_part


def _violation(source, target_part):
    if source in ALLOWED:
        return None if target_part in ALLOWED[source] else f"{source} may import only {sorted(ALLOWED[source])}"
    if source in FORBIDDEN:
        return f"{source} never imports {target_part}" if target_part in FORBIDDEN[source] else None
    if target_part in UPPER:
        return f"a service ({source}) never imports {target_part}"
    return None


def test_every_import_runs_down_the_layers():
    wrong = sorted({f"{path}:{line}: imports {target}: {why}"
                    for path, line, source, target, target_part in _edges()
                    if (why := _violation(source, target_part))})
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_ground_floor_imports_only_the_standard_library():
    stdlib = set(sys.stdlib_module_names)
    wrong = []
    for floor in ("errors", "wire", "spec"):
        paths = [PACKAGE / f"{floor}.py"] if (PACKAGE / f"{floor}.py").exists() else sorted((PACKAGE / floor).rglob("*.py"))
        for path in paths:
            for line, module in _imports(path):
                top = module.split(".")[0]
                if top not in stdlib and top != "minictr":
                    wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {module}")
    assert not wrong, "the ground floor is pure (stdlib only):\n" + "\n".join(wrong)


def test_the_parts_of_the_package_form_no_import_cycle():
    graph = {}
    for _, _, source, _, target_part in _edges():
        if source:
            graph.setdefault(source, set()).add(target_part)
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle between parts of the package: " + " → ".join(cycle)


def _find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("source, target, allowed", [
    ("cli", "containers", False), ("cli", "spec", True), ("spec", "images", False),
    ("images", "daemon", False), ("networks", "cli", False), ("api", "cli", False),
    ("api", "containers", True), ("daemon", "networks", True), ("main", "daemon", True),
])
def test_the_rules_say_what_docs_internals_says(source, target, allowed):
    assert (_violation(source, target) is None) is allowed
