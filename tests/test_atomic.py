"""fileio.atomic: a file is complete or absent, never half-written, whatever goes wrong."""
import os

import pytest

from fileio import atomic_path, atomic_write, remove_dead_temporaries, write_with


def test_atomic_write_replaces_only_when_complete(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]  # the temporary file is gone
    with atomic_write(target, "w") as fh:
        fh.write("new")
    assert target.read_text() == "new"


def test_full_disk_leaves_nothing_behind(tmp_path):
    def fail(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"x" * 10)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_with(tmp_path / "index.ann", fail)
    assert os.listdir(tmp_path) == []


def test_temporary_names_are_unique_and_in_the_same_folder(tmp_path):
    with atomic_path(tmp_path / "a.bin") as one, atomic_path(tmp_path / "a.bin") as two:
        assert one != two
        assert os.path.dirname(one) == os.path.dirname(two) == str(tmp_path)
        open(one, "wb").close()
        open(two, "wb").close()
    assert os.listdir(tmp_path) == ["a.bin"]


def test_read_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must contain"):
        with atomic_write(tmp_path / "x", "r"):
            pass


def test_remove_dead_temporaries_keeps_live_writers(tmp_path):
    dead = tmp_path / "index.ann.tmp999999999-abcd"
    live = tmp_path / f"index.ann.tmp{os.getpid()}-abcd"
    other = tmp_path / "other.tmp1-x"
    for path in (dead, live, other):
        path.write_bytes(b"")
    assert remove_dead_temporaries(tmp_path, "index.ann") == 1
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, other.name])
