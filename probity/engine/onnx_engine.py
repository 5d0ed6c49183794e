"""``OnnxEngine``: YuNet detection + an ONNX recogniser, the default for new galleries.

``analyse`` runs the stages in order: detect (YuNet at a bounded input size; or dlib's HOG /
CNN when the caller asks for them) → align each face to the recogniser's five-point template →
assess quality → embed all chips in one batch. Nothing is refused here; the services compare
each face's quality with the gallery's floor so a refusal can say why.

**Which detector, and the dlib fallback.** ``DetectorMode.AUTO`` and ``YUNET`` run YuNet only,
so a photo without a face costs milliseconds, not the seconds dlib's CNN takes. ``HOG`` and
``CNN`` run dlib's detectors (the investigator asks for them when YuNet found nothing, say on a
very low-resolution face); their boxes carry no landmarks the recogniser can use, so YuNet runs
again on the box's neighbourhood, enlarged, to place the five points, and each face reports the
detector that found it. A dlib box in which YuNet finds no face is returned as a face that
cannot be aligned (``describe`` gives None for it) rather than embedded from guessed points.

**Enrolment and search give the same template.** Both run exactly this path on the same
decoded pixels (no enrolment-only rescaling as on the dlib path's HOG budget), so the same
photo gives the same descriptor, bit for bit.

One engine may be shared by threads: YuNet holds a lock, ONNX Runtime sessions are
thread-safe, and dlib's models have their own locks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from probity.domain.faces import DetectorKind, DetectorMode, FaceBox, ModelVersion
from probity.engine.detect import detect as dlib_detect
from probity.engine.models import DlibModels
from probity.engine.onnx_quality import assess_quality5
from probity.engine.onnx_recogniser import OnnxRecogniser
from probity.engine.types import AnalysedFace, DecodedImage, Detection
from probity.engine.yunet import YuNetDetector, YuNetFace

LANDMARK_CONTEXT = 0.6
"""When YuNet places the points in a dlib box, it sees the box grown by this fraction of its
size on every side (YuNet needs the whole head and some background to fire)."""

LANDMARK_SIDE = 320
"""...scaled so its longest side is this many pixels (faces then fill YuNet's sweet spot)."""


class OnnxEngine:
    """Face analysis with YuNet and the recogniser ``recogniser``; dlib's detectors on demand.

    ``dlib_models`` (shared with the dlib engine, loaded only when used) serves the HOG and CNN
    modes; ``cnn_max_side`` bounds the image the CNN sees, as on the dlib path.
    """

    def __init__(
        self,
        recogniser: OnnxRecogniser,
        detector: YuNetDetector,
        *,
        dlib_models: DlibModels | None = None,
        cnn_max_side: int = 1000,
        detect_max_side: int = 1600,
    ) -> None:
        self.recogniser = recogniser
        self.detector = detector
        self.dlib_models = dlib_models if dlib_models is not None else DlibModels()
        self.cnn_max_side = cnn_max_side
        self.detect_max_side = detect_max_side

    @property
    def model(self) -> ModelVersion:
        return self.recogniser.spec.model

    def warm_up(self) -> None:
        """Verify the files and create the sessions now rather than on the first photo."""
        self.detector.load()
        self.recogniser.load()

    def detect(self, image: DecodedImage, mode: DetectorMode | None = None) -> list[Detection]:
        """Faces in ``image``, left to right: YuNet's (AUTO, YUNET) or dlib's (HOG, CNN)."""
        if mode in (DetectorMode.HOG, DetectorMode.CNN):
            found = dlib_detect(
                image,
                self.dlib_models,
                mode=mode,
                cnn_max_side=self.cnn_max_side,
                detect_max_side=self.detect_max_side,
            )
        else:
            found = [_detection(face) for face in self.detector.detect(image.pixels)]
        return sorted(found, key=lambda d: (d.box.left, d.box.top))

    def analyse(
        self,
        image: DecodedImage,
        mode: DetectorMode | None = None,
        *,
        hog_pixel_budget: int | None = None,
    ) -> list[AnalysedFace]:
        """Every face in ``image`` that can be aligned, left to right, with its quality and
        L2-normalised descriptor. ``hog_pixel_budget`` is a dlib-path setting, ignored."""
        faces = self.describe(image, self.detect(image, mode))
        return [face for face in faces if face is not None]

    def describe(
        self, image: DecodedImage, detections: Sequence[Detection]
    ) -> list[AnalysedFace | None]:
        """Align, assess and embed ``detections`` (same order); None where no five points
        can be placed (a dlib box in which YuNet finds no face)."""
        placed: list[tuple[Detection, tuple[tuple[float, float], ...]] | None] = []
        for detection in detections:
            points = detection.landmarks or self._landmarks_in(image, detection.box)
            placed.append(None if points is None else (detection, points))
        chips = [self.recogniser.align(image.pixels, p[1]) for p in placed if p is not None]
        vectors = iter(self.recogniser.embed(chips) if chips else ())
        chip_iter = iter(chips)
        faces: list[AnalysedFace | None] = []
        for item in placed:
            if item is None:
                faces.append(None)
                continue
            detection, points = item
            chip = next(chip_iter)
            quality = assess_quality5(
                landmarks=points,
                box_width=detection.box.width,
                score=detection.confidence,
                chip=chip,
                detector=detection.detector,
            )
            faces.append(
                AnalysedFace(
                    box=detection.box,
                    quality=quality,
                    descriptor=next(vectors),
                    detection=detection,
                )
            )
        return faces

    def _landmarks_in(
        self, image: DecodedImage, box: FaceBox
    ) -> tuple[tuple[float, float], ...] | None:
        """YuNet's five points for a face another detector boxed: YuNet on the box's
        neighbourhood (grown by LANDMARK_CONTEXT, scaled to LANDMARK_SIDE), the detection
        whose centre lies inside the box, mapped back to full resolution."""
        height, width = image.pixels.shape[:2]
        grow_x, grow_y = box.width * LANDMARK_CONTEXT, box.height * LANDMARK_CONTEXT
        left = max(0, int(box.left - grow_x))
        top = max(0, int(box.top - grow_y))
        right = min(width, int(box.left + box.width + grow_x))
        bottom = min(height, int(box.top + box.height + grow_y))
        if right - left < 8 or bottom - top < 8:
            return None
        crop = np.ascontiguousarray(image.pixels[top:bottom, left:right])
        scale = LANDMARK_SIDE / max(crop.shape[:2])
        if scale > 1.0:
            import cv2

            size = (round(crop.shape[1] * scale), round(crop.shape[0] * scale))
            crop = np.ascontiguousarray(cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC))
        else:
            scale = 1.0
        centre_x, centre_y = box.left + box.width / 2, box.top + box.height / 2
        for face in self.detector.detect(crop):
            x, y, w, h = (v / scale for v in face.box)
            if left + x <= centre_x <= left + x + w and top + y <= centre_y <= top + y + h:
                return tuple((left + px / scale, top + py / scale) for px, py in face.landmarks)
        return None


def _detection(face: YuNetFace) -> Detection:
    x, y, w, h = face.box
    left, top = round(x), round(y)
    box = FaceBox(left=left, top=top, width=round(x + w) - left, height=round(y + h) - top)
    return Detection(
        box=box, confidence=face.score, detector=DetectorKind.YUNET, landmarks=face.landmarks
    )
