// The library's interface version: the Python binding refuses a library built for another parameter layout.
#include "wvsimd.h"

EXPORT int wv_version(void) { return 2; }

// Which instruction set this copy was compiled for: 0 Wasm SIMD128 (mul+add), 1 relaxed SIMD (relaxed_madd).
EXPORT int wv_build(void) { return WV_BUILD; }
