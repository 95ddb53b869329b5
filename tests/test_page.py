"""The demo page (dist/index.html) as a newcomer meets it: honest progress, the footer's download figure, the picker's
model names, choosing another photo, dropping onto a result, a labels file for one's own model, URL parameters,
a phone-sized screen, and axe-core in every state. Needs the built site (python3 build.py build) and Chromium;
axe-core comes from npm at a pinned version (tests/npm_tools.py)."""

from __future__ import annotations

import base64
import json
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

import browser_util as bu
import npm_tools

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 240_000
SCREENSHOTS = ROOT / "build" / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@pytest.fixture(scope="module")
def site(dist_dir) -> Path:
    return dist_dir


@pytest.fixture(scope="module")
def manifest(site) -> dict:
    return json.loads((site / "manifest.json").read_text())


@pytest.fixture(scope="module")
def axe_source() -> str:
    return (npm_tools.npm_package("axe-core") / "axe.min.js").read_text()


@contextmanager
def _page(browser, **context_options):
    # bypass_csp: axe-core is injected as an inline script, which the page's CSP (rightly) forbids.
    context = browser.new_context(bypass_csp=True, **context_options)
    try:
        page, errors = bu.new_page(context, TIMEOUT_MS)
        page.errors = errors
        yield page
    finally:
        context.close()


def _axe(page, axe_source: str, state: str) -> None:
    if not page.evaluate("() => Boolean(window.axe)"):
        page.add_script_tag(content=axe_source)
    violations = page.evaluate("""async () => (await axe.run(document)).violations.map((v) => ({
        id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}))""")
    assert violations == [], f"axe-core in the {state} state: {json.dumps(violations, indent=1)}"


def _wait_result(page) -> list[dict]:
    page.wait_for_function(
        """() => !document.querySelector('[data-testid=error]').hidden ||
                 (document.querySelector('[data-testid=result-item]') &&
                  !document.querySelector('[data-testid=results]').hasAttribute('aria-busy'))""")
    assert page.eval_on_selector("[data-testid=error]", "e => e.hidden"), page.inner_text("[data-testid=error]")
    return page.eval_on_selector_all("[data-testid=result-item]", """items => items.map((li) => ({
        index: Number(li.dataset.index), label: li.querySelector('[data-testid=result-label]').textContent}))""")


def _clear(page) -> None:
    page.evaluate("document.querySelector('[data-testid=result-list]').replaceChildren()")


# Records every text the progress label shows with the bar's value at that moment, from the page's first paint.
PROGRESS_RECORDER = """
window.__progress = [];
document.addEventListener("DOMContentLoaded", () => {
  const label = document.querySelector("[data-testid=progress-label]");
  const bar = document.querySelector("#progress-bar");
  const note = () => window.__progress.push({text: label.textContent, now: bar.getAttribute("aria-valuenow"),
                                             t: performance.now()});
  new MutationObserver(note).observe(label, {childList: true, characterData: true, subtree: true});
});
"""


@pytest.mark.browser
def test_progress_is_honest_and_axe_passes_in_every_state(browser, served, chelsea, axe_source, manifest):
    with _page(browser) as page:
        page.add_init_script(PROGRESS_RECORDER)
        page.goto(served, wait_until="domcontentloaded")
        assert page.is_visible("[data-testid=progress]")
        _axe(page, axe_source, "loading")
        assert page.is_visible("[data-testid=progress]"), "the page was ready before the loading state was checked"
        bu.wait_ready(page, TIMEOUT_MS)
        assert page.is_hidden("[data-testid=progress]")
        _axe(page, axe_source, "ready")

        # The bar's percentage is the bytes shown, and both move while the files arrive.
        samples = page.evaluate("window.__progress")
        shown = []
        for s in samples:
            m = re.match(r"([\d.]+) of ([\d.]+) MB · ", s["text"])
            if not m:
                continue
            loaded, total = float(m.group(1)), float(m.group(2))
            shown.append(loaded)
            assert s["now"] is not None, s
            # Both figures are rounded to 0.1 MB; the percentage to 1 %.
            assert abs(100 * loaded / total - int(s["now"])) <= 1 + 100 * 0.1 / total, s
        assert len(set(shown)) >= 3, f"the progress did not move while downloading: {samples}"
        model = next(m for m in manifest["models"] if m["default"])
        assert any(model["title"] in s["text"] for s in samples), "the model's stage was never named"

        page.set_input_files("[data-testid=file-input]", str(chelsea))
        assert _wait_result(page)[0]["label"] == "Egyptian cat"
        _axe(page, axe_source, "result")
        page.set_input_files("[data-testid=file-input]",
                             files=[{"name": "notes.txt", "mimeType": "", "buffer": b"not an image\n" * 20}])
        page.wait_for_selector("[data-testid=error]:not([hidden])")
        _axe(page, axe_source, "error")
        # Nothing lost: the previous photo and its result stay, and the status says whose result it is.
        assert page.inner_text("[data-testid=result-item] [data-testid=result-label]") == "Egyptian cat"
        assert "chelsea.png" in page.inner_text("[data-testid=status]")
        assert "chelsea.png" in page.inner_text("#preview-caption")
        assert page.errors == []


@pytest.mark.browser
def test_phone_top_result_visible_touch_hints_and_axe(browser, served, chelsea, axe_source):
    with _page(browser, **PHONE) as page:
        page.goto(served, wait_until="domcontentloaded")
        _axe(page, axe_source, "loading (phone)")
        hint = page.inner_text("[data-testid=drop-zone]")
        assert "Ctrl" not in hint and "⌘" not in hint and "Drop" not in hint, hint
        assert "Tap" in hint, hint
        bu.wait_ready(page, TIMEOUT_MS)
        _axe(page, axe_source, "ready (phone)")

        # The picker shows the whole name of the chosen model.
        fits = page.evaluate("""() => {
            const s = document.querySelector("[data-testid=model-select]");
            const text = s.options[s.selectedIndex].textContent;
            const probe = document.createElement("span");
            probe.style.font = getComputedStyle(s).font;
            probe.style.whiteSpace = "pre";
            probe.style.position = "absolute";
            probe.textContent = text;
            document.body.append(probe);
            const need = probe.getBoundingClientRect().width;
            probe.remove();
            const cs = getComputedStyle(s);
            const room = s.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 20; // arrow
            return {text, need, room};
        }""")
        assert fits["need"] <= fits["room"], fits

        page.set_input_files("[data-testid=file-input]", str(chelsea))
        assert _wait_result(page)[0]["label"] == "Egyptian cat"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "phone-390x844-result.png"))
        box = page.evaluate("""() => {
            const r = document.querySelector("[data-testid=result-item]").getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, scrollY: window.scrollY, height: window.innerHeight};
        }""")
        assert box["scrollY"] == 0 and box["height"] == 844, box
        assert 0 <= box["top"] and box["bottom"] <= 844, f"the top result is not on the first screen: {box}"
        assert page.is_visible("[data-testid=choose-another]")
        _axe(page, axe_source, "result (phone)")
        page.set_input_files("[data-testid=file-input]",
                             files=[{"name": "notes.txt", "mimeType": "", "buffer": b"not an image\n" * 20}])
        page.wait_for_selector("[data-testid=error]:not([hidden])")
        _axe(page, axe_source, "error (phone)")
        assert page.errors == []


@pytest.fixture(scope="module")
def session(browser, served):
    """One desktop page, ready, asked for the numpy engine by its URL."""
    with _page(browser) as page:
        page.goto(served + "?engine=numpy")
        bu.wait_ready(page, TIMEOUT_MS)
        yield page


@pytest.mark.browser
def test_picker_names_models_apart(session, manifest):
    options = session.eval_on_selector_all("[data-testid=model-select] option",
                                           "os => os.map((o) => ({value: o.value, text: o.textContent}))")
    by_key = {o["value"]: o["text"] for o in options}
    for m in manifest["models"]:
        assert by_key[m["key"]] == f"{m['title']} · {m['storage']} · {m['bytes'] / 1e6:.1f} MB"
    names = [by_key[m["key"]] for m in manifest["models"]]
    assert len(set(names)) == len(names)
    # One word per storage kind everywhere: the results header says the same word as the picker.
    default = next(m for m in manifest["models"] if m["default"])
    assert session.inner_text("[data-testid=model-name]") == f"{default['title']} · {default['storage']}"


@pytest.mark.browser
def test_choose_another_photo_and_drop_onto_the_result(session, photos_dir):
    page = session
    _clear(page)
    page.set_input_files("[data-testid=file-input]", str(photos_dir / "chelsea.png"))
    assert _wait_result(page)[0]["label"] == "Egyptian cat"
    assert "numpy engine" in page.inner_text("[data-testid=engine]")
    button = page.locator("[data-testid=choose-another]")
    assert button.is_visible() and button.inner_text() == "Choose another photo"

    other, label = ("coffee.png", "espresso") if (photos_dir / "coffee.png").exists() else ("chelsea.png", "Egyptian cat")
    with page.expect_file_chooser() as chooser:
        button.click()
    _clear(page)
    chooser.value.set_files(str(photos_dir / other))
    assert _wait_result(page)[0]["label"] == label

    # Dropped onto the results card, a photo replaces the result shown.
    data = base64.b64encode((photos_dir / "chelsea.png").read_bytes()).decode()
    _clear(page)
    page.evaluate("""(b64) => {
        const file = new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], "dropped.png", {type: "image/png"});
        const dt = new DataTransfer();
        dt.items.add(file);
        const target = document.querySelector("[data-testid=result-list]") || document.querySelector("[data-testid=results]");
        for (const type of ["dragenter", "dragover", "drop"]) {
            target.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
        }
    }""", data)
    assert _wait_result(page)[0]["label"] == "Egyptian cat"
    assert "dropped.png" in page.inner_text("#preview-caption")


@pytest.mark.browser
def test_own_model_with_a_labels_file(session, photos_dir, tmp_path):
    from builders import tiny_onnx

    page = session
    model = tmp_path / "tiny_named.onnx"
    model.write_bytes(tiny_onnx(num_classes=10))
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"thing {i}\n" for i in range(10)))

    # The model alone: results say "class N" and the page offers a labels file.
    page.set_input_files("[data-testid=model-input]", str(model))
    page.wait_for_function(
        "() => document.querySelector('[data-testid=model-select]').value === 'tiny_named'", timeout=TIMEOUT_MS)
    assert page.is_visible("[data-testid=labels-open]")
    _clear(page)
    page.set_input_files("[data-testid=file-input]", str(photos_dir / "chelsea.png"))
    assert _wait_result(page)[0]["label"].startswith("class ")

    # The labels file: the same model again, now with names (the current photo is classified again).
    _clear(page)
    page.set_input_files("[data-testid=labels-input]", str(labels))
    items = _wait_result(page)
    assert all(re.fullmatch(r"thing \d", i["label"]) and i["label"] == f"thing {i['index']}" for i in items), items
    assert page.is_hidden("[data-testid=labels-open]")

    # Both files at once through the model picker.
    _clear(page)
    page.set_input_files("[data-testid=model-input]", [str(model), str(labels)])
    items = _wait_result(page)
    assert items[0]["label"] == f"thing {items[0]['index']}"

    # A labels file of the wrong length is refused, and the page keeps the model it had.
    bad = tmp_path / "short.txt"
    bad.write_text("a\nb\n")
    page.set_input_files("[data-testid=labels-input]", str(bad))
    page.wait_for_selector("[data-testid=error]:not([hidden])")
    assert "2 labels" in page.inner_text("[data-testid=error]")
    assert page.eval_on_selector("[data-testid=model-select]", "s => s.value") == "tiny_named"


@pytest.mark.browser
def test_unknown_model_and_engine_in_the_url_say_so(browser, served, chelsea):
    with _page(browser) as page:
        page.goto(served + "?model=unknown&engine=warp")
        bu.wait_ready(page, TIMEOUT_MS)
        message = page.inner_text("[data-testid=error]")
        assert page.is_visible("[data-testid=error]")
        assert '"unknown"' in message and "default model" in message, message
        assert '"warp"' in message and "auto" in message, message
        page.set_input_files("[data-testid=file-input]", str(chelsea))
        page.wait_for_selector("[data-testid=result-item]")
        assert page.inner_text("[data-testid=result-item] [data-testid=result-label]") == "Egyptian cat"


@pytest.mark.browser
def test_footer_counts_the_bytes_actually_fetched(pw, site):
    """First visit: the footer's figure is what the server sent; a repeat visit (warm HTTP cache) shows much less,
    and again what the server sent."""
    def footer_bytes(page) -> float:
        page.wait_for_function("() => /downloaded/.test(document.querySelector('[data-testid=stats]').textContent)")
        text = page.inner_text("[data-testid=stats]")
        m = re.search(r"([\d.]+) (MB|kB) downloaded", text)
        assert m, text
        return float(m.group(1)) * (1e6 if m.group(2) == "MB" else 1e3)

    with bu.serve(site) as base, tempfile.TemporaryDirectory(prefix="wasmvision-footer-") as profile:
        # A persistent profile has a disk cache that keeps the runtime and models (a throwaway context's does not).
        context = pw.chromium.launch_persistent_context(profile, executable_path=bu.chromium_path(),
                                                       args=bu.CHROMIUM_ARGS, headless=True)
        try:
            figures = []
            for _visit in range(2):
                base.reset()
                page = context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(base)
                bu.wait_ready(page, TIMEOUT_MS)
                shown = footer_bytes(page)
                sent = base.bytes_sent()
                figures.append((shown, sent))
                # Resource Timing counts headers too (a few hundred bytes a file); rounding is 0.1 MB or 1 kB.
                assert abs(shown - sent) <= 0.02 * sent + 60e3, (shown, sent)
                page.close()
            (first, _), (repeat, _) = figures
            print(f"\nfooter vs server-sent bytes (first visit, repeat visit): {figures}")
            assert first > 5e6 and repeat < first / 10, figures
        finally:
            context.close()
