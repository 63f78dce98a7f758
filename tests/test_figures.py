"""tools.figures, the generator of the README pictures: every picture is written and opens again."""
import pytest
from PIL import Image

from tools import figures

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not


def test_make_all_writes_every_readme_picture(mini_collection, tmp_path, monkeypatch, capsys):
    query = str(mini_collection["images"] / "chelsea" / "original.jpg")
    monkeypatch.setattr(figures, "projector_picture", lambda db, out: None)  # Chromium + TensorBoard: too slow here
    figures.make_all(str(mini_collection["db"]), query, str(tmp_path))
    printed = capsys.readouterr().out
    for name in ("demo_result.png", "mode_comparison.png", "umap_map.png", "projector_sprite.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "PNG" and picture.mode == "P"  # shrunk to 256 colours
            assert min(picture.size) >= 200
        assert f"wrote {tmp_path / name}" in printed
    assert "kept the old" in printed and not (tmp_path / "projector.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["demo_result.png", "mode_comparison.png", "umap_map.png", "projector_sprite.png"])  # no temporary files


def test_a_missing_query_is_one_line(tmp_path):
    with pytest.raises(figures.UsageError, match="run `make demo` first"):
        figures.main(["--db", str(tmp_path / "x.db"), "--query", str(tmp_path / "absent.jpg")])
