"""The Duplicates page's API: groups with the facts a reviewer needs, "not duplicates" and
"keep this one instead" remembered, copies moved into the review folder with --move-to's code
and put back by undo (checksums compared), and every action refused from another site."""
import os
import shutil

import pytest
from fastapi.testclient import TestClient
from test_webapp import copy_db

from samples import checksums
from webapp.server import create_app

ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def review_env(mini_collection, tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(mini_collection["images"], photos)
    db_copy = copy_db(mini_collection["db"], tmp_path / "copy.db", photos)
    review = tmp_path / "review"
    with TestClient(create_app(db_copy, thumbs_dir=str(tmp_path / "thumbs"), review_dir=str(review))) as client:
        yield {"client": client, "photos": photos, "review": review}


def test_groups_carry_what_a_reviewer_needs(review_env):
    client = review_env["client"]
    answer = client.get("/api/duplicates").json()
    assert answer["total_groups"] == 10 and answer["bytes_freed"] > 0
    for group in answer["groups"]:
        keeper = group["images"][0]
        assert keeper["keep"] and keeper["reason"] == "keeper" and keeper["path"].endswith("original.jpg")
        for image in group["images"]:
            assert image["kind"] in ("exact", "copy") and image["folder"] == keeper["folder"]
            assert image["pixels"] == image["width"] * image["height"] and image["size"] > 0
            assert image["date"][:2] == "20" and image["thumbnail"].startswith("/api/thumb/")
        assert all(image["reason"] != "keeper" for image in group["images"][1:])
    similar = client.get("/api/duplicates", params={"kind": "similar"}).json()
    assert all(g["kind"] == "similar" and g["bytes_freed"] == 0 for g in similar["groups"])
    assert client.get("/api/duplicates", params={"kind": "bursts"}).status_code == 400


def test_not_duplicates_and_keep_instead_are_remembered(review_env):
    client = review_env["client"]
    first, second = client.get("/api/duplicates").json()["groups"][:2]
    ids = [image["id"] for image in first["images"]]
    done = client.post("/api/duplicates/not-duplicates", json={"ids": ids}, headers=ORIGIN)
    assert done.status_code == 200 and done.json()["pairs"] >= 1
    after = client.get("/api/duplicates").json()
    assert first["keep"] not in [g["keep"] for g in after["groups"]]  # the group is gone after a reload
    assert not {i for g in after["groups"] for i in (m["id"] for m in g["images"])} & set(ids)
    other = second["images"][-1]["id"]
    chosen = client.post("/api/duplicates/keep", json={"ids": [m["id"] for m in second["images"]], "member": other},
                         headers=ORIGIN)
    assert chosen.status_code == 200
    group = next(g for g in client.get("/api/duplicates").json()["groups"]
                 if other in [m["id"] for m in g["images"]])
    assert group["keep"] == other and group["images"][1]["reason"] == "chosen by a reviewer"
    assert client.post("/api/duplicates/keep", json={"ids": [1, 2], "member": 3}, headers=ORIGIN).status_code == 400
    assert client.post("/api/duplicates/not-duplicates", json={"ids": [99999]}, headers=ORIGIN).status_code == 404


def test_move_to_the_review_folder_and_undo(review_env):
    client, photos, review = review_env["client"], review_env["photos"], review_env["review"]
    before = checksums(photos)
    group = client.get("/api/duplicates").json()["groups"][0]
    copies = [m["path"] for m in group["images"][1:]]
    moved = client.post("/api/duplicates/move", json={"keepers": [group["keep"]]}, headers=ORIGIN)
    assert moved.status_code == 200, moved.text
    assert moved.json()["moved"] == len(copies)
    in_review = checksums(review)
    assert sorted(in_review) == sorted(copies) and all(in_review[p] == before[p] for p in copies)  # same bytes
    assert not any(os.path.exists(photos / p) for p in copies)
    assert group["keep"] not in [g["keep"] for g in client.get("/api/duplicates").json()["groups"]]
    listed = client.get("/api/duplicates/moves").json()["moves"]
    assert listed[0]["manifest"] == moved.json()["manifest"] and listed[0]["still_out"] == len(copies)
    undone = client.post("/api/duplicates/undo", json={"manifest": moved.json()["manifest"]}, headers=ORIGIN)
    assert undone.status_code == 200 and undone.json()["restored"] == len(copies)
    assert checksums(photos) == before and checksums(review) == {}
    assert group["keep"] in [g["keep"] for g in client.get("/api/duplicates").json()["groups"]]
    again = client.post("/api/duplicates/move", json={"keepers": [123456]}, headers=ORIGIN)
    assert again.status_code == 409 and "nothing was moved" in again.json()["error"]
    assert client.post("/api/duplicates/undo", json={"manifest": "../copy.db"}, headers=ORIGIN).status_code == 404


@pytest.mark.parametrize("route, body", [
    ("/api/duplicates/not-duplicates", {"ids": [1, 2]}), ("/api/duplicates/keep", {"ids": [1, 2], "member": 1}),
    ("/api/duplicates/move", {"keepers": [1]}), ("/api/duplicates/undo", {"manifest": "undo-x.json"})])
def test_actions_refuse_other_sites(review_env, route, body):
    client = review_env["client"]
    before = client.get("/api/duplicates").json()
    answer = client.post(route, json=body, headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403
    assert client.get("/api/duplicates").json() == before and not os.path.exists(review_env["review"])
