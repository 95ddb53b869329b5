// Test-only: breaks the interpreter the way a runaway allocation does, so tests/test_browser_hostile.py can show the
// worker recovers (recovery.js) without needing gigabytes of real work. Inert unless the site's manifest.json has
// "testHooks" (build.py never writes it; the test adds it to a copy of dist/, whose files it checks as usual).
//   "testHooks": {"breakBeforeClassify": <count>, "mode": "fatal" | "heap"}  (classify requests in the first worker)

import { runtime } from "./boot.js";
import { manifest } from "./manifest.js";
import { forceFatalError } from "./pyodide-0.27.7.js";

export function beforeRequest(msg) {
  const hooks = manifest.raw?.testHooks;
  // Only in the page's first worker: its replacement must show that recovery worked.
  if (!hooks?.breakBeforeClassify || msg.type !== "classify" || !runtime.pyodide || runtime.timings.restarts) return;
  hooks.breakBeforeClassify -= 1;
  if (hooks.mode === "heap") {
    // What the 1x3x4000x4000 model did before plans were bounded: a heap past 2 GiB.
    runtime.pyodide.runPython("import builtins; builtins._wasmvision_test_ballast = [bytearray(2**29) for _ in range(5)]");
  } else {
    // Rethrows its error, as a real fatal error does from inside the call that caused it.
    forceFatalError(runtime.pyodide, new Error("wasmvision test hook: forced fatal error"));
  }
}
