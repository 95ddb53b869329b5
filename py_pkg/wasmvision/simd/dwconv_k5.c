// Depthwise 5x5, stride 1 along x: row kernels. The 25 weights of a 4-channel block do not fit the registers
// (16 on x64) beside the sums, so the window is taken one row at a time: that row's 5 weights in registers, the
// input columns sliding through 5 registers along x (one load per output), the partial sums kept in y (bias on
// the window's first row, the activation on its last). Columns outside the image are zero registers, never
// read, so the pad-2 borders run inside the row. Whole rows, no x tiles: the 4 channel blocks that share a
// cache line follow each other, so a line is reused while the window's rows (5 x W x 64 bytes) are in L1.
#include "wvdwconv.h"

// Output j of the row: one more column (V) enters, the window r0..r4 is complete, r0 leaves.
#define DW5_STEP(V)                                                                     \
  {                                                                                     \
    v128_t r4 = (V), a = first ? b : wasm_v128_load(q);                                 \
    a = MADD4(a, r0, k0); a = MADD4(a, r1, k1); a = MADD4(a, r2, k2);                   \
    a = MADD4(a, r3, k3); a = MADD4(a, r4, k4);                                         \
    wasm_v128_store(q, last ? act4(a, act) : a);                                        \
    r0 = r1; r1 = r2; r2 = r3; r3 = r4;                                                 \
    q += C;                                                                             \
  }

// One window row's contribution to n outputs of one output row, channels [c, c + 4): x = the input row at the
// first output's first column (channel c), w = the weight row (channel c); relative columns [lo, hi) are inside
// the image. first: the sums start from the bias; last: they leave through the activation.
INLINE void dw5_row(const f32 *x, const f32 *w, const f32 *bias, f32 *y, long C, int n, int lo, int hi, int first,
                    int last, const Act *act) {
  const v128_t k0 = wasm_v128_load(w), k1 = wasm_v128_load(w + C), k2 = wasm_v128_load(w + 2 * C);
  const v128_t k3 = wasm_v128_load(w + 3 * C), k4 = wasm_v128_load(w + 4 * C), b = wasm_v128_load(bias);
  const v128_t z = wasm_f32x4_splat(0.0f);
  v128_t r0 = lo <= 0 && 0 < hi ? wasm_v128_load(x) : z;
  v128_t r1 = lo <= 1 && 1 < hi ? wasm_v128_load(x + C) : z;
  v128_t r2 = lo <= 2 && 2 < hi ? wasm_v128_load(x + 2 * C) : z;
  v128_t r3 = lo <= 3 && 3 < hi ? wasm_v128_load(x + 3 * C) : z;
  f32 *q = y;
  int j = 0, ja = imin(n, imax(0, lo - 4)), jb = imin(n, imax(ja, hi - 4));
  for (; j < ja; j++) DW5_STEP(z)
  for (const f32 *p = x + (long)(j + 4) * C; j < jb; j++, p += C) DW5_STEP(wasm_v128_load(p))
  for (; j < n; j++) DW5_STEP(z)
}

// One function per (first, last): a window row's pass without the other cases' selects (5 % faster).
#define ROW(NAME, FIRST, LAST)                                                                                 \
  static NOINLINE void NAME(const f32 *x, const f32 *w, const f32 *bias, f32 *y, long C, int n, int lo, int hi, \
                            const Act *act) {                                                                  \
    dw5_row(x, w, bias, y, C, n, lo, hi, FIRST, LAST, act);                                                    \
  }
ROW(dw5_row_first, 1, 0) ROW(dw5_row_mid, 0, 0) ROW(dw5_row_last, 0, 1) ROW(dw5_row_only, 1, 1)

void dw5s1_layer(const DwconvParams *p) {
  const f32 *X = PTR(p->x), *Wt = PTR(p->wt), *bias = PTR(p->bias);
  f32 *Y = PTR(p->y);
  int N = (int)p->n, H = (int)p->h, W = (int)p->w, C = (int)p->c, C4 = C & ~3;
  int sh = (int)p->sh, pt = (int)p->pt, pl = (int)p->pl, OH = (int)p->oh, OW = (int)p->ow;
  Act act = act_read(&p->act);
  long rs = (long)W * C;
  for (int n = 0; n < N; n++) {
    const f32 *x = X + (long)n * H * rs;
    for (int oy = 0; oy < OH; oy++) {
      int iy0 = oy * sh - pt, ky0 = imax(0, -iy0), ky1 = imin(5, H - iy0);
      f32 *y = Y + ((long)n * OH + oy) * OW * C;
      if (ky1 <= ky0 || C4 == 0) {  // a row wholly in the padding, or fewer than 4 channels: per pixel
        for (int ox = 0; ox < OW; ox++)
          dw_pixel(x, W, C, Wt, 5, bias, y + (long)ox * C, 0, iy0, ox - pl, ky0, imax(ky0, ky1), imax(0, pl - ox),
                   imin(5, W - ox + pl), &act);
        continue;
      }
      const f32 *xr = x - (long)pl * C;  // column -pl: outputs' windows start there (outside the image: not read)
      for (int c = 0; c < C4; c += 4) {
        const f32 *xc = xr + c, *wc = Wt + c, *bc = bias + c;
        f32 *yc = y + c;
        if (ky1 - ky0 == 1) {
          dw5_row_only(xc + (long)(iy0 + ky0) * rs, wc + ky0 * 5L * C, bc, yc, C, OW, pl, W + pl, &act);
          continue;
        }
        dw5_row_first(xc + (long)(iy0 + ky0) * rs, wc + ky0 * 5L * C, bc, yc, C, OW, pl, W + pl, &act);
        for (int ky = ky0 + 1; ky < ky1 - 1; ky++)
          dw5_row_mid(xc + (long)(iy0 + ky) * rs, wc + ky * 5L * C, bc, yc, C, OW, pl, W + pl, &act);
        dw5_row_last(xc + (long)(iy0 + ky1 - 1) * rs, wc + (ky1 - 1) * 5L * C, bc, yc, C, OW, pl, W + pl, &act);
      }
      if (C4 < C)
        for (int ox = 0; ox < OW; ox++)
          dw_pixel(x, W, C, Wt, 5, bias, y + (long)ox * C, C4, iy0, ox - pl, ky0, ky1, imax(0, pl - ox),
                   imin(5, W - ox + pl), &act);
    }
  }
}
