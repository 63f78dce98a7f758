"""cli.run: the project's own errors become one line and exit status 2; anything else, a plain
ValueError included, is a bug and keeps its traceback."""
import subprocess
import sys

import pytest

from cli import UsageError, run
from config import ConfigError, InvalidInputError
from db.errors import NoFeaturesError
from samples import ROOT
from search.modes import get_mode


def _raising(exc):
    def main():
        raise exc
    return main


@pytest.mark.parametrize("exc", [UsageError("no such folder"), InvalidInputError("top_k must be >= 1"),
                                 ConfigError("IR_BATCH_SIZE is not a number"), NoFeaturesError("run main.py")])
def test_the_projects_errors_are_one_line_and_exit_2(exc, capsys):
    with pytest.raises(SystemExit) as stopped:
        run(_raising(exc))
    assert stopped.value.code == 2
    assert capsys.readouterr().err == f"error: {exc}\n"


def test_a_plain_value_error_is_a_bug_and_keeps_its_traceback():
    with pytest.raises(ValueError, match="a bug"):
        run(_raising(ValueError("a bug")))


def test_a_bad_choice_is_the_projects_error():
    with pytest.raises(InvalidInputError, match="valid modes: embeddings"):
        get_mode("colour")


def test_a_closed_pipe_ends_quietly():
    """`find_duplicates.py ... | head`: the reader left; no traceback, exit status 1."""
    script = "from cli import run\ndef main():\n    for _ in range(100000):\n        print('line ' * 20)\nrun(main)"
    done = subprocess.run(f"{sys.executable} -c \"{script}\" | head -1", shell=True, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.startswith("line") and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
