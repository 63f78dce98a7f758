"""int8 network (IR_EMBED_PRECISION=int8): ONNX Runtime static quantisation of the float32 ONNX model.

Calibrated on a fixed set of real photos that pip packages ship (scikit-image's and
matplotlib's samples, their quarters and mirror images), so that the int8 model depends only on
the weights and the settings below, never on the collection: two collections, or a collection
and its queries, always get the same int8 network. Only imported to build an int8 model once.
"""
from __future__ import annotations

import importlib.util
import io
import os
import tempfile

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image, ImageOps

from features.decode import decode
from features.framing import centre_crop
from features.network.cache import INPUT  # the settings below are cache.INT8_SETTINGS

# (package, file inside it): colour photographs, no two of one scene.
CALIBRATION_PHOTOS = (
    ("skimage", "data/astronaut.png"), ("skimage", "data/chelsea.png"), ("skimage", "data/coffee.png"),
    ("skimage", "data/rocket.jpg"), ("skimage", "data/motorcycle_left.png"), ("skimage", "data/hubble_deep_field.jpg"),
    ("skimage", "data/retina.jpg"), ("skimage", "data/ihc.png"), ("skimage", "data/color.png"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
)


def calibration_crops(size: int = 224) -> np.ndarray:
    """uint8 (n, size, size, 3) centre crops decoded as main.py decodes: each photo, its quarters,
    mirrored. Centre crops whatever the DB's framing: calibration needs only realistic pixel
    statistics, and one calibration per network keeps one int8 file per network."""
    crops = []
    for package, relative in CALIBRATION_PHOTOS:
        path = os.path.join(os.path.dirname(importlib.util.find_spec(package).origin), relative)
        with Image.open(path) as source:
            photo = source.convert("RGB")
        w, h = photo.width // 2, photo.height // 2
        for box in (None, (0, 0, w, h), (w, 0, 2 * w, h), (0, h, w, 2 * h), (w, h, 2 * w, 2 * h)):
            part = photo if box is None else photo.crop(box)
            for picture in (part, ImageOps.mirror(part)):
                data = io.BytesIO()
                picture.save(data, "JPEG", quality=90)
                crops.append(centre_crop(decode(data.getvalue(), 256), size))
    return np.stack(crops)


class _Crops(CalibrationDataReader):
    def __init__(self, crops: np.ndarray, batch: int = 10):
        self._batches = iter([crops[i:i + batch] for i in range(0, len(crops), batch)])

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {INPUT: batch}


def quantize(float32_model: bytes, out_path: str, crops: np.ndarray | None = None, size: int = 224) -> None:
    """Write the int8 version of ``float32_model`` (ONNX bytes) to ``out_path``."""
    with tempfile.TemporaryDirectory(prefix="onnx-int8-") as folder:
        source, prepared = os.path.join(folder, "float32.onnx"), os.path.join(folder, "prepared.onnx")
        with open(source, "wb") as fh:
            fh.write(float32_model)
        quant_pre_process(source, prepared)  # shape inference and graph fusions, as ORT recommends
        quantize_static(prepared, out_path, _Crops(calibration_crops(size) if crops is None else crops),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
