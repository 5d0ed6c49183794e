"""The default :class:`~probity.engine.types.FaceEngine`: dlib's detectors, landmarks and ResNet.

``DlibEngine.analyse`` strings the stages together: detect → align each face → assess quality
→ embed all chips in one batch. It does not refuse anything: every detected face comes back
with its quality, and the services compare that with the gallery's floor
(:func:`probity.engine.quality.quality_reasons`) so a refusal can say why.

Constructing an engine is free; the models load on first use (about 0.6 s, or call
:meth:`DlibEngine.warm_up`). One engine may be shared by threads.
"""

from __future__ import annotations

from collections.abc import Sequence

from probity.config import EngineSettings
from probity.domain.faces import DetectorMode, ModelVersion
from probity.engine.align import align
from probity.engine.detect import detect
from probity.engine.embed import embed
from probity.engine.models import MODEL, DlibModels
from probity.engine.quality import assess_quality
from probity.engine.types import AnalysedFace, DecodedImage, Detection


class DlibEngine:
    """dlib face analysis configured by :class:`EngineSettings` (detector mode, HOG upsampling,
    the longest sides the detectors see, embedding jitters)."""

    def __init__(self, settings: EngineSettings, *, models: DlibModels | None = None) -> None:
        self.settings = settings
        self.models = models if models is not None else DlibModels()

    @property
    def model(self) -> ModelVersion:
        return MODEL

    def warm_up(self) -> None:
        """Load and verify every model now rather than on the first photo."""
        self.models.load_all()

    def analyse(
        self,
        image: DecodedImage,
        mode: DetectorMode | None = None,
        *,
        hog_pixel_budget: int | None = None,
    ) -> list[AnalysedFace]:
        """Every face in ``image``, left to right, with its quality and 128-d descriptor.

        ``mode`` overrides the configured detector for this call (for instance CNN for a probe
        where HOG found nothing the user can pick). ``hog_pixel_budget`` caps the pixels HOG
        scans, which is cheaper on large photos (enrolment uses it: gallery images are
        portraits); None uses ``hog_upsample`` (faces from about 40 px at any photo size).
        """
        settings = self.settings
        detections = detect(
            image,
            self.models,
            mode=mode or settings.detector,
            hog_upsample=settings.hog_upsample,
            detect_max_side=settings.detect_max_side,
            cnn_max_side=settings.cnn_max_side,
            hog_pixel_budget=hog_pixel_budget,
        )
        return [face for face in self.describe(image, detections) if face is not None]

    def describe(
        self, image: DecodedImage, detections: Sequence[Detection]
    ) -> list[AnalysedFace | None]:
        """Landmarks (dlib's shape predictor, from each box), quality and descriptors of
        ``detections``, whichever detector found them, in the order given."""
        aligned = [align(image, detection, self.models) for detection in detections]
        descriptors = embed(aligned, self.models, jitters=self.settings.embed_jitters)
        faces: list[AnalysedFace | None] = [
            AnalysedFace(
                box=face.detection.box,
                quality=assess_quality(face),
                descriptor=vector,
                detection=face.detection,
            )
            for face, vector in zip(aligned, descriptors, strict=True)
        ]
        return faces
