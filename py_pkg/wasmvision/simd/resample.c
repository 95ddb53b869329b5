// Preprocessing kernels: Pillow's fixed-point bilinear resample, one pass per call, on the rows and columns the
// caller keeps, and the store of the kept pixels into the network's float32 input. The binding
// (preprocess_ops.py) chooses the pass order and computes the weights, with the numpy path's own code.
#include "wvresample.h"

EXPORT int wv_resample_h_params_size(void) { return sizeof(wv_resample_h_params); }
EXPORT int wv_resample_v_params_size(void) { return sizeof(wv_resample_v_params); }
EXPORT int wv_store_f32_params_size(void) { return sizeof(wv_store_f32_params); }

// Pillow's clip8 on four sums: shift out the fraction, saturate to 0..255, the four bytes in lane 0.
INLINE v128_t clip8_4(v128_t acc) {
  v128_t v = wasm_i32x4_shr(acc, WV_PRECISION_BITS);
  v128_t w = wasm_i16x8_narrow_i32x4(v, v);
  return wasm_u8x16_narrow_i16x8(w, w);
}

INLINE uint8_t clip8_1(int32_t acc) {
  int32_t v = acc >> WV_PRECISION_BITS;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Horizontal, RGBA (c4: 4-byte pixels, alpha filtered too and dropped by the store) and RGB (c3: 3-byte pixels,
// written as 4-byte pixels whose fourth byte is 0). Two taps at a time: the two pixels' channels interleaved as
// i16 (swizzle indices >= 16 give 0, the zero extension) and one i32x4.dot_i16x8_s per weight half gives four
// channel sums of two taps; Pillow's 22-bit weights do not fit in i16, so each is split w = hi * 2^11 + lo
// (wv_taps.split) and the two exact sums are joined at the end. Four rows share each weight load.
#define SWZ_C4 wasm_i8x16_const(0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7, -1)
#define SWZ_C3 wasm_i8x16_const(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1)
#define H_ROWS 4

// Two pixels from a; `last`: they are the output's last taps, so for RGB not one byte after them is read.
INLINE v128_t pixel_pair(const uint8_t *a, uint32_t c, int last) {
  if (c == 4) return wasm_i8x16_swizzle(wasm_v128_load64_zero(a), SWZ_C4);
  if (!last) return wasm_i8x16_swizzle(wasm_v128_load64_zero(a), SWZ_C3);
  return wasm_i8x16_swizzle(wasm_v128_load16_lane(a + 4, wasm_v128_load32_zero(a), 2), SWZ_C3);
}

INLINE v128_t pixel_one(const uint8_t *a, uint32_t c) {  // the second pixel of the pair is 0
  if (c == 4) return wasm_i8x16_swizzle(wasm_v128_load32_zero(a), SWZ_C4);
  return wasm_i8x16_swizzle(wasm_v128_load8_lane(a + 2, wasm_v128_load16_lane(a, wasm_i32x4_splat(0), 0), 2),
                            SWZ_C3);
}

INLINE v128_t dot_acc(v128_t acc, v128_t px, v128_t w) { return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(px, w)); }

// The split sums joined: Pillow's integer sum (the same int32 as w * pixel summed directly) plus the rounding half.
INLINE v128_t split_sum(v128_t hi, v128_t lo) {
  return wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_shl(hi, WV_SPLIT_BITS), lo), wasm_i32x4_splat(WV_HALF));
}

// `rows` (H_ROWS or 1, a constant after inlining) rows of one output pixel.
INLINE void h_pixel(const wv_taps *t, uint32_t x, const uint8_t *s, uint32_t sr, uint8_t *d, uint32_t dr,
                    uint32_t c, uint32_t rows) {
  const int16_t *w = t->split + (uintptr_t)x * t->pairs * 4;
  const uint8_t *a = s + c * t->first[x];
  v128_t hi[H_ROWS], lo[H_ROWS];
  for (uint32_t r = 0; r < rows; r++) hi[r] = lo[r] = wasm_i32x4_splat(0);
  int32_t n = t->count[x], i = 0;
  for (; i + 2 < n; i += 2, w += 4, a += 2 * c) {
    v128_t wh = wasm_v128_load32_splat(w), wl = wasm_v128_load32_splat(w + 2);
    for (uint32_t r = 0; r < rows; r++) {
      v128_t q = pixel_pair(a + r * sr, c, 0);
      hi[r] = dot_acc(hi[r], q, wh); lo[r] = dot_acc(lo[r], q, wl);
    }
  }
  if (i < n) {
    v128_t wh = wasm_v128_load32_splat(w), wl = wasm_v128_load32_splat(w + 2);
    for (uint32_t r = 0; r < rows; r++) {
      v128_t q = i + 2 == n ? pixel_pair(a + r * sr, c, 1) : pixel_one(a + r * sr, c);
      hi[r] = dot_acc(hi[r], q, wh); lo[r] = dot_acc(lo[r], q, wl);
    }
  }
  for (uint32_t r = 0; r < rows; r++) wasm_v128_store32_lane(d + r * dr + 4 * x, clip8_4(split_sum(hi[r], lo[r])), 0);
}

INLINE void h_rows(const wv_resample_h_params *p, uint32_t c) {
  uint32_t y = 0, sr = p->src_row, dr = p->dst_row;
  for (; y + H_ROWS <= p->rows; y += H_ROWS)
    for (uint32_t x = 0; x < p->cols; x++)
      h_pixel(&p->taps, x, p->src + (uintptr_t)y * sr, sr, p->dst + (uintptr_t)y * dr, dr, c, H_ROWS);
  for (; y < p->rows; y++)
    for (uint32_t x = 0; x < p->cols; x++)
      h_pixel(&p->taps, x, p->src + (uintptr_t)y * sr, sr, p->dst + (uintptr_t)y * dr, dr, c, 1);
}

EXPORT void wv_resample_h_u8_c4(const wv_resample_h_params *p) { h_rows(p, 4); }
EXPORT void wv_resample_h_u8_c3(const wv_resample_h_params *p) { h_rows(p, 3); }

// Horizontal, any pixel stride, the first `channels` (1..4) bytes of each pixel: gray, gray+alpha.
EXPORT void wv_resample_h_u8_cn(const wv_resample_h_params *p) {
  const wv_taps *t = &p->taps;
  uint32_t ps = p->src_pixel, nc = p->channels;
  for (uint32_t y = 0; y < p->rows; y++) {
    const uint8_t *s = p->src + (uintptr_t)y * p->src_row;
    uint8_t *d = p->dst + (uintptr_t)y * p->dst_row;
    for (uint32_t x = 0; x < p->cols; x++) {
      const int32_t *k = t->coeffs + (uintptr_t)x * t->ksize;
      const uint8_t *a = s + ps * t->first[x];
      int32_t n = t->count[x];
      for (uint32_t c = 0; c < nc; c++) {
        int32_t acc = WV_HALF;
        for (int32_t i = 0; i < n; i++) acc += (int32_t)a[ps * i + c] * k[i];
        d[nc * x + c] = clip8_1(acc);
      }
    }
  }
}

// Vertical: 16 bytes of a row at a time, two taps' rows interleaved byte by byte, the same split dot products
// as the horizontal pass (four i32x4 sums of hi, four of lo); an odd last tap's row is paired with itself (its
// pair's second weight is 0).
INLINE v128_t zip_lo(v128_t a, v128_t b) {
  return wasm_i8x16_shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}
INLINE v128_t zip_hi(v128_t a, v128_t b) {
  return wasm_i8x16_shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}

INLINE void v_dots(v128_t a, v128_t b, v128_t wh, v128_t wl, v128_t *hi, v128_t *lo) {
  v128_t z0 = zip_lo(a, b), z1 = zip_hi(a, b);
  v128_t q0 = wasm_u16x8_extend_low_u8x16(z0), q1 = wasm_u16x8_extend_high_u8x16(z0);
  v128_t q2 = wasm_u16x8_extend_low_u8x16(z1), q3 = wasm_u16x8_extend_high_u8x16(z1);
  hi[0] = dot_acc(hi[0], q0, wh); lo[0] = dot_acc(lo[0], q0, wl);
  hi[1] = dot_acc(hi[1], q1, wh); lo[1] = dot_acc(lo[1], q1, wl);
  hi[2] = dot_acc(hi[2], q2, wh); lo[2] = dot_acc(lo[2], q2, wl);
  hi[3] = dot_acc(hi[3], q3, wh); lo[3] = dot_acc(lo[3], q3, wl);
}

INLINE v128_t split_shift(v128_t hi, v128_t lo) { return wasm_i32x4_shr(split_sum(hi, lo), WV_PRECISION_BITS); }

EXPORT void wv_resample_v_u8(const wv_resample_v_params *p) {
  const wv_taps *t = &p->taps;
  uint32_t sr = p->src_row, nb = p->bytes;
  for (uint32_t y = 0; y < p->rows; y++) {
    const int16_t *wy = t->split + (uintptr_t)y * t->pairs * 4;
    const uint8_t *s = p->src + (uintptr_t)t->first[y] * sr;
    uint8_t *d = p->dst + (uintptr_t)y * p->dst_row;
    int32_t n = t->count[y];
    uint32_t j = 0;
    for (; j + 16 <= nb; j += 16) {
      v128_t hi[4], lo[4];
      for (int r = 0; r < 4; r++) hi[r] = lo[r] = wasm_i32x4_splat(0);
      const int16_t *w = wy;
      const uint8_t *a = s + j;
      int32_t i = 0;
      for (; i + 2 <= n; i += 2, w += 4, a += 2 * (uintptr_t)sr)
        v_dots(wasm_v128_load(a), wasm_v128_load(a + sr), wasm_v128_load32_splat(w), wasm_v128_load32_splat(w + 2),
               hi, lo);
      if (i < n) {
        v128_t v = wasm_v128_load(a);
        v_dots(v, v, wasm_v128_load32_splat(w), wasm_v128_load32_splat(w + 2), hi, lo);
      }
      v128_t r0 = wasm_i16x8_narrow_i32x4(split_shift(hi[0], lo[0]), split_shift(hi[1], lo[1]));
      v128_t r1 = wasm_i16x8_narrow_i32x4(split_shift(hi[2], lo[2]), split_shift(hi[3], lo[3]));
      wasm_v128_store(d + j, wasm_u8x16_narrow_i16x8(r0, r1));
    }
    const int32_t *k = t->coeffs + (uintptr_t)y * t->ksize;
    for (; j < nb; j++) {
      int32_t acc = WV_HALF;
      for (int32_t i = 0; i < n; i++) acc += (int32_t)s[(uintptr_t)i * sr + j] * k[i];
      d[j] = clip8_1(acc);
    }
  }
}

// The kept pixels into the network's input: one table lookup per value, written where the layout says.
EXPORT void wv_store_f32(const wv_store_f32_params *p) {
  const f32 *t0 = p->table, *t1 = t0 + 256, *t2 = t1 + 256;
  uint32_t c0 = p->chan[0], c1 = p->chan[1], c2 = p->chan[2], dc = p->dst_chan;
  for (uint32_t y = 0; y < p->rows; y++) {
    const uint8_t *s = p->src + (uintptr_t)y * p->src_row;
    f32 *d = p->dst + (uintptr_t)y * p->dst_row;
    for (uint32_t x = 0; x < p->cols; x++, s += p->src_pixel, d += p->dst_col) {
      d[0] = t0[s[c0]];
      d[dc] = t1[s[c1]];
      d[2 * dc] = t2[s[c2]];
    }
  }
}

