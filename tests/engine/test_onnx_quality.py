"""The quality floors on YuNet faces: the measured cases of engine/onnx_quality.py's table."""

from __future__ import annotations

from pathlib import Path

from probity.domain.faces import PROBE_QUALITY_FLOOR, QualityFloor
from probity.engine.images import read_image_file
from probity.engine.quality import quality_reasons
from tests.engine.sface import default_engine


def faces(path: Path):  # type: ignore[no-untyped-def]
    image = read_image_file(path, max_bytes=10**8, max_pixels=10**8)
    return default_engine().analyse(image)


def test_every_real_face_passes_both_floors(data_dir: Path) -> None:
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "32bit.png"):
        (face,) = faces(data_dir / name)
        assert quality_reasons(face.quality, QualityFloor()) == [], name
        assert quality_reasons(face.quality, PROBE_QUALITY_FLOOR) == [], name


def test_the_flag_boxes_are_refused_by_both_floors_for_their_score(
    shared_faces_dir: Path,
) -> None:
    found = faces(shared_faces_dir / "joe_biden_1.jpg")
    weak = [f for f in found if f.quality.detector_confidence < 0.9]
    assert len(weak) == 2
    for face in weak:
        for floor in (QualityFloor(), PROBE_QUALITY_FLOOR):
            reasons = " ".join(quality_reasons(face.quality, floor))
            assert "detector confidence" in reasons and "(YUNET)" in reasons


def test_the_profile_is_a_probe_but_not_a_gallery_image(shared_faces_dir: Path) -> None:
    (face,) = faces(shared_faces_dir / "alexander_gerst_2_profile.jpg")
    gallery = quality_reasons(face.quality, QualityFloor())
    assert len(gallery) == 1 and gallery[0].startswith("head turned: yaw ratio -0.5")
    assert quality_reasons(face.quality, PROBE_QUALITY_FLOOR) == []


def test_a_blurred_face_is_refused_for_sharpness(data_dir: Path) -> None:
    """obama.jpg blurred with a Gaussian of radius 6: sharpness below the gallery's 20."""
    import numpy as np
    from PIL import Image, ImageFilter

    from probity.engine.types import DecodedImage

    image = read_image_file(data_dir / "obama.jpg", max_bytes=10**8, max_pixels=10**8)
    blurred = Image.fromarray(image.pixels).filter(ImageFilter.GaussianBlur(6))
    pixels = np.ascontiguousarray(np.asarray(blurred, dtype=np.uint8))
    (face,) = default_engine().analyse(DecodedImage(pixels=pixels, sha256="", format="JPEG"))
    reasons = quality_reasons(face.quality, QualityFloor())
    assert any(r.startswith("sharpness") and "blurred" in r for r in reasons)
