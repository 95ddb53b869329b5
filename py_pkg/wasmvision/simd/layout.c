// Every parameter struct's size and field offsets and the activation enum, by name: the Python binding compares
// its ctypes mirrors with this table when it loads the library, and a test builds this file with the host compiler.
#include "wvsimd_params.h"

typedef struct {
  const char *name;  // "Struct" (value = sizeof), "Struct.field" (value = offset) or an enum constant
  uint32_t value;
} LayoutEntry;

#define SIZE(S) {#S, sizeof(S)}
#define FIELD(S, f) {#S "." #f, __builtin_offsetof(S, f)}
#define CONST(E) {#E, E}

static const LayoutEntry layout[] = {
  CONST(ACT_NONE), CONST(ACT_CLIP), CONST(ACT_HARDSWISH), CONST(ACT_HARDSIGMOID),
  SIZE(ActParams), FIELD(ActParams, kind), FIELD(ActParams, lo), FIELD(ActParams, hi), FIELD(ActParams, alpha),
  FIELD(ActParams, beta),
  SIZE(GemmParams), FIELD(GemmParams, a), FIELD(GemmParams, lda), FIELD(GemmParams, bp), FIELD(GemmParams, bias),
  FIELD(GemmParams, c), FIELD(GemmParams, ldc), FIELD(GemmParams, m), FIELD(GemmParams, k), FIELD(GemmParams, n),
  FIELD(GemmParams, mc), FIELD(GemmParams, gather), FIELD(GemmParams, act),
  FIELD(GemmParams, res), FIELD(GemmParams, ldr), FIELD(GemmParams, row0),
  SIZE(DwconvParams), FIELD(DwconvParams, x), FIELD(DwconvParams, wt), FIELD(DwconvParams, bias),
  FIELD(DwconvParams, y), FIELD(DwconvParams, n), FIELD(DwconvParams, h), FIELD(DwconvParams, w),
  FIELD(DwconvParams, c), FIELD(DwconvParams, kh), FIELD(DwconvParams, kw), FIELD(DwconvParams, sh),
  FIELD(DwconvParams, sw), FIELD(DwconvParams, pt), FIELD(DwconvParams, pl), FIELD(DwconvParams, oh),
  FIELD(DwconvParams, ow), FIELD(DwconvParams, act),
  SIZE(Im2colParams), FIELD(Im2colParams, x), FIELD(Im2colParams, cols), FIELD(Im2colParams, n),
  FIELD(Im2colParams, h), FIELD(Im2colParams, w), FIELD(Im2colParams, c), FIELD(Im2colParams, kh),
  FIELD(Im2colParams, kw), FIELD(Im2colParams, sh), FIELD(Im2colParams, sw), FIELD(Im2colParams, dh),
  FIELD(Im2colParams, dw), FIELD(Im2colParams, pt), FIELD(Im2colParams, pl), FIELD(Im2colParams, oh),
  FIELD(Im2colParams, ow), FIELD(Im2colParams, c0), FIELD(Im2colParams, cg),
  SIZE(PwDwParams), FIELD(PwDwParams, pw), FIELD(PwDwParams, dw), FIELD(PwDwParams, band),
  FIELD(PwDwParams, band_oh),
  SIZE(GapParams), FIELD(GapParams, x), FIELD(GapParams, y), FIELD(GapParams, n), FIELD(GapParams, p),
  FIELD(GapParams, c), FIELD(GapParams, inv),
  {0, 0},
};

// The table, ended by a null name.
EXPORT const LayoutEntry *wv_layout(void) { return layout; }
