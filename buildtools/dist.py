"""dist/: the site laid out from the built parts, its manifest.json (every file's sha256) and package.json."""

from __future__ import annotations

import json
from pathlib import Path

from .bundling import PAGE_EXTERNAL, bundle_module, bundle_page, bundle_worker, module_graph
from .paths import DIST, ROOT
from .snapshot import PACKAGES_PATH as SHIPPED_PACKAGES, SITE_PATH as SHIPPED_SNAPSHOT, STDLIB_PATH as SHIPPED_STDLIB
from .snapshot import Shipped
from .sitezips import numpy_for_site, stdlib_for_site
from .sources import PYODIDE_CORE_FILES, PYODIDE_PACKAGES
from .util import BuildError, copy_if_changed, log, sha256_file, write_if_changed
from .wheel import lock_entry, project_version, wheel_member_sha256

# Where index.html gets its <link> hints: HTML has no bundler of its own, so the build fills these two comments.
PRELOAD_MARKER = b"<!-- preloads: written by build.py -->"
MODULEPRELOAD_MARKER = b"<!-- modulepreloads: written by build.py -->"
PRELOADS = ("pyodide/python_stdlib.zip", "pyodide/pyodide.asm.js")  # each stays under a private window's cache cap


def page_preloads(shipped_stdlib: str | None) -> list[str]:
    """index.html's preloads: PRELOADS, with a shipped snapshot's small stdlib in place of the full one."""
    return [shipped_stdlib if shipped_stdlib and p == "pyodide/python_stdlib.zip" else p for p in PRELOADS]


def with_preloads(html: bytes, paths: list[str]) -> bytes:
    """index.html with preload hints for the big files the worker fetches, in place of PRELOAD_MARKER.

    The worker's own requests cannot use the page's preloads, but they find the files in the HTTP cache (or wait
    for the download in flight) instead of starting them once the worker and the manifest are loaded.
    """
    if PRELOAD_MARKER not in html:
        return html
    links = "\n  ".join(f'<link rel="preload" href="./{p}" as="fetch" crossorigin>' for p in paths)
    return html.replace(PRELOAD_MARKER, links.encode())


def checked_bundle(path: Path) -> Path:
    """`path`, once the package's own reader accepts its prefix and checksum (bundle.read_header).

    The page skips that check for a model whose bytes the browser matched against manifest.json
    (wasmvision.browser.load_model `checked`): it rests on the manifest hashing only bundles checked here."""
    from wasmvision.bundle import BundleError, read_header

    try:
        read_header(path.read_bytes())
    except BundleError as exc:
        raise BuildError(f"{path}: {exc}; rebuild it (rm -r build/models)") from None
    return path


def with_modulepreloads(html: bytes, paths: list[str]) -> bytes:
    """index.html with a modulepreload per module its script imports: fetched at once, not level by level as the
    imports are discovered (each level a round trip before the worker can even be created)."""
    if MODULEPRELOAD_MARKER not in html:
        return html
    links = "\n  ".join(f'<link rel="modulepreload" href="./{p}" fetchpriority="high">' for p in paths)
    return html.replace(MODULEPRELOAD_MARKER, links.encode())


def assemble_dist(pyodide: Path, lock: dict, wheel: Path, models: list[dict], simd: list[dict] | None = None,
                  esbuild: Path | None = None, shipped: Shipped | None = None) -> dict:
    """Lay out dist/ (copying only what changed, deleting what is stale) and write manifest.json. With `esbuild`,
    the worker, the public module and each page's script ship as one file each with the modules they import.
    `shipped`: the memory snapshot for first visitors (snapshot.py), made from a site assembled without it."""
    files: dict[str, Path | bytes] = {}
    web = ROOT / "web"
    if not (web / "index.html").exists():
        raise BuildError("web/index.html is missing: the page sources live in web/")
    for p in sorted(web.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            files[p.relative_to(web).as_posix()] = p
    if esbuild is None:
        preloads = module_graph(web, "app.js")
    else:
        bundled = {f"worker/{p.name}" for p in (web / "worker").glob("*.js")}
        files["worker.js"] = bundle_worker(web, pyodide / "pyodide.mjs", esbuild)
        files["wasmvision.mjs"], inside = bundle_module(web, esbuild)
        bundled.update(inside)
        for entry in ("app.js", "album.js"):
            files[entry], inside = bundle_page(web, entry, esbuild)
            bundled.update(inside)
        files = {rel: src for rel, src in files.items() if rel not in bundled}
        preloads = [PAGE_EXTERNAL.removeprefix("./")]
    for fname in PYODIDE_CORE_FILES:
        files[f"pyodide/{fname}"] = pyodide / fname
    for pkg in PYODIDE_PACKAGES:
        fname = lock["packages"][pkg]["file_name"]
        files[f"pyodide/{fname}"] = pyodide / fname
    numpy = numpy_for_site(pyodide / lock["packages"]["numpy"]["file_name"])
    files[f"pyodide/{numpy.name}"] = numpy
    default_model = next(m["path"] for m in models if m["default"])
    files["pyodide/python_stdlib.zip"] = stdlib_for_site(pyodide / "python_stdlib.zip", numpy, wheel, default_model)
    files[f"pyodide/{wheel.name}"] = wheel
    # The official lock's entries for the packages the site ships (the other ~250 would be 100 kB of every first
    # visit), numpy's with the hash of its wheel as compiled here, and our entry; info.version must stay for 0.27.
    our_lock = json.loads(json.dumps(lock))
    our_lock["packages"] = {k: v for k, v in our_lock["packages"].items() if k in PYODIDE_PACKAGES}
    our_lock["packages"]["wasmvision"] = lock_entry(wheel)
    our_lock["packages"]["numpy"]["sha256"] = sha256_file(numpy)
    files["pyodide/pyodide-lock.json"] = json.dumps(our_lock, separators=(",", ":"), sort_keys=True).encode()
    for m in models:
        files[f"models/{m['path'].name}"] = checked_bundle(m["path"])
    if shipped is not None:
        files.update(shipped.site_files())
    index = with_modulepreloads((web / "index.html").read_bytes(), preloads)
    # The runtime's smaller files only: the worker asks for the wheels and the model itself as soon as it has the
    # manifest, and every preloaded byte also passes through the page's main thread. Not the runtime's Wasm: a
    # private window's memory-only HTTP cache keeps no entry over ~6 MB, so its preload was downloaded a second
    # time by the worker's compile (benchmarks/README.md: link profiles). A first visit restoring the shipped
    # snapshot reads its small stdlib instead of the full one (snapshot.py).
    files["index.html"] = with_preloads(index, page_preloads(SHIPPED_STDLIB if shipped is not None else None))
    for generated in ("manifest.json", "package.json"):
        if generated in files:
            raise BuildError(f"web/{generated} would be overwritten by the generated one")
    files["package.json"] = package_json(sorted([*files, "manifest.json"]))

    DIST.mkdir(exist_ok=True)
    for rel, src in files.items():
        dest = DIST / rel
        if isinstance(src, bytes):
            write_if_changed(dest, src)
        else:
            copy_if_changed(src, dest)
    for p in sorted(DIST.rglob("*"), reverse=True):
        rel = p.relative_to(DIST).as_posix()
        if p.is_file() and rel not in files and rel != "manifest.json":
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()

    entries = []
    for rel in sorted(files):
        p = DIST / rel
        entries.append({"path": rel, "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    by_path = {e["path"]: e for e in entries}
    manifest = {
        "generator": "wasmvision build.py",
        "wasmvision": {"version": project_version(), "wheel": f"pyodide/{wheel.name}"},
        "pyodide": {"version": lock["info"]["version"], "python": lock["info"].get("python"),
                    "index": "pyodide/"},
        "models": [{"key": m["path"].stem, "name": m["name"], "title": m["title"], "version": m["version"],
                    "file": f"models/{m['path'].name}",
                    "bytes": by_path[f"models/{m['path'].name}"]["bytes"],
                    "sha256": by_path[f"models/{m['path'].name}"]["sha256"],
                    "storage": m["storage"], "description": m["description"], "default": m["default"]}
                   for m in models],
        "files": entries,
    }
    if shipped is not None:
        manifest["snapshot"] = {"file": SHIPPED_SNAPSHOT, "stdlib": SHIPPED_STDLIB, "packages": SHIPPED_PACKAGES,
                                **{k: by_path[SHIPPED_SNAPSHOT][k] for k in ("bytes", "sha256")}}
    if simd:
        # The kernel libraries travel inside the wheel (package data); the page can show which one it runs.
        manifest["kernels"] = []
        for build in simd:
            member = "wasmvision/simd/" + build["file"]
            if wheel_member_sha256(wheel, member) != build["sha256"]:
                raise BuildError(f"{wheel.name} does not contain {member} with sha256 {build['sha256']}")
            manifest["kernels"].append({"name": build["name"], "file": build["file"], "wheel": f"pyodide/{wheel.name}",
                                        "member": member, "bytes": build["bytes"], "sha256": build["sha256"]})
    write_if_changed(DIST / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def package_json(paths: list[str]) -> bytes:
    """dist/package.json: the site as an npm package whose entry is the ES module (types beside it). The worker,
    runtime and models are files of the package because the module loads them from beside itself at run time."""
    pkg = {
        "name": "wasmvision",
        "version": project_version(),
        "description": "Private image classification in the browser: MobileNet on Python and numpy in WebAssembly; "
                       "the photo never leaves the device.",
        "license": "Apache-2.0",
        # No "type": "module": Node would then read pyodide/pyodide.asm.js (CommonJS, no package.json of its own
        # here) as an ES module and fail to load the runtime. The entry is .mjs, an ES module by its name.
        "main": "./wasmvision.mjs",
        "types": "./wasmvision.d.ts",
        "exports": {
            ".": {"types": "./wasmvision.d.ts", "import": "./wasmvision.mjs", "default": "./wasmvision.mjs"},
            "./package.json": "./package.json",
        },
        "sideEffects": False,
        "files": [p for p in paths if p != "package.json"],
        "keywords": ["image-classification", "mobilenet", "webassembly", "pyodide", "privacy"],
    }
    return (json.dumps(pkg, indent=1) + "\n").encode()


def print_sizes(manifest: dict) -> None:
    groups: dict[str, int] = {}
    for e in manifest["files"]:
        path = e["path"]
        group = ("pyodide core" if path.startswith("pyodide/") and not path.endswith(".whl")
                 else "pyodide wheels" if path.endswith(".whl") else "models" if path.startswith("models/")
                 else "shipped snapshot" if path.startswith("snapshot/") else "page")
        groups[group] = groups.get(group, 0) + e["bytes"]
    total = sum(groups.values())
    log("dist/ sizes: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in groups.items())
        + f"; total {total / 1e6:.2f} MB")


