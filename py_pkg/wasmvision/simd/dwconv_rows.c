// Depthwise window-row kernels: 5x5 (stride 1 or 2 along x) and 3x3 stride 2. The 25 weights of a 4-channel
// block do not fit the registers (16 on x64) beside the sums, so the window is taken one row at a time: that
// row's K weights in registers, the input columns sliding through K registers along x (S loads per output), the
// partial sums kept in y (bias on the window's first row, the activation on its last). Columns outside the
// image are zero registers, never read, so the borders run inside the row. Whole rows, no x tiles: the 4 channel
// blocks that share a cache line follow each other, so a line is reused while the window's rows are in L1.
#include "wvdwconv.h"

// Relative column I of the row: loaded, or zero outside the image (columns [lo, hi) are inside).
#define COL_CLIPPED(I) (lo <= (I) && (I) < hi ? wasm_v128_load(x + (long)(I) * C) : z)
#define COL_INSIDE(I) wasm_v128_load(x + (long)(I) * C)

// Output j: its window's last S columns enter, K multiply-adds, the first S columns leave.
#define STEP(COL)                                                                       \
  {                                                                                     \
    int i0 = S * j + K - S;                                                             \
    if (K == 5 && S == 1) {                                                             \
      r4 = COL(i0);                                                                     \
    } else if (K == 5) {                                                                \
      r3 = COL(i0); r4 = COL(i0 + 1);                                                   \
    } else {                                                                            \
      r1 = COL(i0); r2 = COL(i0 + 1);                                                   \
    }                                                                                   \
    v128_t a = first ? b : wasm_v128_load(q);                                           \
    a = MADD4(a, r0, k0); a = MADD4(a, r1, k1); a = MADD4(a, r2, k2);                   \
    if (K == 5) { a = MADD4(a, r3, k3); a = MADD4(a, r4, k4); }                         \
    wasm_v128_store(q, last ? dw_act(a, act, form) : a);                                \
    if (K == 5 && S == 1) { r0 = r1; r1 = r2; r2 = r3; r3 = r4; }                       \
    else if (K == 5) { r0 = r2; r1 = r3; r2 = r4; }                                     \
    else r0 = r2;                                                                       \
    q += C;                                                                             \
  }

// One window row's contribution to n outputs of one output row, channels [c, c + 4): x = the input row at
// relative column 0 (output j's window starts at column S*j), channel c; w = the weight row (channel c).
// first: the sums start from the bias; last: they leave through the activation.
INLINE void dw_row(const f32 *x, const f32 *w, const f32 *bias, f32 *y, long C, int n, int lo, int hi, int K, int S,
                   int first, int last, int form, const Act *act) {
  const v128_t z = wasm_f32x4_splat(0.0f), b = wasm_v128_load(bias);
  const v128_t k0 = wasm_v128_load(w), k1 = wasm_v128_load(w + C), k2 = wasm_v128_load(w + 2 * C);
  const v128_t k3 = K == 5 ? wasm_v128_load(w + 3 * C) : z, k4 = K == 5 ? wasm_v128_load(w + 4 * C) : z;
  v128_t r0 = COL_CLIPPED(0), r1 = z, r2 = z, r3 = z, r4 = z;  // the first K - S columns
  if (K - S > 1) r1 = COL_CLIPPED(1);
  if (K - S > 2) r2 = COL_CLIPPED(2);
  if (K - S > 3) r3 = COL_CLIPPED(3);
  f32 *q = y;
  // outputs [ja, jb): every new column inside the image
  int ja = imin(n, imax(0, (lo - K + 2 * S - 1) / S)), jb = imin(n, imax(ja, (hi - K + S) / S)), j = 0;
  for (; j < ja; j++) STEP(COL_CLIPPED)
  for (; j < jb; j++) STEP(COL_INSIDE)
  for (; j < n; j++) STEP(COL_CLIPPED)
}

// One function per (K, S, first, last, activation form): V8 allocates registers per function, and the selects
// of the other cases cost 5 %.
#define ROW(K, S, FIRST, LAST, F, NAME)                                                                          \
  static NOINLINE void dw##K##s##S##_row_##NAME(const f32 *x, const f32 *w, const f32 *bias, f32 *y, long C,     \
                                                int n, int lo, int hi, const Act *act) {                         \
    dw_row(x, w, bias, y, C, n, lo, hi, K, S, FIRST, LAST, F, act);                                              \
  }
#define ROWS(K, S)                                                                                               \
  ROW(K, S, 1, 0, 0, first) ROW(K, S, 0, 0, 0, mid) ROW(K, S, 0, 1, 0, last_0) ROW(K, S, 0, 1, 1, last_1)        \
  ROW(K, S, 0, 1, 2, last_2) ROW(K, S, 1, 1, 0, only_0) ROW(K, S, 1, 1, 1, only_1) ROW(K, S, 1, 1, 2, only_2)
ROWS(5, 1) ROWS(5, 2) ROWS(3, 2)

#define PASS(K, S, NAME, KY) \
  dw##K##s##S##_row_##NAME(xc + (long)(iy0 + (KY)) * rs, wc + (KY) * (long)K * C, bc, yc, C, OW, pl, W + pl, &act)
#define PASS_ACT(K, S, NAME, KY)                                                                                 \
  (form == DW_ACT_CLAMP ? PASS(K, S, NAME##_1, KY) : form == DW_ACT_HARDSWISH ? PASS(K, S, NAME##_2, KY)         \
                                                   : PASS(K, S, NAME##_0, KY))

#define LAYER(K, S)                                                                                              \
  void dw##K##s##S##_layer(const DwconvParams *p) {                                                              \
    const f32 *X = PTR(p->x), *Wt = PTR(p->wt), *bias = PTR(p->bias);                                            \
    f32 *Y = PTR(p->y);                                                                                          \
    int N = (int)p->n, H = (int)p->h, W = (int)p->w, C = (int)p->c, C4 = C & ~3;                                 \
    int sh = (int)p->sh, pt = (int)p->pt, pl = (int)p->pl, OH = (int)p->oh, OW = (int)p->ow;                     \
    Act act = act_read(&p->act);                                                                                 \
    int form = dw_act_form(&act);                                                                                \
    long rs = (long)W * C;                                                                                       \
    for (int n = 0; n < N; n++) {                                                                                \
      const f32 *x = X + (long)n * H * rs;                                                                       \
      for (int oy = 0; oy < OH; oy++) {                                                                          \
        int iy0 = oy * sh - pt, ky0 = imax(0, -iy0), ky1 = imax(ky0, imin(K, H - iy0));                          \
        f32 *y = Y + ((long)n * OH + oy) * OW * C;                                                               \
        int c0 = ky1 > ky0 ? C4 : 0;  /* a row wholly in the padding: per pixel (the bias alone) */              \
        for (int c = 0; c < c0; c += 4) {                                                                        \
          const f32 *xc = x - (long)pl * C + c, *wc = Wt + c, *bc = bias + c; /* column -pl: not read */         \
          f32 *yc = y + c;                                                                                       \
          if (ky1 - ky0 == 1) {                                                                                  \
            PASS_ACT(K, S, only, ky0);                                                                           \
            continue;                                                                                            \
          }                                                                                                      \
          PASS(K, S, first, ky0);                                                                                \
          for (int ky = ky0 + 1; ky < ky1 - 1; ky++) PASS(K, S, mid, ky);                                        \
          PASS_ACT(K, S, last, ky1 - 1);                                                                         \
        }                                                                                                        \
        if (c0 < C) /* the channels past the last multiple of 4 */                                               \
          for (int ox = 0; ox < OW; ox++) {                                                                      \
            int ix0 = ox * S - pl;                                                                               \
            dw_pixel(x, W, C, Wt, K, bias, y + (long)ox * C, c0, iy0, ix0, ky0, ky1, imax(0, -ix0),              \
                     imin(K, W - ix0), &act);                                                                    \
          }                                                                                                      \
      }                                                                                                          \
    }                                                                                                            \
  }
LAYER(5, 1) LAYER(5, 2) LAYER(3, 2)
