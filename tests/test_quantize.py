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


@pytest.mark.parametrize("scale, channel, finite", [
    (float("nan"), 5, False), (float("inf"), 5, False), (3e38, 5, False),  # 3e38 * q overflows to infinity
    (float("inf"), 7, False),  # an all-zero channel: 0 * inf is NaN
    (3e38, 7, True),  # too large to bound from the scales alone, but its codes are all 0: the tensor is finite
    (0.5, 5, True)])
def test_int8_finiteness_from_the_scales_agrees_with_the_tensor(scale, channel, finite):
    """Loading checks an int8 tensor's scales instead of its values when they bound it; the verdict (and the
    error) must be the one the decoded tensor gives."""
    original = _bundle()
    Q.set_weight_storage(original, "int8")
    raw = bytearray(B.to_bytes(original))
    header, data = B.read_header(bytes(raw))
    part = {p["name"]: p for p in header["tensors"]["w1"]["parts"]}["scale"]
    at = len(raw) - len(data) + part["offset"] + 4 * channel
    raw[at:at + 4] = np.float32(scale).tobytes()
    entry = header["tensors"]["w1"]
    parts = {p["name"]: bytes(raw[len(raw) - len(data) + p["offset"]:][:p["nbytes"]]) for p in entry["parts"]}
    with np.errstate(over="ignore", invalid="ignore"):
        decoded = Q.decode(entry, parts)
    assert bool(np.isfinite(decoded).all()) is finite
    assert Q.all_finite(entry, parts, decoded) is finite
    if finite:
        np.testing.assert_array_equal(B.from_bytes(bytes(raw), verify=False).tensors["w1"], decoded)
    else:
        with pytest.raises(B.BundleError, match="contains NaN or infinity"), np.errstate(over="ignore", invalid="ignore"):
            B.from_bytes(bytes(raw), verify=False)


def test_unknown_storage_kind():
    with pytest.raises(ValueError, match="unknown weight storage"):
        Q.set_weight_storage(_bundle(), "int4")


def _mobile_block():
    """stem conv (relu6) -> depthwise conv (relu6) -> linear 1x1 projection -> pool -> dense."""
    rng = np.random.default_rng(3)
    clip = {"kind": "clip", "min": 0.0, "max": 6.0}
    conv = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "groups": 1}
    return B.Bundle(
        nodes=[B.Node("conv2d", ["x", "w_stem"], ["a"], name="stem", attrs={**conv, "activation": clip}),
               B.Node("conv2d", ["a", "w_dw"], ["b"], name="dw", attrs={**conv, "groups": 8, "activation": clip}),
               B.Node("conv2d", ["b", "w_proj", "b_proj"], ["c"], name="proj",
                      attrs={**conv, "pads": [0, 0, 0, 0], "activation": {"kind": "none"}}),
               B.Node("global_avg_pool", ["c"], ["p"]),
               B.Node("flatten", ["p"], ["f"], attrs={"axis": 1}),
               B.Node("dense", ["f", "w_fc"], ["y"])],
        inputs=[B.ValueInfo("x", [-1, 8, 8, 3])], outputs=[B.ValueInfo("y", [-1, 5], layout="NC")],
        tensors={"w_stem": rng.standard_normal((3, 3, 3, 8)).astype(np.float32),
                 "w_dw": rng.standard_normal((3, 3, 1, 8)).astype(np.float32),
                 "w_proj": rng.standard_normal((1, 1, 8, 4)).astype(np.float32),
                 "b_proj": rng.standard_normal(4).astype(np.float32),
                 "w_fc": rng.standard_normal((4, 5)).astype(np.float32)},
        storage={"w_stem": "float32", "w_dw": "float32", "w_proj": "float32", "b_proj": "float32",
                 "w_fc": "float32"})


@pytest.mark.parametrize("text, variant", [("fp32", "fp32"), ("float32", "fp32"), ("FP16", "fp16"),
                                           ("half", "fp16"), ("int8", "int8"), (" int8-all ", "int8-all")])
def test_variant_names(text, variant):
    assert Q.variant_name(text) == variant


def test_unknown_variant_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown weight storage 'int4'; choose one of fp32, fp16, int8, int8-all"):
        Q.variant_name("int4")


def test_weight_roles():
    roles = Q.weight_roles(_mobile_block())
    assert roles == {"w_stem": {"first"}, "w_dw": {"depthwise"}, "w_proj": {"linear"}, "w_fc": {"last"}}


def test_make_variant_int8_policy_and_input_untouched():
    original = _mobile_block()
    before = (dict(original.storage), dict(original.metadata), {k: v.copy() for k, v in original.tensors.items()})
    v = Q.make_variant(original, "int8")
    assert v.storage == {"w_stem": "float16", "w_dw": "float16", "w_proj": "float16", "w_fc": "int8",
                         "b_proj": "float32"}
    assert v.metadata["weights"] == "int8"
    assert (original.storage, original.metadata) == before[:2]
    for name, array in before[2].items():
        np.testing.assert_array_equal(original.tensors[name], array)
    assert Q.make_variant(original, "int8-all").storage["w_dw"] == "int8"
    assert set(Q.make_variant(original, "fp16").storage.values()) == {"float16", "float32"}
    assert Q.make_variant(v, "fp32").storage == original.storage  # back to float32 storage


def test_keep_float32_wins_over_the_policy_and_selectors_are_checked():
    v = Q.make_variant(_mobile_block(), "int8", keep_float32=("first", "last"))
    assert (v.storage["w_stem"], v.storage["w_dw"], v.storage["w_fc"]) == ("float32", "float16", "float32")
    v = Q.make_variant(_mobile_block(), "fp16", keep_float32=("w_proj",))
    assert v.storage["w_proj"] == "float32" and v.storage["w_dw"] == "float16"
    with pytest.raises(ValueError, match="'b_proj' is neither a weight tensor"):
        Q.make_variant(_mobile_block(), "int8", keep_float32=("b_proj",))


def test_storage_summary_counts_tensors_and_stored_bytes():
    raw = B.to_bytes(Q.make_variant(_mobile_block(), "int8"))
    header, _ = B.read_header(raw)
    summary = Q.storage_summary(header)
    assert summary["int8"] == {"tensors": 1, "bytes": 4 * 5 + 5 * 4}  # int8 data + one float32 scale per column
    assert summary["float16"] == {"tensors": 3, "bytes": 2 * (3 * 3 * 3 * 8 + 3 * 3 * 8 + 8 * 4)}
    assert summary["float32"] == {"tensors": 1, "bytes": 4 * 4}


def test_every_variant_round_trips_through_bytes():
    original = _mobile_block()
    x = np.random.default_rng(0).standard_normal((1, 8, 8, 3)).astype(np.float32)
    import wasmvision

    ref = wasmvision.load(original).run(x)
    for name in Q.VARIANTS:
        v = Q.make_variant(original, name)
        loaded = B.from_bytes(B.to_bytes(v))
        assert loaded.storage == v.storage and loaded.metadata["weights"] == name
        got = wasmvision.load(loaded).run(x)
        np.testing.assert_array_equal(got, wasmvision.load(Q.dequantized(v)).run(x))
        assert np.abs(got - ref).max() <= (0 if name == "fp32" else 0.05) * np.abs(ref).max()
