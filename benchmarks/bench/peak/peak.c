/* The Wasm SIMD peak of this browser for the kernels' instruction mix, 12 independent accumulators so the loop is
 * bound by throughput, not by the latency chain. 8 FLOPs per accumulator per iteration (4 lanes x 2). Compiled twice,
 * like the kernels: f32x4 mul then add (plain SIMD128), and f32x4.relaxed_madd (-mrelaxed-simd, clang 16), which is
 * one fused instruction where the engine and CPU have FMA. */
#include <wasm_simd128.h>

#ifdef __wasm_relaxed_simd__
typedef float f32x4 __attribute__((__vector_size__(16)));
#define STEP(x) x = (v128_t)__builtin_wasm_relaxed_madd_f32x4((f32x4)x, (f32x4)m, (f32x4)c)
#else
#define STEP(x) x = wasm_f32x4_add(wasm_f32x4_mul(x, m), c)
#endif

__attribute__((visibility("default"))) float wv_peak(int iterations, float scale, float offset) {
    const v128_t m = wasm_f32x4_splat(scale), c = wasm_f32x4_splat(offset);
    v128_t x0 = wasm_f32x4_splat(0.f), x1 = wasm_f32x4_splat(1.f), x2 = wasm_f32x4_splat(2.f),
           x3 = wasm_f32x4_splat(3.f), x4 = wasm_f32x4_splat(4.f), x5 = wasm_f32x4_splat(5.f),
           x6 = wasm_f32x4_splat(6.f), x7 = wasm_f32x4_splat(7.f), x8 = wasm_f32x4_splat(8.f),
           x9 = wasm_f32x4_splat(9.f), x10 = wasm_f32x4_splat(10.f), x11 = wasm_f32x4_splat(11.f);
    for (int i = 0; i < iterations; i++) {
        STEP(x0); STEP(x1); STEP(x2); STEP(x3); STEP(x4); STEP(x5);
        STEP(x6); STEP(x7); STEP(x8); STEP(x9); STEP(x10); STEP(x11);
    }
    /* every accumulator reaches the result, so none of the work can be dropped */
    v128_t s = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(x0, x1), wasm_f32x4_add(x2, x3)),
                              wasm_f32x4_add(wasm_f32x4_add(x4, x5), wasm_f32x4_add(x6, x7)));
    s = wasm_f32x4_add(s, wasm_f32x4_add(wasm_f32x4_add(x8, x9), wasm_f32x4_add(x10, x11)));
    return wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 3);
}
