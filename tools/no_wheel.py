"""The build backend of pyproject.toml: it builds nothing, and says in one line why.

The project is not a package for site-packages: config.py, main.py and the other scripts run
from the project folder, beside their data and the notebook. So ``pip install .`` stops here
with one clear line instead of producing a wheel that puts config.py and the packages loose
in site-packages (pyproject.toml names this file with ``backend-path``).
"""
import sys

MESSAGE = ("image-recommender is not installed with pip: it runs from its folder. "
           "There, `make demo` sets it up (requirements.txt into .venv) and `make test` tests it; "
           "then run e.g. `.venv/bin/python similarities.py PHOTO`.")


def _refuse(*args, **kwargs):
    """Every PEP 517/660 hook: the message on stderr, exit status 1, no traceback."""
    print(MESSAGE, file=sys.stderr)
    raise SystemExit(1)


get_requires_for_build_wheel = get_requires_for_build_sdist = get_requires_for_build_editable = _refuse
prepare_metadata_for_build_wheel = prepare_metadata_for_build_editable = _refuse
build_wheel = build_sdist = build_editable = _refuse
