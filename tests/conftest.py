"""Shared fixtures: a small real-photo collection, scanned and extracted once per session."""
import os
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def random_photo(seed, size=(320, 240)):
    """A smooth random RGB image (blurred noise looks more like a photo than white noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(size[1] // 16 + 1, size[0] // 16 + 1, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BICUBIC)


@pytest.fixture(scope="session")
def mini_collection(tmp_path_factory):
    """10 packaged sample photos x (original + 5 edits) = 60 JPEGs, plus its DB, fully extracted."""
    import generator
    import main
    from demo.build_demo import build

    base = tmp_path_factory.mktemp("mini")
    images = base / "images"
    count = build(str(images), quarters=False)
    db_path = base / "mini.db"
    generator.scan(str(images), str(db_path), progress=False)
    main.extract(str(db_path), model="efficientnet_lite0", workers=0, progress=False)
    return {"images": images, "db": db_path, "count": count}


@pytest.fixture
def mini_conn(mini_collection):
    from db import connect

    conn = connect(mini_collection["db"])
    yield conn
    conn.close()
