"""Stage 3: 128-d descriptors from aligned chips, in batches.

dlib's ResNet takes a list of 150 × 150 chips in one call. Embedding the chips made by
:func:`probity.engine.align.align` gives exactly the descriptor
``compute_face_descriptor(full_image, shape)`` gives (measured: maximum difference 0.0 on every
face in tests/data and ../shared/faces), because that call cuts the same chip internally.
Batching saves the per-call overhead, not arithmetic: about 75–80 ms a face either way on this
2-core machine with the ``dlib-bin`` wheel (a source build with OpenBLAS is 4–5× faster).

Descriptors are returned as float32 (dlib computes float32 and hands back float64 copies); they
are not normalised: dlib's 0.6 Euclidean threshold is defined on them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from probity.engine.align import CHIP_SIZE
from probity.engine.models import MODEL, DlibModels
from probity.engine.types import AlignedFace

BATCH_SIZE = 32
"""Chips per ResNet call: bounds the network's scratch memory (about 40 MB a batch)."""


def embed(
    faces: Sequence[AlignedFace | NDArray[np.uint8]],
    models: DlibModels,
    *,
    jitters: int = 0,
) -> NDArray[np.float32]:
    """Descriptors of ``faces`` (aligned faces or bare 150 × 150 × 3 uint8 chips), shape
    (n, 128), in the same order; (0, 128) for no faces.

    ``jitters`` > 1 embeds that many randomly shifted/mirrored copies of each chip and averages
    them: slightly more robust, ``jitters`` times slower, and no longer bit-for-bit
    reproducible. 0 and 1 both mean a single pass.
    """
    chips = [face.chip if isinstance(face, AlignedFace) else face for face in faces]
    for index, chip in enumerate(chips):
        if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3) or chip.dtype != np.uint8:
            raise ValueError(
                f"chip {index} is {chip.shape} {chip.dtype}; the ResNet needs "
                f"({CHIP_SIZE}, {CHIP_SIZE}, 3) uint8 aligned as dlib.get_face_chip does"
            )
    out = np.zeros((len(chips), MODEL.dimension), dtype=np.float32)
    for start in range(0, len(chips), BATCH_SIZE):
        batch = [np.ascontiguousarray(c) for c in chips[start : start + BATCH_SIZE]]
        out[start : start + len(batch)] = models.describe(batch, jitters=jitters)
    return out
