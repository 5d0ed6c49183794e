"""The biometric engine: decode, detect, align, embed, assess quality.

Each stage is a plain function taking the previous stage's output; ``FaceEngine`` strings
them together. dlib objects never leave this package: callers see numpy arrays and domain
values. Models load lazily on first use, never at import time.

    images.py       decode_image, read_image_file: bytes → DecodedImage, or a precise refusal
    models.py       MODEL, DlibModels: the weights, loaded lazily; the only code calling dlib
    detect.py       detect: DecodedImage → [Detection] (HOG, CNN, or HOG then CNN)
    align.py        align: Detection → AlignedFace (5 landmarks, 150 px chip, landmark drift)
    embed.py        embed: [AlignedFace] → (n, 128) float32 descriptors, batched
    quality.py      assess_quality → Quality; quality_reasons(quality, floor) → [str]
    dlib_engine.py  DlibEngine: the FaceEngine the services use
    thresholds.py   threshold_for_fmr, distance_to_score: false-match rate → distance
    calibrate.py    python -m probity.engine.calibrate: the quality table behind the floors

Importing this package imports nothing heavy (no dlib, no Pillow): import the module you need.
"""
