"""A bad IR_* value: one line naming the variable and what it accepts, exit 2, for every script.

config is imported at the top of every script, before anything could catch an exception,
so it is tested the way a user meets it: running the scripts.
"""
import os

import pytest

import config
from reliability_tools import ROOT, assert_clean_stderr, run_script, script_env

pytestmark = pytest.mark.slow  # runs the scripts end to end: `make test` runs it, `make test-fast` does not

SCRIPTS = [name for name in ("generator.py", "main.py", "similarities.py", "find_duplicates.py", "app.py",
                             "plot_embeddings.py", "export_tensorboard.py") if os.path.exists(os.path.join(ROOT, name))]

BAD = [  # (variable, value, words the line must contain)
    ("IR_BATCH_SIZE", "abc", "is not a whole number: use a whole number such as 8 of at least 1"),
    ("IR_BATCH_SIZE", "0", "is out of range: use a whole number of at least 1"),
    ("IR_MATRIX_CACHE", "maybe", "is not a yes/no value: use one of 1, true, yes, on, 0, false, no, off"),
    ("IR_DELETION_GUARD_SHARE", "20%", "is not a number: use a number such as 0.2 from 0.0 to 1.0"),
    ("IR_EMBED_RUNTIME", "tensorflow", "is not a valid choice: use one of onnxruntime, torch"),
    ("IR_IMAGE_EXTENSIONS", " , ", "is empty: give a comma-separated list such as .jpg,.jpeg"),
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_names_the_bad_variable(script):
    done = run_script(script, "--help", env=script_env(IR_BATCH_SIZE="abc"), timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert_clean_stderr(done.stderr)
    assert lines == ["error: IR_BATCH_SIZE='abc' is not a whole number: use a whole number such as 8 of at least 1"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_without_bad_values_every_script_starts(script):
    """The control for the test above: there, the exit comes from the bad value."""
    done = run_script(script, "--help", timeout=120)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("name,value,words", BAD, ids=[b[0] for b in BAD])
def test_each_kind_of_bad_value_says_what_is_accepted(name, value, words):
    done = run_script("generator.py", "--help", env=script_env(**{name: value}), timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"error: {name}={value!r} {words}"), done.stderr


def test_good_values_are_read(monkeypatch):
    for name, value, want in (("BATCH_SIZE", " 64", 64), ("MATRIX_CACHE", "Off", False), ("MATRIX_CACHE", "YES", True),
                              ("DELETION_GUARD_SHARE", "0.5", 0.5),
                              ("IMAGE_EXTENSIONS", ".jpg, .PNG,", (".jpg", ".PNG")),
                              ("EMBED_RUNTIME", "torch", "torch")):
        monkeypatch.setenv("IR_" + name, value)
        assert config.parse_env(name, getattr(config, name), choices=("onnxruntime", "torch")
                                if name == "EMBED_RUNTIME" else None) == want


def test_parse_env_raises_a_value_error_for_library_callers(monkeypatch):
    monkeypatch.setenv("IR_TOP_K", "many")
    with pytest.raises(ValueError, match="IR_TOP_K='many' is not a whole number"):
        config.parse_env("TOP_K", 5, minimum=1)
    assert issubclass(config.ConfigError, ValueError)
