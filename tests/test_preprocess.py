"""Preprocessing against Pillow / a torchvision-style PIL + numpy reference.

Tolerance: the resize is exact, bit for bit, against Pillow >= 13 (whose pass order we follow) on
photos in both orientations and on random sizes. The float output equals the reference within 1e-6."""

import numpy as np
import pytest

from wasmvision.preprocess import (MAX_PIXELS, ImageError, center_crop, preprocess, resize_bilinear,
                                   resize_shorter, to_rgb_uint8)

import PIL
from PIL import Image

PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png", "camera.png"]


def test_reference_pillow_is_recent_enough():
    # The pass order we reproduce is Pillow 13's; an older Pillow would disagree by one step on tall images.
    assert int(PIL.__version__.split(".")[0]) >= 13, PIL.__version__


@pytest.fixture(scope="module")
def photos(photos_dir):
    upright = {name: np.asarray(Image.open(photos_dir / name).convert("RGB")) for name in PHOTOS}
    # Portrait versions exercise Pillow's vertical-first pass order.
    tall = {f"{name} (portrait)": np.ascontiguousarray(rgb.transpose(1, 0, 2)) for name, rgb in upright.items()}
    return {**upright, **tall}


def pil_reference(rgb, resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    """torchvision Resize(256) + CenterCrop(224) + ToTensor + Normalize, written with PIL and numpy."""
    im = Image.fromarray(rgb)
    w, h = im.size
    if w <= h:
        size = (resize, int(resize * h / w))
    else:
        size = (int(resize * w / h), resize)
    im = im.resize(size, Image.BILINEAR)
    w, h = im.size
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    im = im.crop((left, top, left + crop, top + crop))
    x = np.asarray(im).astype(np.float32) / np.float32(255)
    return (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def test_resize_matches_pillow_exactly_on_photos(photos):
    for name, rgb in photos.items():
        h, w = rgb.shape[:2]
        for size in [(256, 256), (224, 224), (w // 2 + 1, h // 3 + 1), (2 * w + 1, 2 * h + 3)]:
            ref = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
            np.testing.assert_array_equal(resize_bilinear(rgb, *size), ref, err_msg=f"{name} {size}")


def test_resize_shorter_matches_torchvision_geometry_exactly_on_photos(photos):
    for name, rgb in photos.items():
        h, w = rgb.shape[:2]
        out = resize_shorter(rgb, 256)
        size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
        np.testing.assert_array_equal(out, np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR)))


@pytest.mark.parametrize("seed", range(6))
def test_resize_random_odd_sizes_exactly(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 300, 2))
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    for size in [(256, 256), (int(rng.integers(1, 400)), int(rng.integers(1, 400))), (1, 1)]:
        ref = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
        np.testing.assert_array_equal(resize_bilinear(rgb, *size), ref, err_msg=f"{(h, w)} -> {size}")


@pytest.mark.parametrize("tall", [False, True])
def test_resize_random_shorter_side_256_exact(tall):
    rng = np.random.default_rng(7)
    for _ in range(6):
        h = int(rng.integers(2, 400))
        w = h + int(rng.integers(1, 600))
        if tall:
            h, w = w, h
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        size = (256, int(256 * h / w)) if tall else (int(256 * w / h), 256)
        np.testing.assert_array_equal(resize_bilinear(rgb, *size),
                                      np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR)))


def test_preprocess_float_output_matches_reference(photos):
    for name, rgb in photos.items():
        x = preprocess(rgb, {"kind": "imagenet"}, (224, 224))
        assert x.shape == (224, 224, 3) and x.dtype == np.float32
        np.testing.assert_allclose(x, pil_reference(rgb), atol=1e-6, rtol=0, err_msg=name)


def test_center_crop_rounding():
    img = np.arange(5 * 7, dtype=np.uint8).reshape(5, 7, 1)
    # (7-4)/2 = 1.5 -> round half to even = 2 ; (5-2)/2 = 1.5 -> 2
    np.testing.assert_array_equal(center_crop(img, 2, 4), img[2:4, 2:6])


@pytest.mark.parametrize("h,w,ch,cw", [(5, 7, 9, 9), (5, 7, 4, 10), (8, 3, 2, 6), (1, 1, 224, 224), (6, 6, 6, 6),
                                     (10, 4, 3, 4)])
def test_center_crop_pads_smaller_images_like_torchvision(h, w, ch, cw):
    img = np.arange(1, h * w * 3 + 1, dtype=np.uint8).reshape(h, w, 3)
    # torchvision: pad (half before, the odd one after) with zeros, then crop round((size - crop) / 2)
    pt, pb = ((ch - h) // 2, (ch - h + 1) // 2) if ch > h else (0, 0)
    pl, pr = ((cw - w) // 2, (cw - w + 1) // 2) if cw > w else (0, 0)
    padded = np.pad(img, ((pt, pb), (pl, pr), (0, 0)))
    top, left = int(round((padded.shape[0] - ch) / 2.0)), int(round((padded.shape[1] - cw) / 2.0))
    np.testing.assert_array_equal(center_crop(img, ch, cw), padded[top:top + ch, left:left + cw])


def test_kinds():
    rgb = np.full((300, 400, 3), 255, np.uint8)
    np.testing.assert_allclose(preprocess(rgb, {"kind": "inception"}, (299, 299)), 1.0)
    x = preprocess(rgb, {"kind": "none"}, (32, 48))
    assert x.shape == (32, 48, 3)
    np.testing.assert_allclose(x, 1.0)
    with pytest.raises(ValueError, match="unknown preprocess kind"):
        preprocess(rgb, {"kind": "yolo"}, (224, 224))


def test_input_conversions():
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(gray), np.asarray(Image.fromarray(gray).convert("RGB")))
    rgba = rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(rgba), np.asarray(Image.fromarray(rgba, "RGBA").convert("RGB")))
    g16 = rng.integers(0, 65536, (9, 11), dtype=np.uint16)
    np.testing.assert_array_equal(to_rgb_uint8(g16)[..., 0], (g16 >> 8).astype(np.uint8))
    assert to_rgb_uint8(np.ones((2, 2), bool)).max() == 255


def test_one_pixel_image_upscales():
    x = preprocess(np.array([[[10, 200, 30]]], np.uint8), {"kind": "imagenet"}, (224, 224))
    assert x.shape == (224, 224, 3)
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    np.testing.assert_allclose(x[100, 100], (np.array([10, 200, 30], np.float32) / 255 - mean) / std, atol=1e-6)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((0, 5, 3), np.uint8), "empty"),
    (np.zeros((5, 5, 7), np.uint8), "shape"),
    (np.zeros((5, 5, 3), np.float64), "pixel type"),
    ("not an image", "pixel type|shape"),
])
def test_bad_arrays(bad, match):
    with pytest.raises(ImageError, match=match):
        preprocess(bad)


def test_too_many_pixels_is_refused_before_any_work():
    big = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (MAX_PIXELS // 1000 + 1, 1000, 3))
    with pytest.raises(ImageError, match="too large"):
        preprocess(big)


def test_raw_kind_keeps_pixel_values_and_resizes_the_whole_image():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (50, 80, 3), dtype=np.uint8)
    x = preprocess(rgb, {"kind": "raw"}, (32, 40))
    assert x.shape == (32, 40, 3)
    np.testing.assert_array_equal(x, resize_bilinear(rgb, 40, 32).astype(np.float32))
    np.testing.assert_allclose(preprocess(rgb, {"kind": "none"}, (32, 40)), x / np.float32(255), rtol=0, atol=1e-7)


# The downscaling passes regroup the tap sums (two-phase packed segments); they must agree with the
# straightforward tap loop and with Pillow, and must actually be the path taken for photo downscales.

def test_downscale_takes_the_two_phase_path_and_upscale_does_not():
    from wasmvision.resample import _two_phase_plan, coefficients
    for in_size, out_size in [(4000, 341), (3000, 256), (8000, 341), (640, 256), (257, 256), (900, 1), (2, 1)]:
        assert _two_phase_plan(*coefficients(in_size, out_size), in_size) is not None, (in_size, out_size)
    for in_size, out_size in [(1, 224), (100, 400), (224, 300)]:
        assert _two_phase_plan(*coefficients(in_size, out_size), in_size) is None, (in_size, out_size)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_two_phase_passes_equal_the_tap_loop(channels):
    from wasmvision.resample import _resample_axis, _resample_axis_taps, coefficients
    rng = np.random.default_rng(channels)
    cases = [(1, 500, 1), (500, 1, 1), (300, 300, 1), (7, 7, 3), (2, 900, 1), (300, 301, 300)]
    cases += [(int(rng.integers(1, 400)), int(rng.integers(1, 400)), 0) for _ in range(20)]
    for h, w, out in cases:
        img = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        for axis in (0, 1):
            size = out or int(rng.integers(1, 2 * img.shape[axis] + 2))  # mostly shrinking, some enlarging
            expected = _resample_axis_taps(img, *coefficients(img.shape[axis], size), axis)
            np.testing.assert_array_equal(_resample_axis(img, size, axis), expected,
                                          err_msg=f"{(h, w, channels)} axis {axis} -> {size}")


@pytest.mark.parametrize("width,height", [(4000, 3000), (3000, 4000), (1000, 4000), (6000, 1100)])
def test_large_photo_sizes_match_pillow_exactly(width, height):
    rng = np.random.default_rng(width + height)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    white = np.full((height, width, 3), 255, np.uint8)  # the largest sums: must not carry between words
    for rgb in (noise, white):
        out = resize_shorter(rgb, 256)
        ref = np.asarray(Image.fromarray(rgb).resize(out.shape[1::-1], Image.BILINEAR))
        np.testing.assert_array_equal(out, ref)


def test_segment_sums_round_and_clip_like_pillow():
    from wasmvision.resample import PRECISION_BITS, _unpack_segment_sums
    one = 1 << PRECISION_BITS
    low = np.array([one // 2 - 1, one // 2, 255 * one, 256 * one + 5], np.uint64)  # each output's own half
    high = np.array([0, 0, 0, 0, 0], np.uint64)  # the next segment's high word: nothing
    sums = np.concatenate([low, [0]]).astype(np.uint64) | (high << np.uint64(32))
    np.testing.assert_array_equal(_unpack_segment_sums(sums, 0, clip=True), [0, 1, 255, 255])
    split = np.array([one, 0, 0], np.uint64) | (np.array([0, 3 * one, 0], np.uint64) << np.uint64(32))
    np.testing.assert_array_equal(_unpack_segment_sums(split, 0, clip=False), [4, 0])


# ----------------------------------------------------------------------------------------- extreme aspect ratios
# Resizing the shorter side to 256 makes a 5000x1 strip 1,280,000 pixels long: refused from the dimensions,
# before any allocation. Images up to MAX_ASPECT_RATIO stay bit-exact with Pillow.

@pytest.mark.parametrize("width,height", [(5000, 1), (20000, 1), (1, 60000), (21, 1), (1, 21), (2100, 100)])
def test_extreme_aspect_ratios_are_refused_before_any_large_allocation(width, height):
    import tracemalloc

    from wasmvision.preprocess import MAX_ASPECT_RATIO

    rgb = np.zeros((height, width, 3), np.uint8)
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match=rf"{width}x{height} pixels has an aspect ratio of \d+:1 "
                                             rf"\(the limit is {MAX_ASPECT_RATIO}:1\)") as exc:
            preprocess(rgb, {"kind": "imagenet"}, (224, 224))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB allocated before refusing"
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("width,height", [(500, 25), (25, 500), (1000, 50), (20, 1), (1, 20), (1999, 100)])
def test_aspect_ratios_up_to_the_limit_stay_exact_with_pillow(width, height):
    rgb = np.random.default_rng(width * 7 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = preprocess(rgb, {"kind": "imagenet"}, (224, 224))
    np.testing.assert_array_equal(out, pil_reference(rgb))
