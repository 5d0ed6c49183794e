"""Decoding uploads: what is accepted, and the precise reason for everything refused."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from probity.engine.images import decode_image, read_image_file, register_heif
from probity.engine.types import DecodedImage
from probity.errors import ImageTooLarge, InvalidImage, InvalidInput, ProbityError

Decode = Callable[[bytes], DecodedImage]


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of width × height, all black: a few kB of zlib that would
    decode to width × height bytes in Pillow. Built row by row, so making it is cheap."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    block = row * 1000
    data = b"".join(packer.compress(block) for _ in range(height // 1000))
    data += packer.compress(row * (height % 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_jpeg_decodes_to_rgb_with_sha256_of_the_file(decode: Decode, data_dir: Path) -> None:
    data = (data_dir / "obama.jpg").read_bytes()
    image = decode(data)
    assert (image.width, image.height, image.format) == (910, 1137, "JPEG")
    assert image.pixels.shape == (1137, 910, 3)
    assert image.pixels.dtype == np.uint8
    assert not image.pixels.flags.writeable  # shared between stages: nobody may scribble
    assert image.sha256 == hashlib.sha256(data).hexdigest()


def test_zero_bytes_refused(decode: Decode) -> None:
    with pytest.raises(InvalidImage, match=r"empty \(0 bytes\)"):
        decode(b"")


def test_random_bytes_are_not_an_image(decode: Decode) -> None:
    with pytest.raises(InvalidImage, match="not a recognised image format"):
        decode(os.urandom(4096))


def test_truncated_jpeg_refused(decode: Decode, data_dir: Path) -> None:
    data = (data_dir / "obama.jpg").read_bytes()
    with pytest.raises(InvalidImage, match="truncated"):
        decode(data[: len(data) // 2])


def test_truncated_png_refused(decode: Decode, data_dir: Path) -> None:
    data = (data_dir / "coffee.png").read_bytes()
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        decode(data[: len(data) // 2])


def test_corrupt_png_refused(decode: Decode, data_dir: Path) -> None:
    data = bytearray((data_dir / "coffee.png").read_bytes())
    data[5000:9000] = bytes(4000)  # breaks a chunk's length, tag and CRC
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        decode(bytes(data))


def test_too_many_bytes_refused_naming_the_limit(data_dir: Path) -> None:
    data = (data_dir / "obama.jpg").read_bytes()
    with pytest.raises(ImageTooLarge, match=r"279,922 bytes; the limit is 100,000 bytes"):
        decode_image(data, max_bytes=100_000, max_pixels=50_000_000)


def test_file_too_large_refused_before_reading(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes((data_dir / "obama.jpg").read_bytes())
    with pytest.raises(ImageTooLarge, match=r"big\.jpg is 279,922 bytes"):
        read_image_file(path, max_bytes=1000, max_pixels=50_000_000)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        read_image_file(tmp_path / "nope.jpg", max_bytes=1000, max_pixels=1000)


def test_too_many_pixels_refused_from_the_header(data_dir: Path) -> None:
    data = (data_dir / "obama.jpg").read_bytes()
    with pytest.raises(
        ImageTooLarge, match=r"910 × 1137 = 1,034,670 pixels; the limit is 1,000,000"
    ):
        decode_image(data, max_bytes=10**9, max_pixels=1_000_000)


def test_decompression_bomb_refused_fast(decode: Decode) -> None:
    bomb = png_bomb(20_000, 20_000)  # 400 million pixels in about 50 kB
    assert len(bomb) < 200_000
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge, match=r"400,000,000 pixels .* the limit is 50,000,000"):
        decode(bomb)
    assert time.perf_counter() - started < 0.5


def test_bomb_below_pillows_own_guard_refused_by_ours(decode: Decode) -> None:
    bomb = png_bomb(8_000, 8_000)  # 64 M: above our 50 M default, below Pillow's 89 M warning
    with pytest.raises(ImageTooLarge, match=r"8000 × 8000 = 64,000,000 pixels"):
        decode(bomb)


def test_formats_outside_the_allow_list_refused(decode: Decode) -> None:
    ppm = b"P6\n2 2\n255\n" + bytes(12)  # Pillow reads PPM, but we do not accept it
    with pytest.raises(InvalidImage, match="not a recognised image format"):
        decode(ppm)


def test_truncated_images_setting_must_stay_off(
    decode: Decode, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ProbityError, match="LOAD_TRUNCATED_IMAGES"):
        decode((data_dir / "obama.jpg").read_bytes())


def test_rgba_png_becomes_rgb(decode: Decode, data_dir: Path) -> None:
    image = decode((data_dir / "32bit.png").read_bytes())
    assert image.format == "PNG"
    assert image.pixels.shape == (1200, 626, 3)


def test_transparency_composited_onto_white(decode: Decode) -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (16, 16), (255, 0, 0, 0)).save(buffer, "PNG")
    assert decode(buffer.getvalue()).pixels[0, 0].tolist() == [255, 255, 255]


def test_16_bit_grey_scaled_not_clipped(decode: Decode) -> None:
    buffer = io.BytesIO()
    Image.new("I;16", (16, 16), 32896).save(buffer, "PNG")  # 50 % grey in 16 bits
    assert decode(buffer.getvalue()).pixels[0, 0].tolist() == [128, 128, 128]


def test_cmyk_jpeg_becomes_rgb(decode: Decode) -> None:
    buffer = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 0, 0)).save(buffer, "JPEG")
    assert decode(buffer.getvalue()).pixels[0, 0].tolist() == [255, 0, 255]


def test_exif_orientation_applied(decode: Decode, data_dir: Path) -> None:
    original = decode((data_dir / "obama.jpg").read_bytes())
    sideways = Image.fromarray(original.pixels).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", quality=95, exif=exif)
    upright = decode(buffer.getvalue())
    assert (upright.width, upright.height) == (original.width, original.height)
    difference = np.abs(upright.pixels.astype(int) - original.pixels.astype(int)).mean()
    assert difference < 3  # JPEG re-encoding noise only


def test_webp_decodes(decode: Decode) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 200, 0)).save(buffer, "WEBP", lossless=True)
    image = decode(buffer.getvalue())
    assert (image.format, image.pixels[0, 0].tolist()) == ("WEBP", [0, 200, 0])


def test_heic_decodes_when_pillow_heif_is_installed(decode: Decode) -> None:
    pytest.importorskip("pillow_heif")
    assert register_heif()  # so that Pillow can *write* the HEIC test file
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (0, 200, 0)).save(buffer, "HEIF")
    image = decode(buffer.getvalue())
    assert image.format == "HEIF"
    assert (image.width, image.height) == (64, 48)


def test_jpeg_still_decodes_without_the_optional_heif_plugin(
    decode: Decode, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_heif()
    monkeypatch.delitem(Image.OPEN, "HEIF", raising=False)
    monkeypatch.delitem(Image.OPEN, "AVIF", raising=False)
    assert decode((data_dir / "obama.jpg").read_bytes()).format == "JPEG"


def test_upright_size_swaps_for_quarter_turn_orientations() -> None:
    """The page frames face boxes with the upright size, read from the header alone."""
    import io

    from PIL import Image

    from probity.engine.crops import upright_jpeg
    from probity.engine.images import upright_size

    for orientation, expected in ((1, (40, 30)), (6, (30, 40)), (8, (30, 40)), (3, (40, 30))):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buffer = io.BytesIO()
        Image.new("RGB", (40, 30), "red").save(buffer, format="JPEG", exif=exif.tobytes())
        data = buffer.getvalue()
        assert upright_size(data) == expected
        shown = upright_jpeg(data, max_bytes=10**6, max_pixels=10**6)
        assert Image.open(io.BytesIO(shown)).size == expected


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (8, 8), (15, 200), (1, 500)])
def test_images_too_small_for_a_face_are_refused_before_decoding(size: tuple[int, int]) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", size, "grey").save(buffer, "PNG")
    with pytest.raises(InvalidImage, match="shorter side must be at least 16 px"):
        decode_image(buffer.getvalue(), max_bytes=10_000_000, max_pixels=10_000_000)


def test_an_absurdly_elongated_image_is_refused() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 1000), "grey").save(buffer, "PNG")
    with pytest.raises(InvalidImage, match="at most 25:1"):
        decode_image(buffer.getvalue(), max_bytes=10_000_000, max_pixels=10_000_000)
    buffer = io.BytesIO()
    Image.new("RGB", (16, 400), "grey").save(buffer, "PNG")  # 25:1 is still accepted
    assert decode_image(buffer.getvalue(), max_bytes=10**7, max_pixels=10**7).pixels.shape == (
        400,
        16,
        3,
    )
