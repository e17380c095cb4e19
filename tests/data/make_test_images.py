#!/usr/bin/python3
"""Generates the committed image test corpus (tests/data/bad_images/ and tests/data/exif/).

Run from anywhere: /usr/bin/python3 tests/data/make_test_images.py
Needs numpy and PIL (Debian python3-numpy, python3-pil) for generation only: the generated files are
committed, so the tests never need Python. Output is deterministic (fixed seed, no timestamps).
The expected outcome of every bad_images file is in bad_images/MANIFEST.tsv, checked by
tests/test_data_decode.cpp.
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "bad_images")
EXIF = os.path.join(HERE, "exif")
os.makedirs(BAD, exist_ok=True)
os.makedirs(EXIF, exist_ok=True)
rng = np.random.default_rng(1234)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def smooth_rgb(w, h):
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1))
    g = (y * 255 // max(h - 1, 1))
    b = ((x + y) * 127 // max(w + h - 2, 1))
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


manifest = []  # (file, expected, note); expected: "ok WxH" or "error <kind>"

rgb = Image.fromarray(smooth_rgb(40, 30), "RGB")
good_jpg = encode(rgb, "JPEG", quality=90)
good_png = encode(rgb, "PNG")

write(os.path.join(BAD, "empty.jpg"), b"")
manifest.append(("empty.jpg", "error not_an_image", "zero bytes"))
write(os.path.join(BAD, "text.jpg"), b"This is a text file that only pretends to be a JPEG.\n" * 4)
manifest.append(("text.jpg", "error not_an_image", "a text file named .jpg"))
write(os.path.join(BAD, "truncated.jpg"), good_jpg[: len(good_jpg) // 2])
manifest.append(("truncated.jpg", "error truncated", "first half of a baseline JPEG"))
write(os.path.join(BAD, "truncated_header.jpg"), good_jpg[:40])
manifest.append(("truncated_header.jpg", "error truncated", "cut inside the JPEG header segments"))
write(os.path.join(BAD, "truncated.png"), good_png[: len(good_png) // 2])
manifest.append(("truncated.png", "error truncated", "first half of a PNG"))
write(os.path.join(BAD, "truncated_header.png"), good_png[:20])
manifest.append(("truncated_header.png", "error truncated", "cut inside IHDR"))

# Decompression bomb: IHDR claims 16384x16384 RGB (768 MiB of pixels), one tiny IDAT.
ihdr = struct.pack(">IIBBBBB", 16384, 16384, 8, 2, 0, 0, 0)
bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")
write(os.path.join(BAD, "bomb_16384x16384.png"), bomb)
manifest.append(("bomb_16384x16384.png", "error too_large", "header claims 16384x16384, tiny body: refused before decoding"))
ihdr = struct.pack(">IIBBBBB", 20000, 1, 8, 2, 0, 0, 0)
wide = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")
write(os.path.join(BAD, "wide_20000x1.png"), wide)
manifest.append(("wide_20000x1.png", "error too_large", "a side over 16384"))
# Header fine (8000x8000 = 64 MP is under 100 MP) but the data stream is garbage.
ihdr = struct.pack(">IIBBBBB", 8000, 8000, 8, 2, 0, 0, 0)
garbage = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"\x78\x9c" + bytes(rng.integers(0, 256, 200, dtype=np.uint8))) + png_chunk(b"IEND", b"")
write(os.path.join(BAD, "corrupt_idat.png"), garbage)
manifest.append(("corrupt_idat.png", "error corrupt", "valid header, random IDAT bytes"))
# JPEG with flipped bytes in the entropy-coded data still decodes (JPEG has no checksum): only
# headers are checked for corruption.
bad_sof = bytearray(good_jpg)
i = bad_sof.find(b"\xff\xc0")
bad_sof[i + 5:i + 9] = b"\x00\x00\x00\x00"  # height and width 0
write(os.path.join(BAD, "zero_size.jpg"), bytes(bad_sof))
manifest.append(("zero_size.jpg", "error corrupt", "SOF0 says 0x0"))

write(os.path.join(BAD, "anim.gif"), encode(Image.fromarray(smooth_rgb(16, 16), "RGB").convert("P"), "GIF"))
manifest.append(("anim.gif", "error unsupported_format", "GIF is disabled (STBI_ONLY_*)"))
write(os.path.join(BAD, "image.tga"), encode(Image.fromarray(smooth_rgb(16, 16), "RGB"), "TGA"))
manifest.append(("image.tga", "error unsupported_format", "TGA is disabled"))
# Minimal PSD header (PIL cannot write PSD): signature, version 1, 3 channels, 16x16, 8 bit, RGB.
psd = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 16, 16, 8, 3) + b"\0" * 64
write(os.path.join(BAD, "image.psd"), psd)
manifest.append(("image.psd", "error unsupported_format", "PSD is disabled"))
write(os.path.join(BAD, "image.ppm"), encode(Image.fromarray(smooth_rgb(8, 8), "RGB"), "PPM"))
manifest.append(("image.ppm", "error unsupported_format", "PNM is disabled"))

# Images that must load (as RGB, 8 bit).
cmyk = Image.fromarray(smooth_rgb(24, 20), "RGB").convert("CMYK")
write(os.path.join(BAD, "cmyk.jpg"), encode(cmyk, "JPEG", quality=90))
manifest.append(("cmyk.jpg", "ok 24x20", "4-component (CMYK, Adobe) JPEG"))
write(os.path.join(BAD, "progressive.jpg"), encode(Image.fromarray(smooth_rgb(33, 17), "RGB"), "JPEG", quality=85, progressive=True))
manifest.append(("progressive.jpg", "ok 33x17", "progressive JPEG"))
write(os.path.join(BAD, "one_pixel.png"), encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"))
manifest.append(("one_pixel.png", "ok 1x1", "1x1 PNG (10,20,30)"))
write(os.path.join(BAD, "one_pixel.jpg"), encode(Image.new("RGB", (1, 1), (200, 100, 50)), "JPEG", quality=95))
manifest.append(("one_pixel.jpg", "ok 1x1", "1x1 JPEG"))
a16 = (smooth_rgb(12, 10)[:, :, 0].astype(np.uint16) * 257)
write(os.path.join(BAD, "gray16.png"), encode(Image.fromarray(a16.astype(np.uint16), "I;16"), "PNG"))
manifest.append(("gray16.png", "ok 12x10", "16-bit grayscale PNG, loaded as 8 bit"))
# 16-bit RGB PNG written by hand (PIL cannot): 6x4, rows filter 0.
w16, h16 = 6, 4
raw = b"".join(b"\0" + b"".join(struct.pack(">HHH", 65535 * x // (w16 - 1), 65535 * y // (h16 - 1), 32768) for x in range(w16)) for y in range(h16))
rgb16 = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w16, h16, 16, 2, 0, 0, 0)) + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
write(os.path.join(BAD, "rgb16.png"), rgb16)
manifest.append(("rgb16.png", "ok 6x4", "16-bit RGB PNG, loaded as 8 bit"))
gray = Image.fromarray(smooth_rgb(20, 10)[:, :, 0], "L")
write(os.path.join(BAD, "gray.png"), encode(gray, "PNG"))
manifest.append(("gray.png", "ok 20x10", "8-bit grayscale PNG, replicated to RGB"))
write(os.path.join(BAD, "gray.jpg"), encode(gray, "JPEG", quality=90))
manifest.append(("gray.jpg", "ok 20x10", "grayscale JPEG"))
rgba = np.concatenate([smooth_rgb(16, 8), np.full((8, 16, 1), 128, np.uint8)], axis=-1)
write(os.path.join(BAD, "rgba.png"), encode(Image.fromarray(rgba, "RGBA"), "PNG"))
manifest.append(("rgba.png", "ok 16x8", "RGBA PNG, alpha dropped"))
write(os.path.join(BAD, "gray_alpha.png"), encode(Image.fromarray(rgba[:, :, [0, 3]], "LA"), "PNG"))
manifest.append(("gray_alpha.png", "ok 16x8", "gray+alpha PNG"))
write(os.path.join(BAD, "palette.png"), encode(Image.fromarray(smooth_rgb(16, 8), "RGB").convert("P"), "PNG"))
manifest.append(("palette.png", "ok 16x8", "palette PNG"))
write(os.path.join(BAD, "image.bmp"), encode(Image.fromarray(smooth_rgb(9, 7), "RGB"), "BMP"))
manifest.append(("image.bmp", "ok 9x7", "24-bit BMP"))
write(os.path.join(BAD, "good.jpg"), good_jpg)
manifest.append(("good.jpg", "ok 40x30", "baseline JPEG"))
write(os.path.join(BAD, "good.png"), good_png)
manifest.append(("good.png", "ok 40x30", "RGB PNG"))

# Inputs found by scripts/run-fuzz.sh: committed as found (not generated), listed here.
FUZZ_FOUND = [
    ("fuzz_bad_dht.jpg", "error corrupt", "fuzzer: DHT with more than 256 symbols (stb 2.27 writes past its table)"),
    ("fuzz_bad_dht_header.jpg", "error corrupt", "fuzzer: the same in a DHT before SOF, after junk bytes (reached through stbi_info)"),
    ("fuzz_empty_idat.png", "error corrupt", "fuzzer: first IDAT chunk empty (stb 2.27 memcpy from a null buffer)"),
    ("fuzz_jpeg_uninit_huffman.jpg", "error corrupt", "fuzzer: scan uses a Huffman table it never defined (stb read uninitialised memory; the budget allocator now zeroes)"),
    ("fuzz_jpeg_shift_exponent.jpg", "error corrupt", "fuzzer: corrupt entropy data makes stb 2.27 shift by > 31 bits (UB, suppressed for stb only in fuzz/ubsan_stb.supp)"),
    ("fuzz_jpeg_dc_overflow.jpg", "error corrupt", "fuzzer: a progressive DC scan overflows stb 2.27's int DC prediction (UB, suppressed for stb only in fuzz/ubsan_stb.supp)"),
]
for row in FUZZ_FOUND:
    assert os.path.exists(os.path.join(BAD, row[0])), row[0]
    manifest.append(row)

with open(os.path.join(BAD, "MANIFEST.tsv"), "w") as f:
    f.write("# file\texpected\tnote   (generated by tests/data/make_test_images.py; checked by tests/test_data_decode.cpp)\n")
    f.write("# expected: 'ok WxH' (decodes to RGB of that size) or 'error KIND' (DecodeError::kind())\n")
    for row in manifest:
        f.write("\t".join(row) + "\n")

# EXIF orientations: the upright reference is 48 wide, 32 high, quadrants
# top-left red, top-right green, bottom-left blue, bottom-right white. orient_N.jpg stores the
# pixels so that applying orientation N gives the reference back.
ref = np.zeros((32, 48, 3), np.uint8)
ref[:16, :24] = (255, 0, 0)
ref[:16, 24:] = (0, 255, 0)
ref[16:, :24] = (0, 0, 255)
ref[16:, 24:] = (255, 255, 255)
ref_img = Image.fromarray(ref, "RGB")
T = Image.Transpose
store = {1: None, 2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE,
         6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270}
from PIL import ImageOps
for o, op in store.items():
    stored = ref_img if op is None else ref_img.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = o
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    write(os.path.join(EXIF, f"orient_{o}.jpg"), data)
    back = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")).astype(int)
    assert back.shape == ref.shape and np.abs(back - ref).mean() < 8, o
print("wrote", len(manifest), "corpus files and 8 EXIF images")
