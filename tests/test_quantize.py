"""Weight storage kinds: float16 and int8 (symmetric, per output channel) round trips."""

import numpy as np
import pytest

from wasmvision import bundle as B
from wasmvision import quantize as Q


def _bundle():
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((3, 3, 3, 16)).astype(np.float32)
    w1[..., 5] *= 40.0  # one channel with a much larger range: per-channel scales must keep the others precise
    w1[..., 7] = 0.0    # an all-zero channel must not divide by zero
    return B.Bundle(
        nodes=[B.Node("conv2d", ["x", "w1", "b1"], ["h"], attrs={"strides": [1, 1], "pads": [1, 1, 1, 1],
                                                                 "dilations": [1, 1], "groups": 1}),
               B.Node("global_avg_pool", ["h"], ["p"]),
               B.Node("flatten", ["p"], ["f"], attrs={"axis": 1}),
               B.Node("dense", ["f", "w2", "b2"], ["y"])],
        inputs=[B.ValueInfo("x", [-1, 8, 8, 3])], outputs=[B.ValueInfo("y", [-1, 10], layout="NC")],
        tensors={"w1": w1, "b1": rng.standard_normal(16).astype(np.float32),
                 "w2": rng.standard_normal((16, 10)).astype(np.float32),
                 "b2": rng.standard_normal(10).astype(np.float32)})


def test_weight_tensors_are_conv_and_dense_weights_only():
    assert Q.weight_tensors(_bundle()) == ["w1", "w2"]


@pytest.mark.parametrize("kind, rel_tol, size_ratio", [("float16", 1e-3, 0.5), ("int8", 1 / 127, 0.25)])
def test_round_trip_error_is_bounded_per_channel(kind, rel_tol, size_ratio):
    original = _bundle()
    Q.set_weight_storage(original, kind)
    raw = B.to_bytes(original)
    loaded = B.from_bytes(raw)
    assert loaded.storage["w1"] == kind and loaded.storage["b1"] == "float32"
    for name in ("w1", "w2"):
        ref, got = original.tensors[name], loaded.tensors[name]
        assert got.dtype == np.float32 and got.shape == ref.shape
        channel_max = np.abs(ref.reshape(-1, ref.shape[-1])).max(axis=0)
        err = np.abs((got - ref).reshape(-1, ref.shape[-1])).max(axis=0)
        assert np.all(err <= rel_tol * channel_max + 1e-12), (name, err / np.maximum(channel_max, 1e-12))
    np.testing.assert_array_equal(loaded.tensors["b1"], original.tensors["b1"])
    np.testing.assert_array_equal(loaded.tensors["w1"][..., 7], 0.0)
    header, _ = B.read_header(raw)
    stored = sum(p["nbytes"] for p in header["tensors"]["w1"]["parts"])
    assert stored <= original.tensors["w1"].nbytes * size_ratio + 4 * 16


def test_int8_is_stable_when_saved_again():
    first = _bundle()
    Q.set_weight_storage(first, "int8")
    raw1 = B.to_bytes(first)
    raw2 = B.to_bytes(B.from_bytes(raw1))
    assert raw1 == raw2


def test_dequantized_copy_matches_what_loading_gives():
    original = _bundle()
    Q.set_weight_storage(original, "int8", keep_float32=("last",))
    assert original.storage["w2"] == "float32"
    loaded = B.from_bytes(B.to_bytes(original))
    twin = Q.dequantized(original)
    for name in original.tensors:
        np.testing.assert_array_equal(twin.tensors[name], loaded.tensors[name])
    assert twin.storage == {}


def test_corrupt_quantized_bundle_is_refused():
    original = _bundle()
    Q.set_weight_storage(original, "int8")
    raw = bytearray(B.to_bytes(original))
    raw[-5] ^= 0x01  # inside the last tensor's int8 data
    with pytest.raises(B.BundleError, match="checksum"):
        B.from_bytes(bytes(raw))


def test_int8_scale_count_mismatch_is_refused_even_without_checksum():
    original = _bundle()
    Q.set_weight_storage(original, "int8")
    raw = B.to_bytes(original)
    header, _ = B.read_header(raw)
    entry = header["tensors"]["w1"]
    parts = {p["name"]: b"\0" * p["nbytes"] for p in entry["parts"]}
    parts["scale"] = parts["scale"][:-4]
    with pytest.raises(ValueError, match="scale"):
        Q.decode(entry, parts)


def test_unknown_storage_kind():
    with pytest.raises(ValueError, match="unknown weight storage"):
        Q.set_weight_storage(_bundle(), "int4")
