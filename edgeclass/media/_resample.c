/* One pass of Pillow's 8-bit resampling (Resample.c, ImagingResampleVertical_8bpc), over lines.
 *
 * Output line j = clip8((1 << 21) + sum_t coeffs[j][t] * src line at first[j] * src_stride +
 * t * tap_step) >> 22), for t < taps[j], element by element along the lines (tap_step =
 * src_stride: consecutive lines; 3 * src_stride: every third line, the horizontal pass over
 * transposed bytes whose lines are (column, channel) pairs): Pillow's own integer arithmetic (its
 * fixed-point coefficients, int32 sums, rounding and clipping), so every output byte is Pillow's,
 * whatever the CPU or the vector width. edgeclass/media/resample.py computes the coefficients
 * and applies a pass per axis (the horizontal one on transposed lines); this file only does the
 * multiply-adds, vectorised along the lines by the compiler, one build per instruction set
 * chosen at load time (GCC's target_clones: x86-64-v4 = AVX-512, v3 = AVX2, baseline).
 *
 * Plain C with no Python API: loaded by ctypes (edgeclass/media/resample_native.py), which
 * releases the GIL for the call. No allocation, no state, no threads: the decode workers are
 * the parallelism.
 */
#include <stddef.h>
#include <stdint.h>

#define PRECISION_BITS (32 - 8 - 2)
#define CHUNK 2048 /* values per line at a time: the int32 sums stay in L1 (8 KiB) */

/* EC_SINGLE_BUILD: one build for the compiler's target (tests build the baseline clone this way) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(EC_SINGLE_BUILD)
#define DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DISPATCH
#endif

static inline uint8_t clip8(int32_t sum)
{
    int32_t v = sum >> PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

DISPATCH
void ec_resample_lines(const uint8_t *src, ptrdiff_t src_stride, ptrdiff_t length,
                       uint8_t *dst, ptrdiff_t dst_stride, ptrdiff_t count,
                       const int32_t *first, const int32_t *taps,
                       const int32_t *coeffs, ptrdiff_t coeff_stride, ptrdiff_t tap_step)
{
    int32_t acc[CHUNK];
    for (ptrdiff_t x0 = 0; x0 < length; x0 += CHUNK) {
        const ptrdiff_t n = length - x0 < CHUNK ? length - x0 : CHUNK;
        for (ptrdiff_t j = 0; j < count; j++) {
            const int32_t *k = coeffs + j * coeff_stride;
            const uint8_t *line = src + (ptrdiff_t)first[j] * src_stride + x0;
            const int32_t m = taps[j];
            int32_t t = 0;
            for (ptrdiff_t x = 0; x < n; x++)
                acc[x] = 1 << (PRECISION_BITS - 1);
            for (; t + 1 < m; t += 2) { /* two lines per sweep: half the loads and stores of the sums */
                const int32_t k0 = k[t], k1 = k[t + 1];
                const uint8_t *a = line + t * tap_step, *b = a + tap_step;
                for (ptrdiff_t x = 0; x < n; x++)
                    acc[x] += (int32_t)a[x] * k0 + (int32_t)b[x] * k1;
            }
            if (t < m) {
                const int32_t k0 = k[t];
                const uint8_t *a = line + t * tap_step;
                for (ptrdiff_t x = 0; x < n; x++)
                    acc[x] += (int32_t)a[x] * k0;
            }
            uint8_t *out = dst + j * dst_stride + x0;
            for (ptrdiff_t x = 0; x < n; x++)
                out[x] = clip8(acc[x]);
        }
    }
}
