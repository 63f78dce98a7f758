"""Whole-picture framing (features.framing): what the network sees, and the DB stamp that keeps
a DB's framing and refuses to mix two (issue 21)."""
import numpy as np
import pytest
from PIL import Image

import config
from db import connect
from db.errors import SettingsMismatchError
from db.meta import check_or_write_stamp, features_stamp
from extraction.run import Job, model_for_run, record_framing_of_old_stamp
from features.extract import STAMP_KEYS, Settings
from features.framing import FRAMINGS, centre_crop, frame, pad, squash
from samples import fake_stamp, random_photo
from search.query_features import settings_for


def striped(width, height):
    """Left third red, middle green, right third blue: which parts survive a framing is visible."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 3, 0] = 255
    pixels[:, width // 3: 2 * width // 3, 1] = 255
    pixels[:, 2 * width // 3:, 2] = 255
    return Image.fromarray(pixels)


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("size", [224, 240, 260])
def test_every_framing_gives_the_networks_square(framing, size):
    for copy in (random_photo(1, (384, 256)), random_photo(2, (256, 341))):
        out = frame(copy, framing, size)
        assert out.shape == (size, size, 3) and out.dtype == np.uint8


def test_centre_crop_is_the_old_crop_and_the_whole_picture_framings_keep_the_sides():
    copy = striped(456, 256)  # a landscape picture's shared copy (shorter side 256)
    old = np.array(copy.crop((116, 16, 340, 240)))  # what every DB before issue 21 was made from
    np.testing.assert_array_equal(centre_crop(copy), old)
    for whole in (squash(copy), pad(copy)):
        middle = whole[whole.shape[0] // 2]
        assert middle[5, 0] > 200 and middle[-5, 2] > 200  # red on the left, blue on the right: all of it
    red_share = {name: (f(copy)[112, :, 0] > 200).mean() for name, f in (("crop", centre_crop), ("squash", squash))}
    assert red_share["crop"] < 0.2 < 0.3 < red_share["squash"]  # the crop cut away half of the left third
    padded = pad(copy)
    assert (padded[0] == 255).all() and (padded[-1] == 255).all()  # letterboxed on white, top and bottom
    assert not (squash(copy)[0] == 255).all()  # squashed: the picture fills the square


def test_unknown_framing_lists_the_valid_ones():
    with pytest.raises(ValueError, match="squash, pad, centre_crop"):
        frame(random_photo(0), "zoom", 224)
    with pytest.raises(ValueError, match="squash, pad, centre_crop"):
        Settings(model="efficientnet_lite0", framing="zoom")


def test_the_stamp_records_the_framing_and_refuses_to_mix(tmp_path):
    assert "embedding_framing" in STAMP_KEYS
    conn = connect(tmp_path / "f.db", create=True)
    check_or_write_stamp(conn, {**fake_stamp(8), "embedding_framing": "centre_crop"})
    check_or_write_stamp(conn, {**fake_stamp(8), "embedding_framing": "centre_crop"})  # the same: accepted
    with pytest.raises(SettingsMismatchError,
                       match="embedding_framing: DB has centre_crop, asked for squash.*--reset-features"):
        check_or_write_stamp(conn, {**fake_stamp(8), "embedding_framing": "squash"})


def test_an_old_db_keeps_centre_crops_until_reset(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "EMBED_FRAMING", "squash")
    conn = connect(tmp_path / "old.db", create=True)
    check_or_write_stamp(conn, fake_stamp(8))  # stamped before framings were recorded
    assert "embedding_framing" not in features_stamp(conn)
    assert settings_for(features_stamp(conn)).framing == "centre_crop"  # queries frame as its pictures were
    choice = model_for_run(conn, "auto", reset=False)
    assert choice.framing == "centre_crop"
    assert Job(str(tmp_path / "old.db")).settings("efficientnet_lite0", choice.framing).framing == "centre_crop"
    record_framing_of_old_stamp(conn)
    assert features_stamp(conn)["embedding_framing"] == "centre_crop"
    check_or_write_stamp(conn, {**fake_stamp(8), "embedding_framing": "centre_crop"})  # new pictures: accepted
    # --reset-features: the DB is made again with this machine's framing.
    reset = model_for_run(conn, "auto", reset=True)
    assert reset.framing is None
    assert Job(str(tmp_path / "old.db")).settings("efficientnet_lite0", reset.framing).framing == "squash"


def test_a_new_db_gets_the_configured_framing_and_its_queries_use_it(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "EMBED_FRAMING", "pad")
    conn = connect(tmp_path / "new.db", create=True)
    choice = model_for_run(conn, "efficientnet_lite0", reset=False)
    settings = Job(str(tmp_path / "new.db")).settings(choice.model, choice.framing)
    assert settings.framing == "pad"
    assert settings_for({**fake_stamp(8), "embedding_framing": "pad"}).framing == "pad"
