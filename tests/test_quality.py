"""The quality benchmark on a seconds-sized subset made from scikit-image's sample photos.

The full run (`make quality`) needs Debian packages; `python -m bench.quality --tiny` needs
only PyPI. It runs here as a user runs it, in a fresh process, and its written results are
reopened: the benchmark's scoring must be right (checked against a ranking made by hand
through the public API) and retrieval sane (the embeddings group crops of one photo far
above chance, and an exact copy of an image is the first answer in every mode, metric and
option).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from db import connect
from demo.build_demo import package_file
from features.hashes import packed_hashes
from samples import ROOT
from search import matrix_cache
from search.metrics import hamming_distance
from search.modes import MODES, pairs
from search.orientations import ORIENTATIONS, oriented
from similarities import calculate_similarities

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

PHOTOS, CROPS = 6, 5  # what --tiny builds


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("quality"))
    results = os.path.join(out, "results")
    run = subprocess.run([sys.executable, "-m", "bench.quality", "--tiny", "--models", "efficientnet_lite0",
                          "--workers", "0", "--cache", out, "--out", results],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(os.path.join(results, "quality.json"), encoding="utf-8") as fh:
        report = json.load(fh)
    with open(os.path.join(results, "quality.md"), encoding="utf-8") as fh:
        table = fh.read()
    assert table in run.stdout  # printed and written alike
    labelled, near = os.path.join(out, "labelled"), os.path.join(out, "near_duplicates")
    yield out, labelled, near, report, table
    matrix_cache.forget()


def test_every_valid_pair_and_the_orientation_option_are_measured(tiny_run):
    rows = tiny_run[3]["runs"][0]["rows"]
    measured = {(row["mode"], row["metric"]) for row in rows.values()}
    assert measured == set(pairs())
    assert sorted(r["mode"] for r in rows.values() if r.get("any_orientation")) == ["ahash", "dhash", "phash"]


def test_chance_level_is_the_share_of_same_class_images(tiny_run):
    chance, sizes = tiny_run[3]["runs"][0]["chance"], tiny_run[3]["runs"][0]["sizes"]
    n = PHOTOS * CROPS
    assert len(sizes["classes"]) == PHOTOS and set(sizes["classes"].values()) == {CROPS} and sizes["labelled"] == n
    assert chance["labelled"]["P@5"] == pytest.approx((CROPS - 1) / (n - 1))
    assert chance["near_duplicates"]["recall@1"] == pytest.approx(1 / PHOTOS)  # no distractors here
    assert chance["labelled"]["P@1"] < chance["labelled"]["mAP"] < 0.5


def test_embeddings_beat_chance_by_a_wide_margin(tiny_run):
    run = tiny_run[3]["runs"][0]
    chance = run["chance"]["labelled"]
    for metric in MODES["embeddings"].metrics:
        scores = run["rows"][f"embeddings/{metric}"]["labelled"]
        assert scores["P@1"] >= 0.9, metric
        assert scores["P@5"] >= 4 * chance["P@5"], metric
        assert scores["mAP"] >= 4 * chance["mAP"], metric


def test_exact_copies_come_first_in_every_mode(tiny_run):
    for name, row in tiny_run[3]["runs"][0]["rows"].items():
        assert row["near_duplicates"]["exact_copy"]["recall@1"] == 1.0, name


def test_labelled_scores_match_a_hand_ranking(tiny_run):
    out, labelled, _, report, _ = tiny_run
    conn = connect(os.path.join(out, "labelled_efficientnet_lite0.db"))
    expected = {"P@1": [], "P@5": [], "AP": []}
    for path in sorted(matrix_cache.load(conn, "rgb").paths):
        ranked = calculate_similarities(os.path.join(labelled, path), conn, "rgb", "euclidean",
                                        top_k=PHOTOS * CROPS - 1)
        real_root = os.path.realpath(labelled)
        hits = [os.path.relpath(p, real_root).split(os.sep)[0] == path.split("/")[0] for p, _ in ranked]
        expected["P@1"].append(hits[0])
        expected["P@5"].append(sum(hits[:5]) / 5)
        found = np.flatnonzero(hits)  # every other crop of the class is somewhere in the full ranking
        expected["AP"].append(np.mean([(i + 1) / (rank + 1) for i, rank in enumerate(found)]))
    conn.close()
    scores = report["runs"][0]["rows"]["rgb/euclidean"]["labelled"]
    assert scores["P@1"] == pytest.approx(np.mean(expected["P@1"]))
    assert scores["P@5"] == pytest.approx(np.mean(expected["P@5"]))
    assert scores["mAP"] == pytest.approx(np.mean(expected["AP"]))


def test_results_are_written_and_read_back(tiny_run):
    report, table = tiny_run[3], tiny_run[4]
    assert report["unavailable_models"] == {} and len(report["runs"]) == 2  # the default precision, then int8
    run = report["runs"][0]
    assert run["runtime"] in ("onnxruntime", "torch") and run["precision"] in ("float32", "bfloat16", "int8")
    assert f"| efficientnet_lite0 ({run['runtime']}, {run['precision']}) | embeddings/cosine |" in table
    assert "| | chance |" in table and "avx2 " in table


def test_every_orientation_of_an_image_finds_its_upright_hash():
    def phashes(images):  # as the extraction and search.query hash them
        return packed_hashes([im.convert("L") for im in images], "phash", 8)

    image = Image.open(package_file("skimage", "data/chelsea.png")).convert("RGB")
    upright = phashes([image])
    assert len(ORIENTATIONS) == 8 and len({h.tobytes() for h in phashes(oriented(image))}) == 8
    for turned in oriented(image):
        assert min(hamming_distance(upright, q)[0] for q in phashes(oriented(turned))) == 0


def test_class_map_is_shipped_in_the_project():
    with open(os.path.join(ROOT, "bench", "tuxpaint_classes.tsv"), encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh if line.strip() and not line.startswith("#")]
    mapping = dict(rows)
    assert mapping["animals/birds"] == "birds" and mapping["stamps/clothes"] == "clothes"
    assert len(set(mapping.values())) == 17  # 15 kept + trees and mushrooms, which have under 8 images


def test_any_orientation_finds_a_mirrored_copy_that_the_upright_hash_misses(tiny_run, tmp_path):
    out, _, near = tiny_run[:3]
    conn = connect(os.path.join(out, "near_efficientnet_lite0.db"))
    original = os.path.join(near, "collection", "originals", "sample_chelsea.jpg")
    mirrored = str(tmp_path / "mirrored.png")
    Image.open(original).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    upright = calculate_similarities(mirrored, conn, "phash", "hamming", top_k=1)
    turned = calculate_similarities(mirrored, conn, "phash", "hamming", top_k=1, any_orientation=True)
    conn.close()
    assert os.path.samefile(turned[0][0], original) and turned[0][1] <= 4
    assert upright[0][1] > 16  # the mirrored picture's own hash is far from everything


def test_any_orientation_is_refused_outside_the_hash_modes(tiny_run):
    out, _, near = tiny_run[:3]
    conn = connect(os.path.join(out, "near_efficientnet_lite0.db"))
    query = os.path.join(near, "queries", "exact_copy", "sample_chelsea.jpg")
    with pytest.raises(ValueError, match="hash modes"):
        calculate_similarities(query, conn, "embeddings", "cosine", any_orientation=True)
    conn.close()


def test_int8_is_scored_against_the_default_precision(tiny_run):
    """make quality prints whether int8 keeps P@10 and near-duplicate R@1 (issue 11's keep rule)."""
    runs = tiny_run[3]["runs"]
    assert runs[0]["precision"] != "int8" and runs[1]["precision"] == "int8" and runs[1]["model"] == runs[0]["model"]
    assert list(runs[1]["rows"]) == ["embeddings/cosine"] and runs[1]["runtime"] == "onnxruntime"
    ours, theirs = runs[1]["rows"]["embeddings/cosine"], runs[0]["rows"]["embeddings/cosine"]
    verdict = next(line for line in tiny_run[4].splitlines() if line.startswith(f"int8 against {runs[0]['precision']}"))
    assert f"P@10 {ours['labelled']['P@10']:.3f} vs {theirs['labelled']['P@10']:.3f}" in verdict
    assert ("quality holds" in verdict) == (theirs["labelled"]["P@10"] - ours["labelled"]["P@10"] <= 0.01 and
                                            theirs["near_duplicates"]["mean"]["recall@1"]
                                            - ours["near_duplicates"]["mean"]["recall@1"] <= 0.005)


def test_issue_21_steps_are_scored_on_dbs_made_with_their_framing(tiny_run):
    """Each step of issue 21 is measured on its own terms: the framing read back from its DB's stamp."""
    options = tiny_run[3]["options"]
    by_name = {one["name"]: one for one in options}
    assert by_name["before issue 21: centre crop"]["framing"] == "centre_crop"
    before = by_name["before issue 21: centre crop"]
    assert before["transform"] == "none" and not before["expand"]
    assert by_name["whole picture, padded"]["framing"] == "pad"
    default = next(one for one in options if "(the defaults)" in one["name"])
    assert (default["framing"], default["transform"], default["expand"]) == ("squash", "centred", True)
    assert default["labelled"] == tiny_run[3]["runs"][0]["rows"]["embeddings/cosine"]["labelled"]
    assert all(one["network_ms_per_image"] > 0 for one in options)
    assert "| before issue 21: centre crop | efficientnet_lite0 |" in tiny_run[4]
