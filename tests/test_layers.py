"""The package's import layers: no module imports a higher layer and no modules import each other in a cycle (imports
at module level and inside functions alike). The table is the one docs/architecture.md draws."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deepconv_cli"
# lowest first; the package itself (deepconv_cli/__init__.py: the version) is with errors and files; compat/ holds
# the library behaviour without a public API (one module per library)
LAYERS = [
    ["compat", "errors", "files", "tables"],
    ["data", "models"],
    ["training", "evaluation"],
    ["export", "features", "localisation", "benchmarks", "recipes"],
    ["cli"],
    ["__main__"],
]
DRAWN = "compat, errors, files, tables → data, models → training, evaluation → export, features, localisation, " \
    "benchmarks, recipes → cli → __main__"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> list[tuple[str, str, bool, int]]:
    """(importer, imported, at module level, line) for every deepconv_cli import in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                folder = PACKAGE.joinpath(*node.module.split(".")[1:])  # `from deepconv_cli.x import module`
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                         if (folder / f"{a.name}.py").is_file()]
            else:
                continue
            found += [(module_name(path), n, id(node) in top, node.lineno)
                      for n in names if n.split(".")[0] == "deepconv_cli"]
    return found


def layer(module: str) -> int:
    top = (module.split(".") + ["errors"])[1]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_no_module_imports_a_higher_layer():
    upward = [f"{a}:{line} imports {b}" for a, b, _, line in imports() if layer(b) > layer(a)]
    assert upward == []


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = {}
    for a, b, _, _ in imports():  # imports inside functions too: a lazy cycle is still a cycle
        if a != b:
            graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path, node][[*path, node].index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_the_table_is_the_one_docs_draw_and_covers_every_folder():
    assert DRAWN in (PACKAGE.parent / "docs" / "architecture.md").read_text()
    assert DRAWN == " → ".join(", ".join(names) for names in LAYERS)
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    files = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert folders | files == {name for names in LAYERS for name in names}
