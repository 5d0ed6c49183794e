"""Detection on real photos: HOG, the CNN fallback, downscaling, EXIF, several faces."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from probity.domain.faces import PROBE_QUALITY_FLOOR, DetectorKind, DetectorMode, FaceBox
from probity.engine.detect import detect, downscale, scale_box
from probity.engine.dlib_engine import DlibEngine
from probity.engine.quality import quality_reasons
from probity.engine.types import AnalysedFace, DecodedImage

Load = Callable[[Path], DecodedImage]
Analyse = Callable[..., list[AnalysedFace]]

OBAMA_BOX = FaceBox(left=349, top=142, width=269, height=268)  # HOG on obama.jpg, full size


def near(a: FaceBox, b: FaceBox, tolerance: int) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a.as_list(), b.as_list(), strict=True))


def test_hog_finds_obama(engine: DlibEngine, load_photo: Load, data_dir: Path) -> None:
    found = detect(load_photo(data_dir / "obama.jpg"), engine.models, mode=DetectorMode.HOG)
    assert len(found) == 1
    assert found[0].detector is DetectorKind.HOG
    assert found[0].confidence > 1.5
    assert near(found[0].box, OBAMA_BOX, 2)


def test_downscaled_detection_maps_boxes_to_full_resolution(
    engine: DlibEngine, load_photo: Load, data_dir: Path
) -> None:
    image = load_photo(data_dir / "obama.jpg")
    found = detect(image, engine.models, mode=DetectorMode.HOG, detect_max_side=568)
    assert len(found) == 1
    assert near(found[0].box, OBAMA_BOX, 15)  # half the resolution, same face


@pytest.mark.parametrize("name", ["coffee.png", "rocket.jpg", "chelsea.png"])
def test_no_face_in_photos_without_people(
    analyse_photo: Analyse, data_dir: Path, name: str
) -> None:
    assert analyse_photo(data_dir / name) == []  # AUTO: HOG and then the CNN found nothing


def test_rgba_png_finds_the_same_face_as_its_jpeg(analyse_photo: Analyse, data_dir: Path) -> None:
    (rgba,) = analyse_photo(data_dir / "32bit.png")
    (jpeg,) = analyse_photo(data_dir / "obama2.jpg")
    assert near(rgba.box, jpeg.box, 3)
    assert np.linalg.norm(rgba.descriptor - jpeg.descriptor) < 0.1


def test_exif_rotated_photo_gives_the_same_face(
    engine: DlibEngine, decode: Callable[[bytes], DecodedImage], data_dir: Path
) -> None:
    original = Image.open(data_dir / "obama.jpg")
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90° counter-clockwise to display"
    buffer = io.BytesIO()
    original.transpose(Image.Transpose.ROTATE_270).save(buffer, "JPEG", quality=95, exif=exif)
    image = decode(buffer.getvalue())
    assert (image.width, image.height) == original.size
    (face,) = engine.analyse(image, DetectorMode.HOG)
    assert near(face.box, OBAMA_BOX, 4)


def test_two_faces_left_to_right(
    engine: DlibEngine, analyse_photo: Analyse, load_photo: Load, data_dir: Path
) -> None:
    obama = load_photo(data_dir / "obama.jpg").pixels
    biden = load_photo(data_dir / "biden.jpg").pixels
    canvas = np.full(
        (max(obama.shape[0], biden.shape[0]), obama.shape[1] + biden.shape[1], 3), 255, np.uint8
    )
    canvas[: obama.shape[0], : obama.shape[1]] = obama
    canvas[: biden.shape[0], obama.shape[1] :] = biden
    probe = DecodedImage(pixels=canvas, sha256="pasted", format="PNG")

    faces = engine.analyse(probe)
    assert len(faces) == 2
    left, right = faces
    assert left.box.left < obama.shape[1] <= right.box.left
    (obama_face,) = analyse_photo(data_dir / "obama.jpg")
    (biden_face,) = analyse_photo(data_dir / "biden.jpg")
    assert np.linalg.norm(left.descriptor - obama_face.descriptor) < 0.2
    assert np.linalg.norm(right.descriptor - biden_face.descriptor) < 0.2


def test_gerst_profile_found_by_the_cnn_fallback(
    engine: DlibEngine, analyse_photo: Analyse, load_photo: Load, shared_faces_dir: Path
) -> None:
    path = shared_faces_dir / "alexander_gerst_2_profile.jpg"
    assert detect(load_photo(path), engine.models, mode=DetectorMode.HOG) == []
    (face,) = analyse_photo(path)
    assert face.quality.detector is DetectorKind.CNN
    assert face.quality.detector_confidence > 1.0
    assert quality_reasons(face.quality, PROBE_QUALITY_FLOOR) == []  # searchable as a probe


def test_gerst_profile_matches_his_portrait(analyse_photo: Analyse, shared_faces_dir: Path) -> None:
    (profile,) = analyse_photo(shared_faces_dir / "alexander_gerst_2_profile.jpg")
    (portrait,) = analyse_photo(shared_faces_dir / "alexander_gerst_1.jpg")
    assert np.linalg.norm(profile.descriptor - portrait.descriptor) < 0.6


def test_morgan_and_hague_both_found(analyse_photo: Analyse, shared_faces_dir: Path) -> None:
    faces = analyse_photo(shared_faces_dir / "multi_morgan_hague.jpg")
    assert len(faces) == 2
    assert faces[0].box.left < faces[1].box.left
    (morgan,) = analyse_photo(shared_faces_dir / "andrew_morgan_1.jpg")
    (hague,) = analyse_photo(shared_faces_dir / "nick_hague_1.jpg")
    assert np.linalg.norm(faces[0].descriptor - morgan.descriptor) < 0.6  # Morgan on the left
    assert np.linalg.norm(faces[1].descriptor - hague.descriptor) < 0.6


def test_downscale_and_scale_box() -> None:
    pixels = np.zeros((1000, 3000, 3), np.uint8)
    small, factor = downscale(pixels, 1500)
    assert small.shape == (500, 1500, 3)
    assert factor == 0.5
    assert downscale(pixels, 3000)[0] is pixels
    assert scale_box(FaceBox(10, 20, 30, 40), 2.0) == FaceBox(20, 40, 60, 80)
