import hashlib, io, json, zipfile
import pytest
import browser_util as bu
from buildtools.snapshot import STDLIB_PATH
from test_browser_stdlib_paths import inputs, full_files, small_files  # noqa
from test_browser_stdlib_paths import test_the_album_imports_only_what_the_small_zips_hold as _album

@pytest.fixture(scope="module")
def site(dist_dir, tmp_path_factory):
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    manifest["testHooks"] = {"traceImports": True}
    out = io.BytesIO()
    with zipfile.ZipFile(dist_dir / STDLIB_PATH) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename not in ("csv.py", "csv.pyc"):
                dst.writestr(info, src.read(info))
    data = out.getvalue()
    for f in manifest["files"]:
        if f["path"] == STDLIB_PATH:
            f["bytes"], f["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    return bu.site_variant(dist_dir, tmp_path_factory.mktemp("neg"), replace={"manifest.json": json.dumps(manifest).encode(), STDLIB_PATH: data})

def test_negative(pw, site, inputs, full_files, small_files):
    import test_browser_stdlib_paths as T
    orig = T._check
    T._check = lambda tr, f, s: (print("CSV", [t["modules"].get("csv") for t in tr], [(t["zips"], t["dbg"], t["dbg2"]) for t in tr]), orig(tr, f, s))[1]
    _album(pw, site, inputs, full_files, small_files)
