"""Cost of the image-shape refusal (issue 12, item 5): decode_image on the committed photos,
and how fast a too-small or too-elongated file is refused.

    .venv/bin/python bench/image_checks.py [--repeat 20]

Prints the median decode time per committed photo, and the median time to refuse each
degenerate size (the check reads the header only, so a refusal costs no pixel decoding and
no detector run).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from PIL import Image

from probity.engine.images import decode_image
from probity.errors import InvalidImage

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
LIMITS = {"max_bytes": 50_000_000, "max_pixels": 50_000_000}


def _median_ms(work: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print("decode (accepted)                 px        median ms")
    for photo in sorted(DATA.glob("*.jpg")) + sorted(DATA.glob("*.png")):
        data = photo.read_bytes()
        w, h = Image.open(io.BytesIO(data)).size
        ms = _median_ms(lambda d=data: decode_image(d, **LIMITS), args.repeat)
        print(f"{photo.name:30s} {w:5d}x{h:<5d} {ms:9.2f}")
    print("refused                           px        median ms")
    for size in [(1, 1), (8, 8), (1, 500), (16, 1000)]:
        buffer = io.BytesIO()
        Image.new("RGB", size, "grey").save(buffer, "PNG")
        data = buffer.getvalue()

        def refuse(d: bytes = data) -> None:
            try:
                decode_image(d, **LIMITS)
            except InvalidImage:
                return
            raise AssertionError("not refused")

        ms = _median_ms(refuse, args.repeat)
        print(f"{'synthetic':30s} {size[0]:5d}x{size[1]:<5d} {ms:9.3f}")


if __name__ == "__main__":
    main()
