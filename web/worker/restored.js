// The Python a restored interpreter runs before anything else (boot.js restore): what its heap remembers of the
// machine that made it is brought up to date, and a heap that does not fit this runtime fails here, not in a classify.

import { plansKernels } from "./dylibs.js";

// Python run after restoring the shipped snapshot: what was seeded at the build machine's start must not be shared
// by every visitor. The hash seed cannot change once Python runs (str hashes are cached in the heap): it stays the
// build's, which only matters to hash-flooding attacks on a single user's own interpreter.
const RESEED = [
  "import sys",
  "if 'random' in sys.modules: sys.modules['random'].seed()",
  "if 'numpy.random' in sys.modules: sys.modules['numpy.random'].seed()",
  "if 'tempfile' in sys.modules: sys.modules['tempfile']._name_sequence = None",
].join("\n");

// Python run right after a restore. The files are new: the import system must list site-packages again, and every
// zipimporter in the heap (module loaders, the directory cache) must read the table of contents of the stdlib zip it
// is given now (`stdlibSha256`: its manifest hash), not the offsets into the zip the snapshot's maker read; a heap
// that already read that very zip's (a visitor's snapshot) is left as it is (~20 ms). numpy's ufuncs and the kernel
// library's entry points call through function-table slots that only line up when every side module got the table
// base it had when the snapshot was made.
function restoredCheck(libs, stdlibSha256) {
  const lines = [
    "import sys, numpy",
    "from importlib.machinery import FileFinder",
    "for _f in list(sys.path_importer_cache.values()):",
    "    if isinstance(_f, FileFinder): _f.invalidate_caches()",
    "import zipimport",
    `_stdlib = ${/^[0-9a-f]{64}$/.test(stdlibSha256 ?? "") ? `"${stdlibSha256}"` : "None"}`,
    "if _stdlib is None or getattr(zipimport, '_wv_directory_of', None) != _stdlib:",
    "    _tocs = {}",
    "    for _l in [getattr(getattr(_m, '__spec__', None), 'loader', None) for _m in list(sys.modules.values())]:",
    "        if isinstance(_l, zipimport.zipimporter):",
    "            _l._files = _tocs.get(_l.archive) or _tocs.setdefault(_l.archive, " +
      "zipimport._read_directory(_l.archive))",
    "    zipimport._zip_directory_cache.clear(); zipimport._zip_directory_cache.update(_tocs)",
    "    zipimport._wv_directory_of = _stdlib",
    "assert float(numpy.arange(4.0).sum()) == 6.0, 'numpy after restore'",
  ];
  if (plansKernels(libs)) {
    lines.push("from wasmvision.simd import default_library", "_lib, _why = default_library()",
      "assert _lib is not None and _lib.still_linked(), 'kernels after restore'", "del _lib, _why");
  }
  return lines.join("\n");
}

// Both, as one script: `libs` the side modules the heap was made with, `stdlibSha256` the given stdlib zip's hash.
export function afterRestore(libs, stdlibSha256) {
  return `${restoredCheck(libs, stdlibSha256)}\n${RESEED}`;
}
