// Prompt-processing kernels that use the CPU's widest integer dot product, which Swift's SIMD
// types cannot reach: AVX-512 VNNI `vpdpbusd` (64 products of unsigned by signed bytes summed into
// sixteen 32-bit lanes per instruction). Each function is compiled for its instruction set with a
// per-function target attribute, so the package needs no compiler flags; callers check
// `integer_kernels_cpu_has_avx512_vnni` first. The Swift kernels beside them (EmberKernels,
// TokenLaneKernels.swift) are the portable path, and both are tested against the same references.
#ifndef EMBER_CINTEGERKERNELS_H
#define EMBER_CINTEGERKERNELS_H

#include <stdint.h>

/// 1 when this CPU executes AVX-512 F and AVX-512 VNNI instructions and the operating system saves
/// their registers (`__builtin_cpu_supports`), else 0.
int32_t integer_kernels_cpu_has_avx512_vnni(void);

/// Blocks (32 columns each) of the widest matrix `integer_kernels_token_lanes_avx512_vnni` takes: its weights
/// are unpacked into the caller's workspace, 1 KiB per block plus 256 bytes of scales.
int64_t integer_kernels_token_lanes_max_blocks(int64_t workspace_bytes);

/// Outputs `output[t * rows + g * 32 + r]` of interleaved-weight groups `g` in
/// `first_group ..< end_group` for tokens `t < tokens`, from activations transposed to token
/// lanes in quad layout (per 32 tokens and block: for quad q of elements 4q ..< 4q + 4 and
/// half h of the tokens, 16 tokens × 4 bytes at (2q + h) · 64; then 32 Float scales at 1024 and
/// 32 Float sums (Q4_1) or Int32 16 · Σ q (Q5_0) at 1152; 1280 bytes).
///
/// `weights`: the interleaved storage (`InterleavedWeights`), `blocks` blocks a group, of
/// `is_q4` ? Q4_1 (640 bytes a group block) : Q5_0 decoded to signed bytes (1088).
/// Floating-point steps are those of the Swift kernel in the same order, so the outputs are the
/// same bits. `workspace` holds at least `blocks` · 1280 + 4096 bytes (64-byte aligned).
void integer_kernels_token_lanes_avx512_vnni(const void *weights, int64_t blocks, int32_t is_q4,
                                   const void *lanes, int64_t tokens,
                                   int64_t first_group, int64_t end_group,
                                   float *output, int64_t rows, void *workspace);

/// Q6_K batches: activations (Q8_K rows, 292 bytes a 256-element super-block: Float d, 256 Int8,
/// 16 Int16 sums) transposed into token vectors of 16 tokens. Per vector and super-block
/// (`EMBER_Q6K_LANE_BLOCK_BYTES`): for quad k of elements 4k ..< 4k + 4, the 16 tokens' 4 bytes at
/// k · 64; the 16 tokens' d (Float) at 4096; per 16-element sub-block s, the 16 tokens'
/// 32 · Σ q (Int32) at 4160 + s · 64. Tokens past `tokens` are zero. Plain C, any CPU.
#define EMBER_Q6K_LANE_BLOCK_BYTES 5184
void integer_kernels_q6k_transpose_activations(const void *activations, int64_t row_bytes, int64_t super_blocks, int64_t tokens,
                                     int64_t first_vector, int64_t end_vector, void *lanes);

/// Super-blocks (256 columns each) of the widest Q6_K matrix `integer_kernels_q6k_token_lanes_avx512_vnni`
/// takes in a workspace of `workspace_bytes`.
int64_t integer_kernels_q6k_max_super_blocks(int64_t workspace_bytes);

/// Outputs `output[t * rows + g * 32 + r]` of Q6_K interleaved groups (`Q6KInterleaved.swift`,
/// 6720 bytes a group's super-block) `first_group ..< end_group` for tokens `t < tokens`, from
/// activations transposed by `integer_kernels_q6k_transpose_activations`: each super-block's exact integer
/// sum, then the Swift kernel's floating-point steps in its order (four running sums by
/// super-block modulo 4, the last incomplete four into the first), so the same bits.
void integer_kernels_q6k_token_lanes_avx512_vnni(const void *weights, int64_t super_blocks, const void *lanes, int64_t tokens,
                                       int64_t first_group, int64_t end_group, float *output, int64_t rows,
                                       void *workspace);

/// 1 when this CPU also has AVX-512 BW and VBMI (byte permutes), which the one-token kernel needs.
int32_t integer_kernels_cpu_has_one_token_avx512(void);

/// One token's outputs `output[g * 32 + r]` of interleaved-weight groups `g` in
/// `first_group ..< end_group`: `is_q4` ? Q4_1's layout (640 bytes a group block) with a Q8_1
/// activation row : Q8_0's layout (1088 bytes; Q8_0, or Q5_0 decoded to signed bytes) with a Q8_0
/// activation row. Four byte positions of the 32 rows are permuted into row quads (`vpermt2b`) and
/// summed by `vpdpbusd`; each block's integer sum is exact, and the floating-point steps are those of
/// `InterleavedWeights.multiplyQ4_1` / `multiplyBlockSums` in the same order, so the same bits.
/// `workspace`: 4 · `blocks` bytes, 4-byte aligned (Q8_0's layout keeps each block's 128 · Σ q there).
void integer_kernels_one_token_avx512_vnni(const void *weights, int64_t blocks, int32_t is_q4, const void *activation,
                                           int64_t first_group, int64_t end_group, float *output, void *workspace);

/// Super-blocks (256 columns each) of the widest Q4_K matrix `integer_kernels_q4k_token_lanes_avx512_vnni`
/// takes in a workspace of `workspace_bytes`.
int64_t integer_kernels_q4k_max_super_blocks(int64_t workspace_bytes);

/// Outputs `output[t * rows + g * 32 + r]` of Q4_K interleaved groups (`Q4KInterleaved.swift`,
/// 4736 bytes a group's super-block) `first_group ..< end_group` for tokens `t < tokens`, from Q8_K
/// activations transposed by `integer_kernels_q6k_transpose_activations`: per super-block the exact
/// integer sums Σ scale · Σ q · y and Σ minimum · Σ y, then `InterleavedWeights.multiplyQ4_KOneToken`'s
/// floating-point steps in its order (two running fused multiply-adds, one subtraction), so the same bits.
void integer_kernels_q4k_token_lanes_avx512_vnni(const void *weights, int64_t super_blocks, const void *lanes, int64_t tokens,
                                                 int64_t first_group, int64_t end_group, float *output, int64_t rows,
                                                 void *workspace);

/// One token's outputs `output[g * 32 + r]` of Q4_K interleaved groups `first_group ..< end_group`
/// from a Q8_K activation row (292 bytes a super-block): nibbles permuted into row quads and summed by
/// `vpdpbusd` as in `integer_kernels_one_token_avx512_vnni`, and the floating-point steps of
/// `InterleavedWeights.multiplyQ4_KOneToken`, so the same bits. Needs `integer_kernels_cpu_has_one_token_avx512`.
void integer_kernels_q4k_one_token_avx512_vnni(const void *weights, int64_t super_blocks, const void *activation,
                                               int64_t first_group, int64_t end_group, float *output);

#endif
