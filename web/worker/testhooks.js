// Test-only: breaks the interpreter the way a runaway allocation does, so tests/test_browser_hostile.py can show the
// worker recovers (recovery.js) without needing gigabytes of real work. Inert unless the site's manifest.json has
// "testHooks" (build.py never writes it; the test adds it to a copy of dist/, whose files it checks as usual).
//   "testHooks": {"breakBeforeClassify": <count>, "mode": "fatal" | "heap"}  (classify requests in the first worker)
//   "testHooks": {"traceImports": true}: from the first request on, Python records every module name no finder found,
//   and self.wasmvisionImportTrace(names) returns those, each loaded module's origin, the request types served, how
//   Python booted and which of `names` it cannot read the code of (tests/test_browser_stdlib_paths.py).

import { runtime } from "./boot.js";
import { manifest } from "./manifest.js";
import { forceFatalError } from "./pyodide-0.27.7.js";

// A finder last on sys.meta_path sees exactly the names every other finder missed (an ImportError unless caught).
const TRACE_INSTALL = [
  "import builtins, sys",
  "class _WasmvisionMissed:",
  "    names = []",
  "    @classmethod",
  "    def find_spec(cls, name, path=None, target=None):",
  "        cls.names.append(name)",
  "sys.meta_path.append(_WasmvisionMissed)",
  "builtins._wasmvision_missed = _WasmvisionMissed.names",
].join("\n");
// `readable`: module names whose code the import system must be able to read (find_spec and get_code, not run).
const TRACE_REPORT = (readable) => [
  "import builtins, importlib.util, json, sys",
  "def _origin(m):",
  "    spec = getattr(m, '__spec__', None)",
  "    return [getattr(spec, 'origin', None), type(getattr(spec, 'loader', None)).__name__]",
  "def _unreadable(name):",
  "    if '.' in name and name.rpartition('.')[0] not in sys.modules:",
  "        return None  # finding it would run its package's code",
  "    try:",
  "        spec = importlib.util.find_spec(name)",
  "        if spec.origin not in ('frozen', 'built-in'):  # those have no file to read",
  "            spec.loader.get_code(name)",
  "    except Exception as e:",
  "        return f'{type(e).__name__}: {e}'",
  "json.dumps({'missed': builtins._wasmvision_missed, 'path': sys.path,",
  "            'modules': {name: _origin(m) for name, m in list(sys.modules.items())},",
  `            'unreadable': {n: w for n in json.loads(${JSON.stringify(JSON.stringify(readable))}) if (w := _unreadable(n))}})`,
].join("\n");
const traced = new Set(); // request types served since the trace began

function traceImports(msg) {
  if (!traced.size) {
    runtime.pyodide.runPython(TRACE_INSTALL);
    self.wasmvisionImportTrace = (readable = []) => ({ requests: [...traced], boot: runtime.timings.snapshot,
      ...JSON.parse(runtime.pyodide.runPython(TRACE_REPORT(readable))) });
  }
  traced.add(msg.type);
}

export function beforeRequest(msg) {
  const hooks = manifest.raw?.testHooks;
  if (hooks?.traceImports && runtime.pyodide) traceImports(msg);
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
