"""Shared fixtures: a small real-photo collection, scanned and extracted once per session."""
import pytest

import generator
import main
from db import connect
from demo.build_demo import build


@pytest.fixture(scope="session")
def mini_collection(tmp_path_factory):
    """10 packaged sample photos x (original + 5 edits) = 60 JPEGs, plus its DB, fully extracted."""
    base = tmp_path_factory.mktemp("mini")
    images = base / "images"
    count = build(str(images), quarters=False)
    db_path = base / "mini.db"
    generator.scan(str(images), str(db_path), progress=False)
    main.extract(str(db_path), model="efficientnet_lite0", workers=0, progress=False)
    return {"images": images, "db": db_path, "count": count}


@pytest.fixture
def mini_conn(mini_collection):
    conn = connect(mini_collection["db"])
    yield conn
    conn.close()
