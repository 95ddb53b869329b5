"""The site's JavaScript in few files: esbuild (pinned, from npm) bundles the worker, the pages and the module."""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from .paths import CACHE
from .sources import ESBUILD_VERSION
from .util import BuildError, run

STATIC_IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;"']*?(?:\bfrom\s*)?["'](\.{1,2}/[^"']+)["']""", re.M)
# The global the public module reads for how to start worker.js; the bundled site defines it as "classic".
WORKER_TYPE_DEFINE = "WASMVISION_WORKER_TYPE"


def module_graph(web: Path, entry: str) -> list[str]:
    """The site-relative paths of every module `entry` imports, directly or not (static relative imports only)."""
    seen: list[str] = []
    todo = [entry]
    while todo:
        rel = todo.pop()
        for spec in STATIC_IMPORT.findall((web / rel).read_text(encoding="utf-8")):
            dep = os.path.normpath(os.path.join(os.path.dirname(rel), spec)).replace(os.sep, "/")
            if dep not in seen and dep != entry and (web / dep).is_file():
                seen.append(dep)
                todo.append(dep)
    return sorted(seen)


def esbuild_binary(tarball: Path) -> Path:
    """The esbuild executable out of its (verified) npm tarball, unpacked once into .cache/."""
    target = CACHE / f"esbuild-{ESBUILD_VERSION}" / "esbuild"
    if not target.exists():
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/bin/esbuild")
            if member is None:
                raise BuildError(f"{tarball.name} has no package/bin/esbuild")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(member.read())
            tmp.chmod(0o755)
            tmp.replace(target)
    return target


def esbuild_bundle(esbuild: Path, tree: Path, entry: str, externals: tuple[str, ...] = (),
                   fmt: str = "esm", defines: dict[str, str] | None = None) -> tuple[bytes, set[str]]:
    """`entry` (a path in `tree`) with every module it imports in one file, an ES module or (fmt="iife") a classic
    script, each global named in `defines` replaced by its string value; (its bytes, the bundled paths)."""
    run([str(esbuild), entry, "--bundle", f"--format={fmt}", "--outfile=out.js", "--metafile=meta.json",
         "--log-level=warning", *(f"--external:{e}" for e in externals),
         *(f"--define:{k}={json.dumps(v)}" for k, v in (defines or {}).items())], cwd=tree)
    return (tree / "out.js").read_bytes(), set(json.loads((tree / "meta.json").read_text())["inputs"])


def bundle_worker(web: Path, pyodide_mjs: Path, esbuild: Path) -> bytes:
    """dist/worker.js: web/worker.js with every module it imports (web/worker/*.js, Pyodide's loader) in one file.
    A worker cannot use the page's modulepreload hints, and ~18 separate modules took 2-3 round trips through
    the browser's six connections on a cold visit (phases_ab: the manifest was read 115 ms sooner, cold, and 40 ms
    sooner on a repeat visit, where the service worker answers each request). The sources stay one file per
    concern; the page's code check covers the bundle as the file that ran. A classic script, not a module: the
    worker then loads pyodide.asm.js with importScripts, and V8 uses the compiled code the service worker's install
    made for it (a module's import() could not: the runtime's script 305 -> 215 ms on a repeat visit, 5 rounds);
    the public module is told (bundle_module)."""
    with tempfile.TemporaryDirectory(prefix="wasmvision-bundle-") as tmp:
        t = Path(tmp)
        shutil.copy2(web / "worker.js", t / "worker.js")
        shutil.copytree(web / "worker", t / "worker")
        (t / "pyodide").mkdir()
        shutil.copy2(pyodide_mjs, t / "pyodide" / "pyodide.mjs")
        # pyodide.mjs imports Node's modules only when it runs under Node; they stay imports (never reached here).
        out, inputs = esbuild_bundle(esbuild, t, "worker.js", ("node:*", "ws"), fmt="iife")
    missing = sorted({f"worker/{p.name}" for p in (web / "worker").glob("*.js")} - inputs)
    if missing:
        raise BuildError(f"web/worker.js does not import {', '.join(missing)}: dead code, or an import is missing")
    return out


def _bundle_site_script(web: Path, esbuild: Path, entry: str, externals: tuple[str, ...] = (),
                        defines: dict[str, str] | None = None) -> tuple[bytes, set[str]]:
    """esbuild_bundle on a copy of the site's scripts (the build never writes into web/)."""
    with tempfile.TemporaryDirectory(prefix="wasmvision-bundle-") as tmp:
        t = Path(tmp) / "web"
        shutil.copytree(web, t, ignore=shutil.ignore_patterns("*.html", "*.css", "examples"))
        return esbuild_bundle(esbuild, t, entry, externals, defines=defines)


# The public module stays its own file (other pages import it); everything else a page's script imports is bundled.
PAGE_EXTERNAL = "./wasmvision.mjs"


def bundle_page(web: Path, entry: str, esbuild: Path) -> tuple[bytes, list[str]]:
    """A page's script (app.js, album.js) with the modules it imports, except the public module, in one file:
    (its bytes, the site paths it bundled). Five to nine requests for the page's code become two."""
    out, inputs = _bundle_site_script(web, esbuild, entry, (PAGE_EXTERNAL,))
    external = PAGE_EXTERNAL.removeprefix("./")
    # The public module's own modules ship inside it, not inside the page's script.
    graph = set(module_graph(web, entry)) - {external} - set(module_graph(web, external))
    if graph - inputs:
        raise BuildError(f"bundling {entry} left out {', '.join(sorted(graph - inputs))}")
    return out, sorted(inputs - {entry})


def bundle_module(web: Path, esbuild: Path, worker_type: str = "classic") -> tuple[bytes, list[str]]:
    """The public module (wasmvision.mjs) with the modules it imports in one ES module that starts worker.js as
    `worker_type` (esbuild --define of WORKER_TYPE_DEFINE): (its bytes, the site paths it bundled)."""
    entry = PAGE_EXTERNAL.removeprefix("./")
    graph = [entry, *module_graph(web, entry)]
    if not any(WORKER_TYPE_DEFINE in (web / rel).read_text(encoding="utf-8") for rel in graph):
        raise BuildError(f"web/{entry} no longer reads {WORKER_TYPE_DEFINE}: the bundled worker would start as a "
                         "module; update buildtools/bundling.py bundle_module")
    out, inputs = _bundle_site_script(web, esbuild, entry, defines={WORKER_TYPE_DEFINE: worker_type})
    if set(graph) - inputs:
        raise BuildError(f"bundling {entry} left out {', '.join(sorted(set(graph) - inputs))}")
    return out, sorted(inputs - {entry})
