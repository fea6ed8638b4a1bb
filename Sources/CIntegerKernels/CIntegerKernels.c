// See include/CIntegerKernels.h. The floating-point steps are written one intrinsic at a time and
// never contracted into fused multiply-adds, so they round as the Swift kernels do.
#pragma STDC FP_CONTRACT OFF
#include "CIntegerKernels.h"

#include <stddef.h>
#include <string.h>

/// Bytes of a token vector's block in the transposed activations (TokenLaneKernels.swift).
enum { lane_block_bytes = 1280, tile_bytes = 32 * 32 * 4 };

int64_t integer_kernels_token_lanes_max_blocks(int64_t workspace_bytes) {
    return workspace_bytes < tile_bytes ? 0 : (workspace_bytes - tile_bytes) / (1024 + 256);
}

/// The half-precision number with bits `h`, exactly (subnormals, infinities and NaN included).
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    uint32_t bits;
    if (exponent == 0) {
        float magnitude = (float)mantissa * 5.9604644775390625e-8f;  // mantissa · 2^-24, exact
        memcpy(&bits, &magnitude, 4);
        bits |= sign;
    } else if (exponent == 31) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float value;
    memcpy(&value, &bits, 4);
    return value;
}

void integer_kernels_q6k_transpose_activations(const void *activations, int64_t row_bytes, int64_t super_blocks, int64_t tokens,
                                     int64_t first_vector, int64_t end_vector, void *lanes) {
    for (int64_t vector = first_vector; vector < end_vector; vector++) {
        for (int64_t super_block = 0; super_block < super_blocks; super_block++) {
            uint8_t *out = (uint8_t *)lanes + (vector * super_blocks + super_block) * EMBER_Q6K_LANE_BLOCK_BYTES;
            for (int lane = 0; lane < 16; lane++) {
                int64_t token = vector * 16 + lane;
                float d = 0;
                int32_t sums[16] = {0};
                if (token < tokens) {
                    const uint8_t *block = (const uint8_t *)activations + token * row_bytes + super_block * 292;
                    memcpy(&d, block, 4);
                    for (int k = 0; k < 64; k++) memcpy(out + k * 64 + lane * 4, block + 4 + k * 4, 4);
                    for (int e = 0; e < 256; e++) sums[e / 16] += (int8_t)block[4 + e];
                } else {
                    for (int k = 0; k < 64; k++) memset(out + k * 64 + lane * 4, 0, 4);
                }
                memcpy(out + 4096 + lane * 4, &d, 4);
                for (int s = 0; s < 16; s++) {
                    int32_t offset = 32 * sums[s];
                    memcpy(out + 4160 + s * 64 + lane * 4, &offset, 4);
                }
            }
        }
    }
}

/// Bytes of one Q6_K super-block unpacked for the kernel: 32 rows × 256 unsigned bytes (q + 32),
/// 32 rows × 16 Int32 scales, 32 Float d.
enum { q6_unpacked_bytes = 32 * 256 + 32 * 16 * 4 + 32 * 4, q6_tile_bytes = 32 * 16 * 4 };

int64_t integer_kernels_q6k_max_super_blocks(int64_t workspace_bytes) {
    return workspace_bytes < q6_tile_bytes ? 0 : (workspace_bytes - q6_tile_bytes) / q6_unpacked_bytes;
}

/// Q4_K's interleaved super-block (`Q4_KGroupSuperBlock` in Q4KInterleaved.swift): 32 rows' d and dmin
/// halves, per sub-block the rows' scale bytes and minimum bytes, then per sub-block 512 bytes of
/// packed quants (byte j of the 32 rows at j · 32: element j low, j + 16 high).
enum {
    q4k_super_block_bytes = 4736, q4k_scales = 0, q4k_minimum_scales = 64, q4k_sub_scales = 128, q4k_sub_minimums = 384,
    q4k_quants = 640, q4k_sub_quant_bytes = 512, q8k_block_bytes = 292, q8k_sums = 260
};

/// Bytes of one Q4_K super-block unpacked for the batch kernel: 32 rows × 256 nibble values,
/// 32 rows × 8 Int32 scales and 8 Int32 minimums, 32 Float d and 32 Float dmin.
enum { q4_unpacked_bytes = 32 * 256 + 2 * 32 * 8 * 4 + 2 * 32 * 4, q4_tile_bytes = 32 * 16 * 4 };

int64_t integer_kernels_q4k_max_super_blocks(int64_t workspace_bytes) {
    return workspace_bytes < q4_tile_bytes ? 0 : (workspace_bytes - q4_tile_bytes) / q4_unpacked_bytes;
}

#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>

int32_t integer_kernels_cpu_has_avx512_vnni(void) {
#if defined(EMBER_BASELINE_CPU)
    return 0;  // the baseline build (scripts/swift_flags.sh, EMBER_PORTABLE=1) runs the portable kernels
#endif
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // OSXSAVE
    unsigned low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    (void)high;
    // The operating system saves SSE, AVX, opmask and both halves of the zmm registers.
    if ((low & 0xE6) != 0xE6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx512f = (b >> 16) & 1, avx512vnni = (c >> 11) & 1;
    return avx512f && avx512vnni;
}

/// How far ahead of the loads the one-token kernel prefetches its weight stream: the hardware
/// prefetcher alone leaves decode about an eighth slower (measured on Gemma 3 at one thread; 2 and
/// 4 KiB ahead measured alike, 1 KiB less).
enum { prefetch_distance = 4096 };

int32_t integer_kernels_cpu_has_one_token_avx512(void) {
    if (!integer_kernels_cpu_has_avx512_vnni()) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx512bw = (b >> 30) & 1, avx512vbmi = (c >> 1) & 1;
    return avx512bw && avx512vbmi;
}

/// Byte indices for `vpermt2b` over the 128 bytes of four byte positions j ..< j + 4 of a group
/// block (position k's 32 rows at k · 32): row r's four bytes together, rows 0 ..< 16 (`half` 0) or
/// 16 ..< 32 (`half` 1).
__attribute__((target("avx512f,avx512bw")))
static __m512i quad_indices(int half) {
    uint8_t indices[64];
    for (int row = 0; row < 16; row++) {
        for (int k = 0; k < 4; k++) indices[4 * row + k] = (uint8_t)(k * 32 + half * 16 + row);
    }
    return _mm512_loadu_si512((const void *)indices);
}

__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi")))
void integer_kernels_one_token_avx512_vnni(const void *weights, int64_t blocks, int32_t is_q4, const void *activation,
                                           int64_t first_group, int64_t end_group, float *output, void *workspace) {
    const __m512i low_rows = quad_indices(0), high_rows = quad_indices(1);
    const uint8_t *activations = (const uint8_t *)activation;
    if (is_q4) {
        // Q4_1 layout (640 bytes a group block): 32 d, 32 m, then byte j of the 32 rows at 128 + j · 32
        // (element j in the low nibble, j + 16 in the high). Activations Q8_1 (36 bytes: d, s, 32 q).
        const __m512i nibble = _mm512_set1_epi8(0x0F);
        for (int64_t group = first_group; group < end_group; group++) {
            const uint8_t *source = (const uint8_t *)weights + group * blocks * 640;
            __m512 low = _mm512_setzero_ps(), high = _mm512_setzero_ps();
            __m512 minimum_low = _mm512_setzero_ps(), minimum_high = _mm512_setzero_ps();
            for (int64_t block = 0; block < blocks; block++, source += 640) {
                const uint8_t *a = activations + block * 36;
                __m512i integer_low = _mm512_setzero_si512(), integer_high = _mm512_setzero_si512();
                for (int j = 0; j < 16; j += 4) {
                    _mm_prefetch((const char *)(source + prefetch_distance + j * 32), _MM_HINT_T0);
                    _mm_prefetch((const char *)(source + prefetch_distance + j * 32 + 64), _MM_HINT_T0);
                    __m512i first = _mm512_loadu_si512((const void *)(source + 128 + j * 32));
                    __m512i second = _mm512_loadu_si512((const void *)(source + 128 + j * 32 + 64));
                    __m512i rows_low = _mm512_permutex2var_epi8(first, low_rows, second);
                    __m512i rows_high = _mm512_permutex2var_epi8(first, high_rows, second);
                    int32_t quants_low, quants_high;
                    memcpy(&quants_low, a + 4 + j, 4);
                    memcpy(&quants_high, a + 4 + 16 + j, 4);
                    __m512i activation_low = _mm512_set1_epi32(quants_low), activation_high = _mm512_set1_epi32(quants_high);
                    integer_low = _mm512_dpbusd_epi32(integer_low, _mm512_and_si512(rows_low, nibble), activation_low);
                    integer_low = _mm512_dpbusd_epi32(integer_low, _mm512_and_si512(_mm512_srli_epi16(rows_low, 4), nibble),
                                                      activation_high);
                    integer_high = _mm512_dpbusd_epi32(integer_high, _mm512_and_si512(rows_high, nibble), activation_low);
                    integer_high = _mm512_dpbusd_epi32(integer_high, _mm512_and_si512(_mm512_srli_epi16(rows_high, 4), nibble),
                                                       activation_high);
                }
                uint16_t bits;
                memcpy(&bits, a, 2);
                __m512 activation_scale = _mm512_set1_ps(half_to_float(bits));
                memcpy(&bits, a + 2, 2);
                __m512 activation_sum = _mm512_set1_ps(half_to_float(bits));
                __m512 scale_low = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)source));
                __m512 scale_high = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(source + 32)));
                low = _mm512_add_ps(low, _mm512_mul_ps(_mm512_cvtepi32_ps(integer_low), _mm512_mul_ps(scale_low, activation_scale)));
                high = _mm512_add_ps(high, _mm512_mul_ps(_mm512_cvtepi32_ps(integer_high), _mm512_mul_ps(scale_high, activation_scale)));
                __m512 weight_minimum_low = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(source + 64)));
                __m512 weight_minimum_high = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(source + 96)));
                minimum_low = _mm512_add_ps(minimum_low, _mm512_mul_ps(weight_minimum_low, activation_sum));
                minimum_high = _mm512_add_ps(minimum_high, _mm512_mul_ps(weight_minimum_high, activation_sum));
            }
            _mm512_storeu_ps(output + group * 32, _mm512_add_ps(low, minimum_low));
            _mm512_storeu_ps(output + group * 32 + 16, _mm512_add_ps(high, minimum_high));
        }
        return;
    }
    // Q8_0 layout (1088 bytes a group block): 32 d, then byte j of the 32 rows at 64 + j · 32, signed.
    // Activations Q8_0 (34 bytes: d, 32 q). vpdpbusd multiplies unsigned by signed bytes, so the
    // weights are offset to w + 128 (w XOR 0x80) and 128 · Σ q of each block is taken back.
    int32_t *offsets = (int32_t *)workspace;
    for (int64_t block = 0; block < blocks; block++) {
        const int8_t *quants = (const int8_t *)(activations + block * 34 + 2);
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) sum += quants[j];
        offsets[block] = 128 * sum;
    }
    const __m512i sign = _mm512_set1_epi8((char)0x80);
    for (int64_t group = first_group; group < end_group; group++) {
        const uint8_t *source = (const uint8_t *)weights + group * blocks * 1088;
        __m512 low = _mm512_setzero_ps(), high = _mm512_setzero_ps();
        for (int64_t block = 0; block < blocks; block++, source += 1088) {
            const uint8_t *a = activations + block * 34;
            __m512i offset = _mm512_set1_epi32(-offsets[block]);
            __m512i integer_low = offset, integer_high = offset;
            for (int j = 0; j < 32; j += 4) {
                _mm_prefetch((const char *)(source + prefetch_distance + j * 32), _MM_HINT_T0);
                _mm_prefetch((const char *)(source + prefetch_distance + j * 32 + 64), _MM_HINT_T0);
                __m512i first = _mm512_loadu_si512((const void *)(source + 64 + j * 32));
                __m512i second = _mm512_loadu_si512((const void *)(source + 64 + j * 32 + 64));
                __m512i rows_low = _mm512_xor_si512(_mm512_permutex2var_epi8(first, low_rows, second), sign);
                __m512i rows_high = _mm512_xor_si512(_mm512_permutex2var_epi8(first, high_rows, second), sign);
                int32_t quants;
                memcpy(&quants, a + 2 + j, 4);
                __m512i activation_quad = _mm512_set1_epi32(quants);
                integer_low = _mm512_dpbusd_epi32(integer_low, rows_low, activation_quad);
                integer_high = _mm512_dpbusd_epi32(integer_high, rows_high, activation_quad);
            }
            uint16_t bits;
            memcpy(&bits, a, 2);
            __m512 activation_scale = _mm512_set1_ps(half_to_float(bits));
            __m512 scale_low = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)source));
            __m512 scale_high = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(source + 32)));
            low = _mm512_add_ps(low, _mm512_mul_ps(_mm512_cvtepi32_ps(integer_low), _mm512_mul_ps(scale_low, activation_scale)));
            high = _mm512_add_ps(high, _mm512_mul_ps(_mm512_cvtepi32_ps(integer_high), _mm512_mul_ps(scale_high, activation_scale)));
        }
        _mm512_storeu_ps(output + group * 32, low);
        _mm512_storeu_ps(output + group * 32 + 16, high);
    }
}

/// Unpacks one group's weights into `quads` (per block and row, the row's 32 elements as unsigned
/// bytes in order: Q4_1 nibbles, or decoded Q5_0 plus 16), `scales` and `minimums` (Float, per
/// block and row).
static void unpack_group(const uint8_t *group, int64_t blocks, int32_t is_q4, uint8_t *quads, float *scales,
                         float *minimums) {
    const int64_t group_block = is_q4 ? 640 : 1088;
    for (int64_t block = 0; block < blocks; block++) {
        const uint8_t *source = group + block * group_block;
        uint8_t *out = quads + block * 1024;
        for (int row = 0; row < 32; row++) {
            uint16_t bits;
            memcpy(&bits, source + 2 * row, 2);
            scales[block * 32 + row] = half_to_float(bits);
            if (is_q4) {
                memcpy(&bits, source + 64 + 2 * row, 2);
                minimums[block * 32 + row] = half_to_float(bits);
            }
        }
        if (is_q4) {
            // Byte j of a row (at 128 + j · 32 + row) holds element j (low nibble) and j + 16 (high).
            for (int j = 0; j < 16; j++) {
                const uint8_t *packed = source + 128 + j * 32;
                for (int row = 0; row < 32; row++) {
                    out[row * 32 + j] = packed[row] & 0x0F;
                    out[row * 32 + j + 16] = packed[row] >> 4;
                }
            }
        } else {
            for (int j = 0; j < 32; j++) {
                const int8_t *signed_bytes = (const int8_t *)(source + 64 + j * 32);
                for (int row = 0; row < 32; row++) out[row * 32 + j] = (uint8_t)(signed_bytes[row] + 16);
            }
        }
    }
}

__attribute__((target("avx512f,avx512vnni")))
void integer_kernels_token_lanes_avx512_vnni(const void *weights, int64_t blocks, int32_t is_q4,
                                   const void *lanes, int64_t tokens,
                                   int64_t first_group, int64_t end_group,
                                   float *output, int64_t rows, void *workspace) {
    const int64_t group_block = is_q4 ? 640 : 1088;
    const int64_t vectors = (tokens + 31) / 32;
    uint8_t *quads = (uint8_t *)workspace;
    float *scales = (float *)(quads + blocks * 1024);
    float *minimums = scales + blocks * 32;
    float *tile = minimums + blocks * 32;  // [row][token] of one token vector
    for (int64_t group = first_group; group < end_group; group++) {
        unpack_group((const uint8_t *)weights + group * blocks * group_block, blocks, is_q4, quads, scales, minimums);
        for (int64_t vector = 0; vector < vectors; vector++) {
            const uint8_t *activations = (const uint8_t *)lanes + vector * blocks * lane_block_bytes;
            for (int first_row = 0; first_row < 32; first_row += 4) {
                // Rows first_row + i, tokens 0..<16 (even index) and 16..<32 (odd).
                __m512 sums[8], mins[8];
                for (int i = 0; i < 8; i++) { sums[i] = _mm512_setzero_ps(); mins[i] = _mm512_setzero_ps(); }
                for (int64_t block = 0; block < blocks; block++) {
                    const uint8_t *a = activations + block * lane_block_bytes;
                    const uint8_t *w = quads + block * 1024 + first_row * 32;
                    __m512i integer[8];
                    for (int i = 0; i < 8; i++) integer[i] = _mm512_setzero_si512();
                    for (int q = 0; q < 8; q++) {
                        __m512i low = _mm512_loadu_si512((const void *)(a + (2 * q) * 64));
                        __m512i high = _mm512_loadu_si512((const void *)(a + (2 * q + 1) * 64));
                        for (int i = 0; i < 4; i++) {
                            int32_t quad;
                            memcpy(&quad, w + i * 32 + q * 4, 4);
                            __m512i weight = _mm512_set1_epi32(quad);
                            integer[2 * i] = _mm512_dpbusd_epi32(integer[2 * i], weight, low);
                            integer[2 * i + 1] = _mm512_dpbusd_epi32(integer[2 * i + 1], weight, high);
                        }
                    }
                    __m512 scale_low = _mm512_loadu_ps((const void *)(a + 1024));
                    __m512 scale_high = _mm512_loadu_ps((const void *)(a + 1088));
                    if (!is_q4) {
                        // Weights were offset by 16: take 16 · Σ a back.
                        __m512i offset_low = _mm512_loadu_si512((const void *)(a + 1152));
                        __m512i offset_high = _mm512_loadu_si512((const void *)(a + 1216));
                        for (int i = 0; i < 4; i++) {
                            integer[2 * i] = _mm512_sub_epi32(integer[2 * i], offset_low);
                            integer[2 * i + 1] = _mm512_sub_epi32(integer[2 * i + 1], offset_high);
                        }
                    }
                    for (int i = 0; i < 4; i++) {
                        __m512 weight_scale = _mm512_set1_ps(scales[block * 32 + first_row + i]);
                        sums[2 * i] = _mm512_add_ps(sums[2 * i], _mm512_mul_ps(_mm512_cvtepi32_ps(integer[2 * i]),
                                                                               _mm512_mul_ps(weight_scale, scale_low)));
                        sums[2 * i + 1] = _mm512_add_ps(sums[2 * i + 1], _mm512_mul_ps(_mm512_cvtepi32_ps(integer[2 * i + 1]),
                                                                                       _mm512_mul_ps(weight_scale, scale_high)));
                    }
                    if (is_q4) {
                        __m512 sum_low = _mm512_loadu_ps((const void *)(a + 1152));
                        __m512 sum_high = _mm512_loadu_ps((const void *)(a + 1216));
                        for (int i = 0; i < 4; i++) {
                            __m512 weight_minimum = _mm512_set1_ps(minimums[block * 32 + first_row + i]);
                            mins[2 * i] = _mm512_add_ps(mins[2 * i], _mm512_mul_ps(weight_minimum, sum_low));
                            mins[2 * i + 1] = _mm512_add_ps(mins[2 * i + 1], _mm512_mul_ps(weight_minimum, sum_high));
                        }
                    }
                }
                for (int i = 0; i < 4; i++) {
                    float *row = tile + (first_row + i) * 32;
                    if (is_q4) {
                        _mm512_storeu_ps(row, _mm512_add_ps(sums[2 * i], mins[2 * i]));
                        _mm512_storeu_ps(row + 16, _mm512_add_ps(sums[2 * i + 1], mins[2 * i + 1]));
                    } else {
                        _mm512_storeu_ps(row, sums[2 * i]);
                        _mm512_storeu_ps(row + 16, sums[2 * i + 1]);
                    }
                }
            }
            int64_t first_token = vector * 32;
            int64_t count = tokens - first_token < 32 ? tokens - first_token : 32;
            for (int64_t t = 0; t < count; t++) {
                float *destination = output + (first_token + t) * rows + group * 32;
                for (int row = 0; row < 32; row++) destination[row] = tile[row * 32 + t];
            }
        }
    }
}

/// Unpacks one Q6_K super-block of a group (`Q6KInterleaved.swift`'s layout) into `out`.
static void unpack_q6k(const uint8_t *source, uint8_t *out) {
    uint8_t *quants = out;                                   // [row][256] q + 32
    int32_t *scales = (int32_t *)(out + 32 * 256);           // [row][16]
    float *d = (float *)(out + 32 * 256 + 32 * 16 * 4);      // [row]
    for (int row = 0; row < 32; row++) {
        uint16_t bits;
        memcpy(&bits, source + 2 * row, 2);
        d[row] = half_to_float(bits);
        for (int s = 0; s < 16; s++) scales[row * 16 + s] = (int8_t)source[64 + s * 32 + row];
    }
    for (int block = 0; block < 8; block++) {
        const uint8_t *q = source + 576 + block * 768;
        for (int j = 0; j < 8; j++) {
            const uint8_t *first = q + j * 96, *second = first + 32, *high = first + 64;
            for (int row = 0; row < 32; row++) {
                uint8_t h = high[row];
                uint8_t *e = quants + row * 256 + block * 32;
                e[j] = (first[row] & 0x0F) | (h & 3) << 4;
                e[j + 8] = (second[row] & 0x0F) | ((h >> 2) & 3) << 4;
                e[j + 16] = (first[row] >> 4) | ((h >> 4) & 3) << 4;
                e[j + 24] = (second[row] >> 4) | (h >> 6) << 4;
            }
        }
    }
}

__attribute__((target("avx512f,avx512vnni")))
void integer_kernels_q6k_token_lanes_avx512_vnni(const void *weights, int64_t super_blocks, const void *lanes, int64_t tokens,
                                       int64_t first_group, int64_t end_group, float *output, int64_t rows,
                                       void *workspace) {
    const int64_t vectors = (tokens + 15) / 16;
    const int64_t full_quads = super_blocks / 4 * 4;
    uint8_t *unpacked = (uint8_t *)workspace;
    float *tile = (float *)(unpacked + super_blocks * q6_unpacked_bytes);  // [row][16 tokens]
    for (int64_t group = first_group; group < end_group; group++) {
        for (int64_t super_block = 0; super_block < super_blocks; super_block++) {
            unpack_q6k((const uint8_t *)weights + (group * super_blocks + super_block) * 6720,
                       unpacked + super_block * q6_unpacked_bytes);
        }
        for (int64_t vector = 0; vector < vectors; vector++) {
            const uint8_t *activations = (const uint8_t *)lanes + vector * super_blocks * EMBER_Q6K_LANE_BLOCK_BYTES;
            for (int first_row = 0; first_row < 32; first_row += 4) {
                __m512 slots[4][4];  // [super-block % 4][row]
                for (int k = 0; k < 4; k++)
                    for (int i = 0; i < 4; i++) slots[k][i] = _mm512_setzero_ps();
                for (int64_t super_block = 0; super_block < super_blocks; super_block++) {
                    const uint8_t *a = activations + super_block * EMBER_Q6K_LANE_BLOCK_BYTES;
                    const uint8_t *u = unpacked + super_block * q6_unpacked_bytes;
                    const uint8_t *w = u + first_row * 256;
                    const int32_t *scales = (const int32_t *)(u + 32 * 256) + first_row * 16;
                    const float *d = (const float *)(u + 32 * 256 + 32 * 16 * 4) + first_row;
                    __m512i integer[4];
                    for (int i = 0; i < 4; i++) integer[i] = _mm512_setzero_si512();
                    for (int s = 0; s < 16; s++) {
                        __m512i dot[4];
                        for (int i = 0; i < 4; i++) dot[i] = _mm512_setzero_si512();
                        for (int k = 0; k < 4; k++) {
                            __m512i x = _mm512_loadu_si512((const void *)(a + (s * 4 + k) * 64));
                            for (int i = 0; i < 4; i++) {
                                int32_t quad;
                                memcpy(&quad, w + i * 256 + s * 16 + k * 4, 4);
                                dot[i] = _mm512_dpbusd_epi32(dot[i], _mm512_set1_epi32(quad), x);
                            }
                        }
                        // Weights were offset by 32: take 32 · Σ q back, then scale the sub-block.
                        __m512i offset = _mm512_loadu_si512((const void *)(a + 4160 + s * 64));
                        for (int i = 0; i < 4; i++) {
                            integer[i] = _mm512_add_epi32(integer[i], _mm512_mullo_epi32(_mm512_sub_epi32(dot[i], offset),
                                                                                         _mm512_set1_epi32(scales[i * 16 + s])));
                        }
                    }
                    __m512 scale = _mm512_loadu_ps((const void *)(a + 4096));
                    int slot = super_block < full_quads ? (int)(super_block % 4) : 0;
                    for (int i = 0; i < 4; i++) {
                        __m512 term = _mm512_mul_ps(_mm512_mul_ps(scale, _mm512_set1_ps(d[i])), _mm512_cvtepi32_ps(integer[i]));
                        slots[slot][i] = _mm512_add_ps(slots[slot][i], term);
                    }
                }
                for (int i = 0; i < 4; i++) {
                    __m512 total = _mm512_add_ps(_mm512_add_ps(slots[0][i], slots[1][i]), _mm512_add_ps(slots[2][i], slots[3][i]));
                    _mm512_storeu_ps(tile + (first_row + i) * 16, total);
                }
            }
            int64_t first_token = vector * 16;
            int64_t count = tokens - first_token < 16 ? tokens - first_token : 16;
            for (int64_t t = 0; t < count; t++) {
                float *destination = output + (first_token + t) * rows + group * 32;
                for (int row = 0; row < 32; row++) destination[row] = tile[row * 16 + t];
            }
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi")))
void integer_kernels_q4k_one_token_avx512_vnni(const void *weights, int64_t super_blocks, const void *activation,
                                               int64_t first_group, int64_t end_group, float *output) {
    const __m512i low_rows = quad_indices(0), high_rows = quad_indices(1);
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    for (int64_t group = first_group; group < end_group; group++) {
        const uint8_t *source = (const uint8_t *)weights + group * super_blocks * q4k_super_block_bytes;
        __m512 sum_low = _mm512_setzero_ps(), sum_high = _mm512_setzero_ps();
        __m512 minimum_low = _mm512_setzero_ps(), minimum_high = _mm512_setzero_ps();
        for (int64_t super_block = 0; super_block < super_blocks; super_block++, source += q4k_super_block_bytes) {
            const uint8_t *a = (const uint8_t *)activation + super_block * q8k_block_bytes;
            __m512i integer_low = _mm512_setzero_si512(), integer_high = _mm512_setzero_si512();
            __m512i minimum_sum_low = _mm512_setzero_si512(), minimum_sum_high = _mm512_setzero_si512();
            for (int sub = 0; sub < 8; sub++) {
                const uint8_t *packed = source + q4k_quants + sub * q4k_sub_quant_bytes;
                const uint8_t *quants = a + 4 + sub * 32;
                __m512i sub_low = _mm512_setzero_si512(), sub_high = _mm512_setzero_si512();
                for (int j = 0; j < 16; j += 4) {
                    _mm_prefetch((const char *)(packed + prefetch_distance + j * 32), _MM_HINT_T0);
                    _mm_prefetch((const char *)(packed + prefetch_distance + j * 32 + 64), _MM_HINT_T0);
                    __m512i first = _mm512_loadu_si512((const void *)(packed + j * 32));
                    __m512i second = _mm512_loadu_si512((const void *)(packed + j * 32 + 64));
                    __m512i rows_low = _mm512_permutex2var_epi8(first, low_rows, second);
                    __m512i rows_high = _mm512_permutex2var_epi8(first, high_rows, second);
                    int32_t quants_low, quants_high;
                    memcpy(&quants_low, quants + j, 4);
                    memcpy(&quants_high, quants + 16 + j, 4);
                    __m512i activation_low = _mm512_set1_epi32(quants_low), activation_high = _mm512_set1_epi32(quants_high);
                    sub_low = _mm512_dpbusd_epi32(sub_low, _mm512_and_si512(rows_low, nibble), activation_low);
                    sub_low = _mm512_dpbusd_epi32(sub_low, _mm512_and_si512(_mm512_srli_epi16(rows_low, 4), nibble), activation_high);
                    sub_high = _mm512_dpbusd_epi32(sub_high, _mm512_and_si512(rows_high, nibble), activation_low);
                    sub_high = _mm512_dpbusd_epi32(sub_high, _mm512_and_si512(_mm512_srli_epi16(rows_high, 4), nibble), activation_high);
                }
                const uint8_t *scales = source + q4k_sub_scales + sub * 32;
                integer_low = _mm512_add_epi32(integer_low,
                                               _mm512_mullo_epi32(sub_low, _mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)scales))));
                integer_high = _mm512_add_epi32(integer_high,
                                                _mm512_mullo_epi32(sub_high, _mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(scales + 16)))));
                int16_t sums[2];
                memcpy(sums, a + q8k_sums + 4 * sub, 4);
                __m512i block_sum = _mm512_set1_epi32((int32_t)sums[0] + (int32_t)sums[1]);
                const uint8_t *minimums = source + q4k_sub_minimums + sub * 32;
                minimum_sum_low = _mm512_add_epi32(minimum_sum_low,
                                                   _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)minimums)), block_sum));
                minimum_sum_high = _mm512_add_epi32(minimum_sum_high,
                                                    _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(minimums + 16))),
                                                                       block_sum));
            }
            float d;
            memcpy(&d, a, 4);
            __m512 activation_scale = _mm512_set1_ps(d);
            sum_low = _mm512_fmadd_ps(_mm512_cvtepi32_ps(integer_low),
                                      _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const void *)(source + q4k_scales))), activation_scale),
                                      sum_low);
            sum_high = _mm512_fmadd_ps(_mm512_cvtepi32_ps(integer_high),
                                       _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const void *)(source + q4k_scales + 32))),
                                                     activation_scale),
                                       sum_high);
            minimum_low = _mm512_fmadd_ps(_mm512_cvtepi32_ps(minimum_sum_low),
                                          _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const void *)(source + q4k_minimum_scales))),
                                                        activation_scale),
                                          minimum_low);
            minimum_high = _mm512_fmadd_ps(_mm512_cvtepi32_ps(minimum_sum_high),
                                           _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const void *)(source + q4k_minimum_scales + 32))),
                                                         activation_scale),
                                           minimum_high);
        }
        _mm512_storeu_ps(output + group * 32, _mm512_sub_ps(sum_low, minimum_low));
        _mm512_storeu_ps(output + group * 32 + 16, _mm512_sub_ps(sum_high, minimum_high));
    }
}

/// Unpacks one Q4_K super-block of a group (`Q4KInterleaved.swift`'s layout) into `out`.
static void unpack_q4k(const uint8_t *source, uint8_t *out) {
    uint8_t *quants = out;                                        // [row][256] nibble values
    int32_t *scales = (int32_t *)(out + 32 * 256);                // [row][8]
    int32_t *minimums = scales + 32 * 8;                          // [row][8]
    float *d = (float *)(minimums + 32 * 8);                      // [row]
    float *dmin = d + 32;                                         // [row]
    for (int row = 0; row < 32; row++) {
        uint16_t bits;
        memcpy(&bits, source + q4k_scales + 2 * row, 2);
        d[row] = half_to_float(bits);
        memcpy(&bits, source + q4k_minimum_scales + 2 * row, 2);
        dmin[row] = half_to_float(bits);
        for (int sub = 0; sub < 8; sub++) {
            scales[row * 8 + sub] = source[q4k_sub_scales + sub * 32 + row];
            minimums[row * 8 + sub] = source[q4k_sub_minimums + sub * 32 + row];
        }
    }
    for (int sub = 0; sub < 8; sub++) {
        const uint8_t *packed = source + q4k_quants + sub * q4k_sub_quant_bytes;
        for (int j = 0; j < 16; j++) {
            for (int row = 0; row < 32; row++) {
                uint8_t byte = packed[j * 32 + row];
                quants[row * 256 + sub * 32 + j] = byte & 0x0F;
                quants[row * 256 + sub * 32 + j + 16] = byte >> 4;
            }
        }
    }
}

__attribute__((target("avx512f,avx512vnni")))
void integer_kernels_q4k_token_lanes_avx512_vnni(const void *weights, int64_t super_blocks, const void *lanes, int64_t tokens,
                                                 int64_t first_group, int64_t end_group, float *output, int64_t rows,
                                                 void *workspace) {
    const int64_t vectors = (tokens + 15) / 16;
    uint8_t *unpacked = (uint8_t *)workspace;
    float *tile = (float *)(unpacked + super_blocks * q4_unpacked_bytes);  // [row][16 tokens]
    for (int64_t group = first_group; group < end_group; group++) {
        for (int64_t super_block = 0; super_block < super_blocks; super_block++) {
            unpack_q4k((const uint8_t *)weights + (group * super_blocks + super_block) * q4k_super_block_bytes,
                       unpacked + super_block * q4_unpacked_bytes);
        }
        for (int64_t vector = 0; vector < vectors; vector++) {
            const uint8_t *activations = (const uint8_t *)lanes + vector * super_blocks * EMBER_Q6K_LANE_BLOCK_BYTES;
            for (int first_row = 0; first_row < 32; first_row += 4) {
                __m512 sums[4], minimums[4];
                for (int i = 0; i < 4; i++) { sums[i] = _mm512_setzero_ps(); minimums[i] = _mm512_setzero_ps(); }
                for (int64_t super_block = 0; super_block < super_blocks; super_block++) {
                    const uint8_t *a = activations + super_block * EMBER_Q6K_LANE_BLOCK_BYTES;
                    const uint8_t *u = unpacked + super_block * q4_unpacked_bytes;
                    const uint8_t *w = u + first_row * 256;
                    const int32_t *scales = (const int32_t *)(u + 32 * 256) + first_row * 8;
                    const int32_t *minimum_values = (const int32_t *)(u + 32 * 256) + 32 * 8 + first_row * 8;
                    const float *d = (const float *)(u + 32 * 256 + 2 * 32 * 8 * 4) + first_row;
                    const float *dmin = d + 32;
                    __m512i integer[4], minimum_sums[4];
                    for (int i = 0; i < 4; i++) { integer[i] = _mm512_setzero_si512(); minimum_sums[i] = _mm512_setzero_si512(); }
                    for (int sub = 0; sub < 8; sub++) {
                        __m512i dot[4];
                        for (int i = 0; i < 4; i++) dot[i] = _mm512_setzero_si512();
                        for (int k = 0; k < 8; k++) {
                            __m512i x = _mm512_loadu_si512((const void *)(a + (sub * 8 + k) * 64));
                            for (int i = 0; i < 4; i++) {
                                int32_t quad;
                                memcpy(&quad, w + i * 256 + sub * 32 + k * 4, 4);
                                dot[i] = _mm512_dpbusd_epi32(dot[i], _mm512_set1_epi32(quad), x);
                            }
                        }
                        // The tokens' Σ q of the sub-block: its two 16-element sums, stored as 32 · Σ q.
                        __m512i block_sum = _mm512_srai_epi32(_mm512_add_epi32(_mm512_loadu_si512((const void *)(a + 4160 + (2 * sub) * 64)),
                                                                               _mm512_loadu_si512((const void *)(a + 4160 + (2 * sub + 1) * 64))),
                                                              5);
                        for (int i = 0; i < 4; i++) {
                            integer[i] = _mm512_add_epi32(integer[i], _mm512_mullo_epi32(dot[i], _mm512_set1_epi32(scales[i * 8 + sub])));
                            minimum_sums[i] = _mm512_add_epi32(minimum_sums[i],
                                                               _mm512_mullo_epi32(block_sum, _mm512_set1_epi32(minimum_values[i * 8 + sub])));
                        }
                    }
                    __m512 scale = _mm512_loadu_ps((const void *)(a + 4096));
                    for (int i = 0; i < 4; i++) {
                        sums[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(integer[i]), _mm512_mul_ps(_mm512_set1_ps(d[i]), scale), sums[i]);
                        minimums[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(minimum_sums[i]), _mm512_mul_ps(_mm512_set1_ps(dmin[i]), scale),
                                                      minimums[i]);
                    }
                }
                for (int i = 0; i < 4; i++) _mm512_storeu_ps(tile + (first_row + i) * 16, _mm512_sub_ps(sums[i], minimums[i]));
            }
            int64_t first_token = vector * 16;
            int64_t count = tokens - first_token < 16 ? tokens - first_token : 16;
            for (int64_t t = 0; t < count; t++) {
                float *destination = output + (first_token + t) * rows + group * 32;
                for (int row = 0; row < 32; row++) destination[row] = tile[row * 16 + t];
            }
        }
    }
}

#else

int32_t integer_kernels_cpu_has_avx512_vnni(void) { return 0; }

void integer_kernels_token_lanes_avx512_vnni(const void *weights, int64_t blocks, int32_t is_q4,
                                   const void *lanes, int64_t tokens,
                                   int64_t first_group, int64_t end_group,
                                   float *output, int64_t rows, void *workspace) {
    // Callers check integer_kernels_cpu_has_avx512_vnni(), which is 0 on this architecture.
    (void)weights; (void)blocks; (void)is_q4; (void)lanes; (void)tokens; (void)first_group; (void)end_group;
    (void)output; (void)rows; (void)workspace; (void)half_to_float;
    __builtin_trap();
}

void integer_kernels_q6k_token_lanes_avx512_vnni(const void *weights, int64_t super_blocks, const void *lanes, int64_t tokens,
                                       int64_t first_group, int64_t end_group, float *output, int64_t rows,
                                       void *workspace) {
    // Callers check integer_kernels_cpu_has_avx512_vnni(), which is 0 on this architecture.
    (void)weights; (void)super_blocks; (void)lanes; (void)tokens; (void)first_group; (void)end_group;
    (void)output; (void)rows; (void)workspace;
    __builtin_trap();
}

int32_t integer_kernels_cpu_has_one_token_avx512(void) { return 0; }

void integer_kernels_q4k_one_token_avx512_vnni(const void *weights, int64_t super_blocks, const void *activation,
                                               int64_t first_group, int64_t end_group, float *output) {
    // Callers check integer_kernels_cpu_has_one_token_avx512(), which is 0 on this architecture.
    (void)weights; (void)super_blocks; (void)activation; (void)first_group; (void)end_group; (void)output;
    __builtin_trap();
}

void integer_kernels_q4k_token_lanes_avx512_vnni(const void *weights, int64_t super_blocks, const void *lanes, int64_t tokens,
                                                 int64_t first_group, int64_t end_group, float *output, int64_t rows,
                                                 void *workspace) {
    // Callers check integer_kernels_cpu_has_avx512_vnni(), which is 0 on this architecture.
    (void)weights; (void)super_blocks; (void)lanes; (void)tokens; (void)first_group; (void)end_group;
    (void)output; (void)rows; (void)workspace;
    __builtin_trap();
}

void integer_kernels_one_token_avx512_vnni(const void *weights, int64_t blocks, int32_t is_q4, const void *activation,
                                           int64_t first_group, int64_t end_group, float *output, void *workspace) {
    // Callers check integer_kernels_cpu_has_one_token_avx512(), which is 0 on this architecture.
    (void)weights; (void)blocks; (void)is_q4; (void)activation; (void)first_group; (void)end_group; (void)output;
    (void)workspace;
    __builtin_trap();
}

#endif
