"""The .wvb container: round trips, zero-copy views, and every way a file can be damaged."""

import numpy as np
import pytest

from builders import one_conv_bundle
from wasmvision import bundle as B


def test_round_trip_keeps_graph_metadata_and_exact_weights():
    original = one_conv_bundle(metadata={"source": "unit test"}, embedding="y")
    loaded = B.from_bytes(B.to_bytes(original))
    assert [n.to_json() for n in loaded.nodes] == [n.to_json() for n in original.nodes]
    assert loaded.inputs == original.inputs and loaded.outputs == original.outputs
    assert (loaded.name, loaded.version, loaded.labels) == ("tiny", "1.2", original.labels)
    assert loaded.metadata == {"source": "unit test"} and loaded.embedding == "y"
    for name, array in original.tensors.items():
        assert loaded.tensors[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded.tensors[name], array)


def test_float32_tensors_are_aligned_zero_copy_views():
    raw = B.to_bytes(one_conv_bundle())
    loaded = B.from_bytes(raw)
    w = loaded.tensors["w"]
    assert not w.flags.owndata and not w.flags.writeable  # a view into the file's bytes
    header, data = B.read_header(raw)
    for entry in header["tensors"].values():
        for part in entry["parts"]:
            assert part["offset"] % B.ALIGN == 0
    assert header["format_version"] == B.FORMAT_VERSION


def test_save_and_load_file(tmp_path):
    path = tmp_path / "m.wvb"
    n = B.save(one_conv_bundle(), path)
    assert path.stat().st_size == n
    assert B.load(path).name == "tiny"


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:-10], "truncated"),
    (lambda raw: raw[:40], "shorter than the 64-byte prefix"),
    (lambda raw: b"", "shorter than the 64-byte prefix"),
    (lambda raw: raw + b"\0", "trailing bytes"),
    (lambda raw: b"PK\x03\x04" + raw[4:], "wrong magic"),
    (lambda raw: raw[:200] + bytes([raw[200] ^ 0x10]) + raw[201:], "checksum mismatch"),
    (lambda raw: raw[:-3] + bytes([raw[-3] ^ 0xFF]) + raw[-2:], "checksum mismatch"),
])
def test_damaged_bundles_are_refused_with_a_clear_message(damage, message):
    raw = B.to_bytes(one_conv_bundle())
    with pytest.raises(B.BundleError, match=message):
        B.from_bytes(damage(raw))


def test_onnx_file_gets_a_hint_to_convert():
    fake_onnx = b"\x08\x07\x12\x07pytorch" + b"\0" * 100
    with pytest.raises(B.BundleError, match="convert"):
        B.from_bytes(fake_onnx)


def test_newer_format_version_is_refused():
    raw = bytearray(B.to_bytes(one_conv_bundle()))
    raw[8:12] = (B.FORMAT_VERSION + 1).to_bytes(4, "little")
    with pytest.raises(B.BundleError, match="format version"):
        B.from_bytes(bytes(raw))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(B.BundleError, match="not found"):
        B.load(tmp_path / "nope.wvb")
    with pytest.raises(B.BundleError, match="directory"):
        B.load(tmp_path)
