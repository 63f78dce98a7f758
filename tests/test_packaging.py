"""Packaging that cannot break: the project runs from its folder, ``pip install .`` stops with
one clear line, and requirements.txt declares every package the code imports."""
import ast
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys

import pytest

from samples import ROOT


def _backend():
    """The build backend pyproject.toml names (tools/no_wheel.py via backend-path), loaded as pip loads it."""
    spec = importlib.util.spec_from_file_location("no_wheel", os.path.join(ROOT, "tools", "no_wheel.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


no_wheel = _backend()


@pytest.mark.slow  # runs pip
def test_pip_install_stops_with_one_clear_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
                           "--no-cache-dir", ROOT], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert output.count(no_wheel.MESSAGE) == 1 and "Traceback" not in output, output
    assert "\n" not in no_wheel.MESSAGE and "runs from its folder" in no_wheel.MESSAGE


def test_every_build_hook_refuses(capsys):
    for hook in ("build_wheel", "build_sdist", "build_editable", "prepare_metadata_for_build_wheel",
                 "get_requires_for_build_wheel"):
        try:
            getattr(no_wheel, hook)("dist")
        except SystemExit as exc:
            assert exc.code == 1
        else:
            raise AssertionError(f"{hook} built something")
        assert capsys.readouterr().err == no_wheel.MESSAGE + "\n"


def _declared(name):
    names = set()
    with open(os.path.join(ROOT, name), encoding="utf-8") as fh:
        for line in fh:
            match = re.match(r"\s*([A-Za-z0-9_.\-]+)(?:\[([^\]]*)\])?", line.split("#", 1)[0])
            if match:
                names.add(_normal(match.group(1)))
                # dask[distributed]: an extra named after a distribution installs it with the pinned dask
                names.update(_normal(extra) for extra in (match.group(2) or "").split(",") if extra.strip())
    return names


def _normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported(folders_to_skip):
    """Top-level names of every third-party import in the project's .py files."""
    found = {}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in folders_to_skip | {"__pycache__"}]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                    if isinstance(node, ast.Import):
                        tops = [alias.name.split(".")[0] for alias in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        tops = [node.module.split(".")[0]]
                    else:
                        continue
                    for top in tops:
                        found.setdefault(top, os.path.relpath(path, ROOT))
    ours = {entry[:-3] if entry.endswith(".py") else entry for entry in os.listdir(ROOT)}
    return {top: where for top, where in found.items()
            if top not in sys.stdlib_module_names and top not in ours and top != "no_wheel"}


def test_requirements_declare_every_import():
    """What the program imports is in requirements.txt; what only tests, benchmarks and tools import
    may be in requirements-dev.txt instead."""
    runtime, dev = _declared("requirements.txt"), _declared("requirements-dev.txt")
    assert not runtime & dev, "a package is in both files"
    distributions = importlib.metadata.packages_distributions()
    test_helpers = {"samples", "reliability_tools", "nasty_collection", "test_reliability_soak", "test_webapp"}
    program = _imported({"tests", "bench", "tools"})  # bench/ and tools/ are for developers (make bench, make figures)
    everything = _imported(set())
    missing = []
    for top, where in sorted(everything.items()):
        if top in test_helpers:
            continue
        wanted = {_normal(d) for d in distributions.get(top, [top])}
        allowed = runtime if top in program else runtime | dev
        if not wanted & allowed:
            missing.append(f"{top} (imported in {program.get(top, where)}) from {sorted(wanted)}")
    assert not missing, missing
