"""Score labels (search/labels.py): the cut table is complete, ordered and the one the bench measured,
and the bench harnesses that measure labels and + / − run end to end on the tiny sets."""
import json
import re
from pathlib import Path

import pytest

from bench import feedback as feedback_bench
from bench import score_labels
from search.labels import CUTS, LABELS, cuts_of, label_of
from search.modes import pairs

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"


def test_every_mode_and_metric_has_ordered_cuts():
    for mode, metric in pairs():
        cuts = cuts_of(mode, metric)
        assert len(cuts) == len(LABELS) - 1 and list(cuts) == sorted(cuts), (mode, metric)
    assert cuts_of("embeddings", "ann_cosine") == cuts_of("embeddings", "cosine")
    with pytest.raises(ValueError, match="valid modes"):
        cuts_of("nope")


def test_a_distance_gets_the_label_of_the_first_cut_it_is_within():
    same, edited, similar, loose = cuts_of("phash")
    assert label_of(0, "phash") == "same picture" and label_of(same, "phash") == "same picture"
    assert label_of(edited, "phash") == "edited copy"
    assert label_of(loose + 1, "phash") == "unrelated"
    assert label_of(22, "phash") == "unrelated"  # the cat, colour wheel and tissues
    embeddings = cuts_of("embeddings", "cosine")
    assert label_of((embeddings[1] + embeddings[2]) / 2, "embeddings", "cosine") == "similar"


def test_the_table_is_the_one_the_bench_measured():
    table = (RESULTS / "score_labels.md").read_text(encoding="utf-8")
    measured = {}
    for line in table.splitlines():
        found = re.match(r"\| (\w+) / (\w+) \| (.*) \|$", line)
        if found and found[1] != "mode":
            measured[(found[1], found[2])] = tuple(float(cell.split(" ")[0]) for cell in found[3].split(" | "))
    assert measured == CUTS


@pytest.mark.slow  # benchmark smoke test: builds and extracts the tiny sets
def test_label_and_feedback_benches_run_on_the_tiny_sets(tmp_path, capsys):
    score_labels.main(["--tiny", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "score_labels_tiny.json").read_text())
    assert {(r["mode"], r["metric"]) for r in report["rows"]} == set(score_labels.MEASURED)
    assert all(r["cuts"] == sorted(r["cuts"]) and r["pairs"]["edits"] for r in report["rows"])
    feedback_bench.main(["--tiny", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")])
    rows = json.loads((tmp_path / "out" / "feedback_tiny.json").read_text())["rows"]
    assert {r["mode"] for r in rows} == set(feedback_bench.MODES_MEASURED)
    assert all(0 <= r["P@10 before"] <= 1 and 0 <= r["P@10 after"] <= 1 for r in rows)
    assert "| mode / metric |" in capsys.readouterr().out
