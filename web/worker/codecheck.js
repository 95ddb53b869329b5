// The code check: the code this page and its worker run arrived by <script>, import or new Worker(), where no
// integrity can be given, so each such file the manifest lists is fetched again and checked against the manifest's
// sha256 (fetch.js) and a changed file ends the boot, named (docs/robustness-browser.md).
//
// Off the first result's path: the files that ran here (the page's, sent with "init", and the worker's own) are read
// from the HTTP cache without revalidating them (force-cache: the copy that ran, no request to the server); the
// others (the site's other pages and their scripts) are revalidated as before, but only once the runtime's Wasm has
// been requested, so their requests do not queue in front of the runtime's. (Tried in round 5, docs/perf.md §7: all
// of them only once the runtime's files were in. The runtime's compile ended earlier, but the check's ~40 responses
// then queued in this thread's event loop in front of the restore's own steps, and the first result was no sooner.)

import { UserError } from "./errors.js";
import { BASE, whenRequested } from "./fetch.js";
import { codeFiles } from "./manifest.js";
import { during } from "./phases.js";

// The worker's own code: worker.js imports every module in worker/ (and Pyodide's loader), so all of them ran.
function ranInWorker(path) {
  return path === "worker.js" || path.startsWith("worker/") || path === "pyodide/pyodide.mjs";
}

// ranOnPage: site-relative paths of the page's code that had loaded when it started the worker.
// python: the interpreter's start, so a boot that fails before requesting the Wasm does not wait for it.
export function verifyCode(ranOnPage, python) {
  const runtimeRequested = Promise.race([whenRequested("pyodide/pyodide.asm.wasm"), python.catch(() => {})]);
  return during("code_check", () => Promise.all(codeFiles().map(async (path) => {
    const ran = ranInWorker(path) || ranOnPage.has(path);
    if (!ran) await runtimeRequested;
    let response;
    try {
      response = await fetch(new URL(path, BASE), ran ? { cache: "force-cache" } : {});
    } catch (err) {
      // A file that cannot be downloaded now (offline, and not in the offline copy: sw.js, pages this one did not
      // load) was not served to this page either, so there is nothing to check; only a mismatch ends the boot.
      if (err instanceof UserError) throw err;
      return;
    }
    await response.arrayBuffer();
  })), { background: true });
}
