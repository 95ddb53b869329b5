// Shared by the depthwise kernel files (dwconv.c: dispatch, 3x3 stride-1 rows, the per-pixel
// paths; dwconv_rows.c: window-row kernels for 5x5 and 3x3 stride 2).
#ifndef WVDWCONV_H
#define WVDWCONV_H

#include "wvsimd.h"

// V8 allocates registers per function: each row kernel is its own small function, never inlined into a caller.
#define NOINLINE __attribute__((noinline))

INLINE int imax(int a, int b) { return a > b ? a : b; }
INLINE int imin(int a, int b) { return a < b ? a : b; }

// The row kernels are compiled once per activation form (with the kind read inside the loop they ran 4-5 %
// slower): none and clip are one clamp (none with infinite bounds, which keep NaN), hardswish, any other.
enum { DW_ACT_ANY = 0, DW_ACT_CLAMP = 1, DW_ACT_HARDSWISH = 2 };

INLINE int dw_act_form(Act *a) {
  if (a->kind == ACT_NONE) {
    a->lo = wasm_f32x4_splat(-__builtin_inff());
    a->hi = wasm_f32x4_splat(__builtin_inff());
  }
  return a->kind == ACT_NONE || a->kind == ACT_CLIP ? DW_ACT_CLAMP
         : a->kind == ACT_HARDSWISH                  ? DW_ACT_HARDSWISH
                                                     : DW_ACT_ANY;
}

INLINE v128_t dw_act(v128_t v, const Act *a, int form) {
  if (form == DW_ACT_CLAMP) return clamp4(v, a->lo, a->hi);
  if (form == DW_ACT_HARDSWISH)
    return wasm_f32x4_mul(v, clamp4(wasm_f32x4_add(wasm_f32x4_mul(v, a->alpha), a->beta), a->zero, a->one));
  return act4(v, a);
}

// One output pixel, channels [c, C), taps [ky0,ky1) x [kx0,kx1) of the KH x KW kernel (all inside the image).
void dw_pixel(const f32 *x, int W, int C, const f32 *w, int KW, const f32 *bias, f32 *y, int c, int iy0, int ix0,
              int ky0, int ky1, int kx0, int kx1, const Act *act);

// Window-row kernels (dwconv_rows.c): KxK with stride S along x, any stride along y, any padding.
void dw5s1_layer(const DwconvParams *p);
void dw5s2_layer(const DwconvParams *p);
void dw3s2_layer(const DwconvParams *p);

#endif
