"""Descriptors: known answers on real photos, batching, and agreement with dlib's own path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from probity.domain.faces import DetectorMode
from probity.engine.align import align
from probity.engine.detect import detect
from probity.engine.dlib_engine import DlibEngine
from probity.engine.embed import embed
from probity.engine.models import MODEL
from probity.engine.types import AlignedFace, AnalysedFace, DecodedImage

Analyse = Callable[..., list[AnalysedFace]]
Load = Callable[[Path], DecodedImage]


def descriptor(analyse_photo: Analyse, path: Path) -> np.ndarray:
    (face,) = analyse_photo(path)
    return face.descriptor


def test_descriptor_shape_and_type(analyse_photo: Analyse, data_dir: Path) -> None:
    vector = descriptor(analyse_photo, data_dir / "obama.jpg")
    assert vector.shape == (MODEL.dimension,)
    assert vector.dtype == np.float32


def test_same_person_closer_than_different_people(analyse_photo: Analyse, data_dir: Path) -> None:
    obama = descriptor(analyse_photo, data_dir / "obama.jpg")
    obama2 = descriptor(analyse_photo, data_dir / "obama2.jpg")
    biden = descriptor(analyse_photo, data_dir / "biden.jpg")
    assert np.linalg.norm(obama - obama2) < 0.6
    assert np.linalg.norm(obama - biden) > 0.6


def aligned_faces(engine: DlibEngine, load_photo: Load, paths: list[Path]) -> list[AlignedFace]:
    faces = []
    for path in paths:
        image = load_photo(path)
        faces += [
            align(image, d, engine.models)
            for d in detect(image, engine.models, mode=DetectorMode.HOG)
        ]
    return faces


def test_batched_equals_one_by_one(engine: DlibEngine, load_photo: Load, data_dir: Path) -> None:
    faces = aligned_faces(
        engine, load_photo, [data_dir / n for n in ("obama.jpg", "biden.jpg", "astronaut.png")]
    )
    assert len(faces) == 4
    batched = embed(faces, engine.models)
    singles = np.stack([embed([face], engine.models)[0] for face in faces])
    assert batched.shape == (4, MODEL.dimension)
    np.testing.assert_allclose(batched, singles, atol=1e-5)
    np.testing.assert_allclose(embed([f.chip for f in faces], engine.models), batched, atol=1e-6)


def test_chips_give_dlibs_full_image_descriptor(
    engine: DlibEngine, load_photo: Load, data_dir: Path
) -> None:
    import dlib

    image = load_photo(data_dir / "obama2.jpg")
    (face,) = aligned_faces(engine, load_photo, [data_dir / "obama2.jpg"])
    box = face.detection.box
    rect = dlib.rectangle(box.left, box.top, box.left + box.width - 1, box.top + box.height - 1)
    shape = dlib.full_object_detection(
        rect, [dlib.point(int(x), int(y)) for x, y in face.landmarks]
    )
    reference = np.array(engine.models.resnet.compute_face_descriptor(image.pixels, shape))
    np.testing.assert_allclose(embed([face], engine.models)[0], reference, atol=1e-4)


def test_no_faces_give_an_empty_matrix(engine: DlibEngine) -> None:
    assert embed([], engine.models).shape == (0, MODEL.dimension)


def test_wrong_chip_shape_refused(engine: DlibEngine) -> None:
    with pytest.raises(ValueError, match=r"\(150, 150, 3\) uint8"):
        embed([np.zeros((100, 100, 3), np.uint8)], engine.models)
