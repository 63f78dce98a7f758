"""The projector export, read back from disk and served by TensorBoard itself."""
import json
import os

import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins.projector import ProjectorConfig

import export_tensorboard
from search import matrix_cache
from viz import projector, sprite
from viz.projector_shot import get, running_tensorboard


def read_config(logdir):
    config = ProjectorConfig()
    with open(os.path.join(logdir, projector.CONFIG_FILE), encoding="utf-8") as fh:
        text_format.Parse(fh.read(), config)
    return config


@pytest.fixture(scope="module")
def exported(mini_collection, tmp_path_factory):
    """The mini collection (60 images) exported with a cap of 25 points."""
    logdir = tmp_path_factory.mktemp("tb")
    result = projector.export(str(mini_collection["db"]), str(logdir), "embeddings", limit=25, seed=1,
                                       progress=False)
    return result


def test_files_agree_with_the_config_and_the_db(exported, mini_conn):
    config = read_config(exported.logdir)
    (embedding,) = config.embeddings
    assert embedding.tensor_name == "embeddings"
    assert list(embedding.tensor_shape) == [25, exported.dim]
    tensor = np.fromfile(os.path.join(exported.logdir, embedding.tensor_path), dtype="<f4").reshape(25, -1)
    with open(os.path.join(exported.logdir, embedding.metadata_path), encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert lines[0].split("\t") == list(projector.METADATA_COLUMNS)
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 25 and all(len(r) == 4 for r in rows)
    loaded = matrix_cache.load(mini_conn, "embeddings")
    row_of_path = {loaded.paths[i]: i for i in range(len(loaded.ids))}
    for (path, name, folder, label), vector in zip(rows, tensor):
        assert path == f"{folder}/{name}" and label == folder  # flat collection: label is the folder
        np.testing.assert_array_equal(vector, loaded.matrix[row_of_path[path]])
    with Image.open(os.path.join(exported.logdir, embedding.sprite.image_path)) as image:
        per_row, tile = sprite.sprite_layout(25)
        assert list(embedding.sprite.single_image_dim) == [tile, tile] == [64, 64]
        assert image.size == (per_row * tile, 5 * tile) == (320, 320)


def test_the_sample_is_seeded_and_the_cap_is_logged(mini_collection, tmp_path, caplog):
    again = projector.export(str(mini_collection["db"]), str(tmp_path), "embeddings", limit=25, seed=1,
                                      progress=False)
    assert "exporting 25 of them (random sample, seed 1)" in caplog.text and "60 images" in caplog.text
    with open(again.metadata_path, "rb") as fh:
        assert fh.read() == open(os.path.join(tmp_path, "embeddings_metadata.tsv"), "rb").read()


def test_a_second_mode_joins_the_same_config(mini_collection, tmp_path):
    db = str(mini_collection["db"])
    projector.export(db, str(tmp_path), "embeddings", limit=None, sprite=False, progress=False)
    projector.export(db, str(tmp_path), "rgb", limit=None, progress=False)
    projector.export(db, str(tmp_path), "rgb", limit=10, progress=False)  # replaces, not duplicates
    config = read_config(tmp_path)
    shapes = {e.tensor_name: list(e.tensor_shape) for e in config.embeddings}
    assert shapes == {"embeddings": [60, shapes["embeddings"][1]], "rgb": [10, 512]}
    assert not config.embeddings[0].sprite.image_path


def test_tensor_that_would_read_as_text_is_written_as_text():
    suffix, data = projector.tensor_bytes(np.zeros((3, 4), dtype=np.float32))
    assert suffix == ".tsv" and np.loadtxt(data.decode().splitlines()).shape == (3, 4)
    suffix, data = projector.tensor_bytes(np.random.default_rng(0).normal(size=(3, 4)))
    assert suffix == ".bytes" and len(data) == 3 * 4 * 4


def test_metadata_survives_tabs_in_file_names():
    lines = projector.metadata_tsv(["a\tb/c.jpg", "top.jpg"]).decode().splitlines()
    assert lines[1:] == ["a b/c.jpg\tc.jpg\ta b\ta b", "top.jpg\ttop.jpg\t.\t."]


def test_sprite_layout_follows_the_point_count():
    assert sprite.sprite_layout(300) == (18, 64)
    assert sprite.sprite_layout(10_000) == (100, 64)
    assert sprite.sprite_layout(100_000) == (317, 25)  # 317 * 25 <= 8192
    with pytest.raises(sprite.SpriteTooLargeError, match="at most 1048576"):
        sprite.sprite_layout(2_000_000)


def test_bad_arguments_are_one_line_errors(mini_collection, tmp_path, capsys):
    from cli import run

    with pytest.raises(SystemExit) as exit_info:
        run(lambda: export_tensorboard.main(["--db", str(mini_collection["db"]), "--logdir", str(tmp_path),
                                             "--limit", "0"]))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "error: limit must be >= 1, got 0"


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_tensorboard_serves_the_export_in_its_projector(exported):
    """Start the real `tensorboard` on loopback and ask its projector plugin for our run."""
    with running_tensorboard(exported.logdir) as base:
        projector = f"{base}/data/plugin/projector"
        assert json.loads(get(f"{projector}/runs")) == ["."], "the projector did not list the logdir as a run"
        (embedding,) = json.loads(get(f"{projector}/info?run=."))["embeddings"]
        assert embedding["tensorName"] == "embeddings" and embedding["tensorShape"] == [25, exported.dim]
        with open(exported.tensor_path, "rb") as fh:
            assert get(f"{projector}/tensor?run=.&name=embeddings") == fh.read()
        assert len(get(f"{projector}/metadata?run=.&name=embeddings").decode().splitlines()) == 26
        with open(exported.sprite_path, "rb") as fh:
            assert get(f"{projector}/sprite_image?run=.&name=embeddings") == fh.read()
    with pytest.raises(OSError):  # and the server is gone afterwards
        get(f"{projector}/runs", timeout=2)
