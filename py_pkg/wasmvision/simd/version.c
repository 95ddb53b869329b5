// The library's interface version: the Python binding refuses a library built for another parameter layout.
#include "wvsimd.h"

EXPORT int wv_version(void) { return 2; }
