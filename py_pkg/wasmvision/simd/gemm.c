// SGEMM with a fused epilogue: C[M,N] = act(A[M,K] @ B[K,N] + bias[N]).
// Used for pointwise convolutions, dense layers and im2col convolutions (the stem, grouped convs).
// B is packed once at plan time (by numpy) into ceil(N/8) panels of K x 8 floats, zero-padded past N, so the
// inner loop is two aligned-stride vector loads of B plus one broadcast of A per row of the register tile.
// bias is padded the same way (ceil(N/8)*8 floats). A and C may be row-strided (lda >= K, ldc >= N) and
// need no alignment (wasm SIMD loads do not trap on misalignment).
#include "wvim2col.h"

#define NR 8

INLINE void store8(f32 *c, int ncols, v128_t lo, v128_t hi) {
  if (ncols == NR) {
    wasm_v128_store(c, lo);
    wasm_v128_store(c + 4, hi);
  } else {  // the last panel of an N that is not a multiple of 8
    f32 t[NR];
    wasm_v128_store(t, lo);
    wasm_v128_store(t + 4, hi);
    for (int j = 0; j < ncols; j++) c[j] = t[j];
  }
}

// One MR x 8 register tile: the accumulators stay in registers over the whole K loop.
#define ROW_DECL(R) const f32 *a##R = A + (long)(m + R) * lda; \
  v128_t c##R##0 = b0, c##R##1 = b1;
#define ROW_STEP(R) { v128_t a = wasm_v128_load32_splat(a##R + k); \
    c##R##0 = MADD4(c##R##0, a, p0); \
    c##R##1 = MADD4(c##R##1, a, p1); }
#define ROW_STORE(R) store8(C + (long)(m + R) * ldc, ncols, act4(c##R##0, act), act4(c##R##1, act));

#define TILE(NAME, ROWS, STEPS, STORES) \
  INLINE void NAME(const f32 *A, int lda, const f32 *bp, int K, f32 *C, int ldc, int m, int ncols, \
                   v128_t b0, v128_t b1, const Act *act) { \
    ROWS \
    for (int k = 0; k < K; k++) { \
      v128_t p0 = wasm_v128_load(bp + k * NR), p1 = wasm_v128_load(bp + k * NR + 4); \
      STEPS \
    } \
    STORES \
  }

// 4x8: 8 accumulators, the one tile for every shape: V8 compiles this simplest loop best; 5x8 and 6x8 tiles (spills),
// XNNPACK's splat form, k unrolled by 2 or 4 and constant-offset loads all measured slower (docs/perf.md §6, §9).
TILE(tile4x8, ROW_DECL(0) ROW_DECL(1) ROW_DECL(2) ROW_DECL(3),
     ROW_STEP(0) ROW_STEP(1) ROW_STEP(2) ROW_STEP(3),
     ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3))
TILE(tile2x8, ROW_DECL(0) ROW_DECL(1), ROW_STEP(0) ROW_STEP(1), ROW_STORE(0) ROW_STORE(1))
TILE(tile1x8, ROW_DECL(0), ROW_STEP(0), ROW_STORE(0))

// One row against four full panels (32 columns): 8 independent accumulators, so a single row (a dense layer at
// batch 1) is bound by the loads of B, not by the latency of two multiply-add chains as with tile1x8.
INLINE void row1x32(const f32 *a, const f32 *bp, int K, const f32 *bias, f32 *c, const Act *act) {
  const f32 *q1 = bp + (long)K * NR, *q2 = q1 + (long)K * NR, *q3 = q2 + (long)K * NR;
  v128_t c0 = wasm_v128_load(bias), c1 = wasm_v128_load(bias + 4), c2 = wasm_v128_load(bias + 8);
  v128_t c3 = wasm_v128_load(bias + 12), c4 = wasm_v128_load(bias + 16), c5 = wasm_v128_load(bias + 20);
  v128_t c6 = wasm_v128_load(bias + 24), c7 = wasm_v128_load(bias + 28);
  for (int k = 0; k < K; k++) {
    v128_t x = wasm_v128_load32_splat(a + k);
    c0 = MADD4(c0, x, wasm_v128_load(bp + k * NR)); c1 = MADD4(c1, x, wasm_v128_load(bp + k * NR + 4));
    c2 = MADD4(c2, x, wasm_v128_load(q1 + k * NR)); c3 = MADD4(c3, x, wasm_v128_load(q1 + k * NR + 4));
    c4 = MADD4(c4, x, wasm_v128_load(q2 + k * NR)); c5 = MADD4(c5, x, wasm_v128_load(q2 + k * NR + 4));
    c6 = MADD4(c6, x, wasm_v128_load(q3 + k * NR)); c7 = MADD4(c7, x, wasm_v128_load(q3 + k * NR + 4));
  }
  wasm_v128_store(c, act4(c0, act)); wasm_v128_store(c + 4, act4(c1, act));
  wasm_v128_store(c + 8, act4(c2, act)); wasm_v128_store(c + 12, act4(c3, act));
  wasm_v128_store(c + 16, act4(c4, act)); wasm_v128_store(c + 20, act4(c5, act));
  wasm_v128_store(c + 24, act4(c6, act)); wasm_v128_store(c + 28, act4(c7, act));
}

// Few rows (M < 4, e.g. a dense layer): each row against four panels at a time, the rest one panel at a time.
static void gemm_rows(const f32 *A, int lda, const f32 *Bp, const f32 *bias, f32 *C, int ldc, int M, int K, int N,
                      const Act *act) {
  int panels = (N + NR - 1) / NR;
  for (int m = 0; m < M; m++) {
    const f32 *a = A + (long)m * lda;
    int p = 0;
    for (; (p + 4) * NR <= N; p += 4)
      row1x32(a, Bp + (long)p * K * NR, K, bias + p * NR, C + (long)m * ldc + p * NR, act);
    for (; p < panels; p++) {
      int n0 = p * NR, ncols = N - n0 < NR ? N - n0 : NR;
      tile1x8(A, lda, Bp + (long)p * K * NR, K, C + n0, ldc, m, ncols, wasm_v128_load(bias + n0),
              wasm_v128_load(bias + n0 + 4), act);
    }
  }
}

// mc: rows per block, so a block of A stays in cache while every panel of
// B passes over it (each panel, K x 8 floats, stays in L1 across the block's tiles).
static void gemm(const f32 *A, int lda, const f32 *Bp, const f32 *bias, f32 *C, int ldc, int M, int K, int N,
                 int mc, const Act *act) {
  int panels = (N + NR - 1) / NR;
  if (M < 4) {
    gemm_rows(A, lda, Bp, bias, C, ldc, M, K, N, act);
    return;
  }
  if (mc <= 0) mc = 64;
  for (int m0 = 0; m0 < M; m0 += mc) {
    int m1 = m0 + mc < M ? m0 + mc : M;
    for (int p = 0; p < panels; p++) {
      int n0 = p * NR;
      int ncols = N - n0 < NR ? N - n0 : NR;
      const f32 *bp = Bp + (long)p * K * NR;
      v128_t b0 = wasm_v128_load(bias + n0), b1 = wasm_v128_load(bias + n0 + 4);
      f32 *Cp = C + n0;
      int m = m0;
      for (; m + 4 <= m1; m += 4) tile4x8(A, lda, bp, K, Cp, ldc, m, ncols, b0, b1, act);
      for (; m + 2 <= m1; m += 2) tile2x8(A, lda, bp, K, Cp, ldc, m, ncols, b0, b1, act);
      for (; m < m1; m++) tile1x8(A, lda, bp, K, Cp, ldc, m, ncols, b0, b1, act);
    }
  }
}

// C[m] = act(C[m] + R[m]) over rows: the residual add after a block's GEMM (run with no activation), while the block
// is still in L1; the same order of rounding as a GEMM and then an add.
static void add_rows(f32 *C, int ldc, const f32 *R, int ldr, int rows, int N, const Act *act) {
  for (int m = 0; m < rows; m++, C += ldc, R += ldr) {
    int j = 0;
    for (; j + 4 <= N; j += 4)
      wasm_v128_store(C + j, act4(wasm_f32x4_add(wasm_v128_load(C + j), wasm_v128_load(R + j)), act));
    for (; j < N; j++) C[j] = act1(C[j] + R[j], act);
  }
}

// One argument, the address of the parameters (GemmParams), so a call from Python costs ~1 us. With a gather
// (an im2col conv), each block of mc rows is gathered into A's block buffer and multiplied while it is in L1,
// instead of writing every window to memory and reading it back. With a residual, each block gets it added
// (and then the activation) right after its GEMM.
EXPORT void wv_gemm(const GemmParams *p) {
  Act act = act_read(&p->act), linear = act;
  linear.kind = ACT_NONE;
  f32 *A = PTR(p->a), *C = PTR(p->c);
  const f32 *R = PTR(p->res);
  int M = (int)p->m, K = (int)p->k, N = (int)p->n, lda = (int)p->lda, ldc = (int)p->ldc, ldr = (int)p->ldr;
  int mc = p->mc > 0 ? (int)p->mc : 64;
  if (!p->gather && !p->res) {
    gemm(A, lda, PTR(p->bp), PTR(p->bias), C, ldc, M, K, N, mc, &act);
    return;
  }
  const Im2colParams *g = (const Im2colParams *)(uintptr_t)p->gather;
  for (int m0 = 0; m0 < M; m0 += mc) {
    int rows = M - m0 < mc ? M - m0 : mc;
    const f32 *a = A + (long)m0 * lda;
    if (g) {
      im2col_rows(g, (long)p->row0 + m0, (long)p->row0 + m0 + rows, A);
      a = A;
    }
    f32 *c = C + (long)m0 * ldc;
    gemm(a, lda, PTR(p->bp), PTR(p->bias), c, ldc, rows, K, N, mc, R ? &linear : &act);
    if (R) add_rows(c, ldc, R + (long)m0 * ldr, ldr, rows, N, &act);
  }
}
