// Shared by the depthwise kernel files (dwconv.c: dispatch, 3x3 stride-1 rows, the per-pixel
// paths; dwconv_rows.c: window-row kernels for 5x5 and 3x3 stride 2).
#ifndef WVDWCONV_H
#define WVDWCONV_H

#include "wvsimd.h"

// V8 allocates registers per function: each row kernel is its own small function, never inlined into a caller.
#define NOINLINE __attribute__((noinline))

INLINE int imax(int a, int b) { return a > b ? a : b; }
INLINE int imin(int a, int b) { return a < b ? a : b; }

// One output pixel, channels [c, C), taps [ky0,ky1) x [kx0,kx1) of the KH x KW kernel (all inside the image).
void dw_pixel(const f32 *x, int W, int C, const f32 *w, int KW, const f32 *bias, f32 *y, int c, int iy0, int ix0,
              int ky0, int ky1, int kx0, int kx1, const Act *act);

// Window-row kernels (dwconv_rows.c): KxK with stride S along x, any stride along y, any padding.
void dw5s1_layer(const DwconvParams *p);
void dw5s2_layer(const DwconvParams *p);
void dw3s2_layer(const DwconvParams *p);

#endif
