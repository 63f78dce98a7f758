"""Search filters (search.filters): folder, dates and camera against a brute-force reference over
every image's stored facts, on a copy of the mini collection with EXIF facts written in."""
import numpy as np
import pytest

from db import connect
from db.connection import copy_database
from db.exif import row_facts, store_exif
from search import matrix_cache
from search.filters import Filter
from search.metrics import unit_rows
from search.query import search_ids, search_images

CAMERAS = {"astronaut": ("Canon", "Canon EOS 80D"), "chelsea": ("NIKON CORPORATION", "NIKON D750")}


@pytest.fixture(scope="module")
def conn(mini_collection, tmp_path_factory):
    path = tmp_path_factory.mktemp("filters") / "copy.db"
    copy_database(mini_collection["db"], path)
    conn = connect(path)
    facts = []
    for k, (image_id, image_path) in enumerate(conn.execute("SELECT id, path FROM images ORDER BY id").fetchall()):
        folder = image_path.split("/")[0]
        make, model = CAMERAS.get(folder, (None, None))
        taken = None if k % 4 == 3 else f"20{10 + k % 12:02d}-0{1 + k % 9}-1{k % 10}T12:00:00"  # some only a file date
        facts.append((image_id, (taken, make, model, None, None, 1)))
    store_exif(conn, facts)
    matrix_cache.forget()
    yield conn
    conn.close()


def reference(conn, query_id, where, top_k):
    """Exact cosine over every image, then the filter applied row by row in Python."""
    facts = row_facts(conn)
    loaded = matrix_cache.load(conn, "embeddings")
    unit = unit_rows(np.asarray(loaded.matrix, dtype=np.float64))
    distances = 1 - unit @ unit[loaded.row_of_id(query_id)]
    passing = []
    for image_id, path, taken, mtime_ns, camera in zip(*facts):
        day = (taken or np.datetime_as_string(np.datetime64(int(mtime_ns), "ns"), unit="D"))[:10]
        if where.folder and not path.startswith(where.folder + "/"):
            continue
        if (where.after and day < where.after) or (where.before and day > where.before):
            continue
        if where.camera and (camera is None or where.camera.lower() not in camera.lower()):
            continue
        if image_id != query_id:
            passing.append((distances[loaded.row_of_id(image_id)], image_id))
    return [image_id for _, image_id in sorted(passing)[:top_k]]


WHERES = [Filter(folder="chelsea"), Filter(folder="astronaut/"), Filter(after="2015-01-01"),
          Filter(before="2013-06-30"), Filter(after="2012-01-01", before="2016-12-31"), Filter(camera="nikon"),
          Filter(camera="EOS", after="2011-01-01"), Filter(folder="coffee", camera="canon"), Filter(folder="nope")]


@pytest.mark.parametrize("where", WHERES, ids=repr)
def test_filtered_search_equals_brute_force(conn, where):
    hits = search_ids(conn, [2], "embeddings", "cosine", top_k=12, expand=False, where=where)
    assert [h.id for h in hits] == reference(conn, 2, where, 12)


def test_filters_apply_with_expansion_and_to_uploads(conn, mini_collection):
    from features.decode import read_file
    from search.query import decode_query_bytes
    where = Filter(folder="chelsea")
    expanded = search_ids(conn, [2], "embeddings", top_k=6, where=where)
    assert expanded and all(h.path.startswith("chelsea/") for h in expanded)
    image = decode_query_bytes(conn, read_file(mini_collection["images"] / "coffee" / "original.jpg")[0])
    for mode in ("embeddings", "rgb", "phash"):
        hits = search_images(conn, [image], mode, top_k=4, where=Filter(camera="canon"))
        assert hits and all(h.path.startswith("astronaut/") for h in hits)


def test_bad_dates_are_named():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        Filter(after="last week")


def test_similarities_cli_filters(conn, mini_collection, capsys):
    import similarities
    from cli import UsageError
    db_path = conn.execute("PRAGMA database_list").fetchone()[2]
    query = str(mini_collection["images"] / "coffee" / "original.jpg")
    similarities.main([query, "--db", db_path, "--top-k", "5", "--folder", "chelsea", "--camera", "nikon"])
    printed = [line.split()[-1] for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    assert len(printed) == 5 and all("/chelsea/" in p for p in printed)
    want = similarities.calculate_similarities(query, conn, "embeddings", "cosine", 5,
                                               where=similarities.Filter(folder="chelsea", camera="nikon"))
    assert printed == [p for p, _ in want]
    with pytest.raises(UsageError, match="YYYY-MM-DD"):
        similarities.main([query, "--db", db_path, "--after", "2020"])


@pytest.mark.slow  # benchmark smoke test: builds a synthetic DB
def test_filter_speed_bench_runs_on_a_small_synthetic_db(tmp_path, capsys):
    import json

    from bench import filter_speed
    filter_speed.main(["--n", "2000", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "filter_speed_2000.json").read_text())
    kept = {row["filter"]: row["images kept"] for row in report["rows"]}
    assert kept["no filter"] == 2000 and kept["200 images (folder + camera)"] == 200
    assert kept[f"folder {filter_speed.FOLDER}"] == 1000 and 0 < kept["dates (about 30%)"] < 1000
    assert all(row["results"] == min(20, row["images kept"]) for row in report["rows"])
    assert "| filter |" in capsys.readouterr().out


@pytest.mark.parametrize("share", [0.0, 1.0])  # every filter through the masked pass, then through the subset
@pytest.mark.parametrize("mode", ["embeddings", "rgb", "dhash"])
def test_both_ranking_paths_agree(conn, monkeypatch, share, mode):
    import search.query
    where = Filter(after="2012-01-01", camera="o")
    monkeypatch.setattr(search.query, "SUBSET_SHARE", share)
    hits = search_ids(conn, [5], mode, top_k=10, expand=False, where=where)
    monkeypatch.setattr(search.query, "SUBSET_SHARE", 1.0 - share)
    other = search_ids(conn, [5], mode, top_k=10, expand=False, where=where)
    assert [(h.id, round(h.distance, 5)) for h in hits] == [(h.id, round(h.distance, 5)) for h in other] and hits
