"""The single-photo page's live camera end to end, with Chromium's fake camera playing a .y4m file this test writes
from a test photo: frames classified continuously (frames per second and the top 3 shown), the built-in model and
a custom head (.wvh) on it, Stop releasing the camera, and nothing sent anywhere. Needs the built site and Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import browser_util as bu
from test_custom_head import LABELS, TRAIN, _crops

TIMEOUT_MS = 240_000
SIZE = (320, 240)  # width, height of the fake camera's frames


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    """RGB frames (H, W, 3, even sizes) -> a YUV4MPEG2 file, 4:2:0 (BT.601 full range, as C420jpeg says)."""
    h, w, _ = frames[0].shape
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
            v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
            sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
            f.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                f.write(np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def video(photos_dir, tmp_path_factory) -> Path:
    Image = pytest.importorskip("PIL.Image")
    frame = np.asarray(Image.open(photos_dir / "chelsea.png").convert("RGB").resize(SIZE, Image.BILINEAR))
    path = tmp_path_factory.mktemp("camera") / "chelsea.y4m"
    write_y4m(path, [frame] * 10)
    return path


@pytest.fixture(scope="module")
def site(dist_dir) -> Path:
    return bu.require_built(dist_dir, "index.html", "app.js", "worker.js", "manifest.json")


@pytest.fixture(scope="module")
def browser(pw, video):
    """Chromium with a fake camera playing `video` and the permission prompt answered yes."""
    b = pw.chromium.launch(executable_path=bu.chromium_path(), args=[
        *bu.CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}"])
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def head_file(dist_dir, photos_dir, tmp_path_factory) -> Path:
    """A head trained natively on crops of the photos (cat, coffee, rocket) for the site's default model."""
    import wasmvision

    entry = next(m for m in json.loads((dist_dir / "manifest.json").read_text())["models"] if m["default"])
    crops = {label: _crops(photos_dir / name, TRAIN, seed) for seed, (label, name) in enumerate(LABELS.items())}
    path = tmp_path_factory.mktemp("heads") / "photos.wvh"
    wasmvision.load(dist_dir / entry["file"]).train(crops).save(path)
    return path


def _top(page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid="camera-item"]')]
        .map((li) => ({label: li.dataset.label, probability: Number(li.dataset.probability)}))""")


def _fresh_top(page, previous_text: str = "") -> list[dict]:
    """Waits for a new result (the frames-per-second line changes with each) and returns the shown top 3."""
    page.wait_for_function("""(before) => {
        const fps = document.querySelector('#camera-fps');
        return fps.dataset.fps !== undefined && fps.textContent !== before
            && document.querySelectorAll('[data-testid="camera-item"]').length === 3;
    }""", arg=previous_text, timeout=TIMEOUT_MS)
    return _top(page)


@pytest.mark.browser
def test_camera_classifies_frames_with_the_model_and_a_head_then_stops(browser, served, head_file):
    context = browser.new_context()
    try:
        log = bu.RequestLog(context)
        page, errors = bu.new_page(context, TIMEOUT_MS)
        page.goto(served)
        bu.wait_ready(page, TIMEOUT_MS)
        page.click("#camera-start")
        page.wait_for_function("() => window.wasmvision.camera.running || !document.querySelector('#error').hidden")
        assert page.is_hidden("#error"), page.text_content("#error-text")
        assert page.is_visible("#camera")
        top = _fresh_top(page)
        assert len(top) == 3 and any("cat" in p["label"] for p in top[:2]), top
        # Several frames in a row, one after another: the rate is measured over them.
        page.wait_for_function("() => window.wasmvision.camera.running && Number(document.querySelector('#camera-fps')"
                               ".dataset.fps) > 0", timeout=TIMEOUT_MS)
        fps = float(page.get_attribute("#camera-fps", "data-fps"))
        assert 0 < fps < 120
        # A custom head on the same model: the person's labels, the cat crop's label first.
        before = page.text_content("#camera-fps")
        page.set_input_files("#camera-head-input", str(head_file))
        page.wait_for_function("() => window.wasmvision.camera.labels !== null", timeout=TIMEOUT_MS)
        for _ in range(3):  # a frame classified before the head arrived may still be on screen
            top = _fresh_top(page, before)
            before = page.text_content("#camera-fps")
            if {p["label"] for p in top} == set(LABELS):
                break
        assert {p["label"] for p in top} == set(LABELS) and top[0]["label"] == "cat", top
        assert abs(sum(p["probability"] for p in top) - 1) < 1e-4
        # Stop: every track ended, the video element holds no stream, the button is back.
        page.evaluate("() => { window.cameraStream = window.wasmvision.camera.stream; }")
        page.click("#camera-stop")
        assert page.evaluate("() => window.cameraStream.getTracks().every((t) => t.readyState === 'ended')")
        assert page.evaluate("() => document.querySelector('#camera-video').srcObject === null")
        assert not page.evaluate("window.wasmvision.camera.running")
        assert page.is_hidden("#camera") and page.is_visible("#camera-start")
        assert log.foreign(served) == [] and log.bodies() == []
        assert errors == []
    finally:
        context.close()
