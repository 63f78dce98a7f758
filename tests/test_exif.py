"""EXIF facts read from a file's header: known values written with Pillow, read back from the file."""
import io

import pytest
from PIL import Image

from features.exif import NO_EXIF, camera_name, exif_of


def jpeg_with_exif(path, *, taken="2021:07:14 18:03:22", make="Canon", model="Canon EOS 80D", orientation=6):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = make, model, orientation
    exif.get_ifd(0x8769)[0x9003] = taken  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "S", (33.0, 51.0, 36.0), "E", (151.0, 12.0, 36.0)
    Image.new("RGB", (40, 30), (200, 10, 10)).save(path, "JPEG", exif=exif)
    return path


def test_facts_come_back_from_the_file(tmp_path):
    facts = exif_of(str(jpeg_with_exif(tmp_path / "a.jpg")))
    assert facts.taken == "2021-07-14T18:03:22"
    assert (facts.make, facts.model, facts.orientation) == ("Canon", "Canon EOS 80D", 6)
    assert abs(facts.latitude - -33.86) < 1e-6 and abs(facts.longitude - 151.21) < 1e-6
    assert exif_of((tmp_path / "a.jpg").read_bytes()) == facts


def test_no_exif_bad_dates_and_non_images(tmp_path):
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, "PNG")
    assert exif_of(plain.getvalue()) == NO_EXIF
    assert exif_of(b"not an image") == NO_EXIF
    assert exif_of(str(tmp_path / "missing.jpg")) == NO_EXIF
    assert exif_of(str(jpeg_with_exif(tmp_path / "b.jpg", taken="0000:00:00 00:00:00"))).taken is None


def test_camera_name_does_not_repeat_the_make():
    assert camera_name("Canon", "Canon EOS 80D") == "Canon EOS 80D"
    assert camera_name("NIKON CORPORATION", "NIKON D750") == "NIKON D750"
    assert camera_name("Apple", "iPhone 12") == "Apple iPhone 12"
    assert camera_name(None, None) is None and camera_name("Sony", None) == "Sony"


@pytest.mark.slow  # end-to-end: scan and two extraction runs
def test_extraction_stores_the_facts_and_main_back_fills_older_rows(tmp_path):
    import generator
    import main
    from db import connect
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    jpeg_with_exif(photos / "trip" / "a.jpg")
    Image.new("RGB", (40, 30), (10, 200, 10)).save(photos / "plain.png")
    db = tmp_path / "c.db"
    generator.scan(str(photos), str(db), progress=False)
    main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False)
    conn = connect(db)
    stored = dict((path, rest) for path, *rest in conn.execute(
        "SELECT path, taken, camera_make, camera_model, gps_lat, orientation, exif_read FROM images"))
    assert stored["trip/a.jpg"] == ["2021-07-14T18:03:22", "Canon", "Canon EOS 80D", -33.86, 6, 1]
    assert stored["plain.png"] == [None, None, None, None, None, 1]
    with conn:  # as a DB extracted before the EXIF columns: nothing read
        conn.execute("UPDATE images SET taken = NULL, camera_make = NULL, camera_model = NULL, gps_lat = NULL,"
                     " gps_lon = NULL, orientation = NULL, exif_read = NULL")
    conn.close()
    main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False)  # nothing pending: headers only
    conn = connect(db)
    again = conn.execute("SELECT taken, camera_model, exif_read FROM images WHERE path = 'trip/a.jpg'").fetchone()
    assert again == ("2021-07-14T18:03:22", "Canon EOS 80D", 1)
    assert conn.execute("SELECT COUNT(*) FROM images WHERE exif_read IS NULL").fetchone()[0] == 0
    conn.close()
