"""gemma4 (Gemma 4 E2B/E4B's structure): embeddings scaled by √d and tied to the output, sliding
and global layers with their own head lengths, KV head counts, RoPE bases and rotary widths
(global layers rotate a quarter of each head through `rope_freqs`, llama.cpp's "proportional"
RoPE), per-head RMS norms of queries and keys and an unweighted one of values, attention scale 1,
GeGLU with wider feed-forward blocks on the KV-sharing layers, per-layer embeddings (a token
table and a projection of the embeddings, gated into every layer), a learned scalar per layer, the
last layers reusing the KV cache of the last sliding and the last global layer before them, one
global layer whose values are its keys (no `attn_v`), and final-logit softcapping.

Attention has scale 1 after RMS norms of query and key heads, so their norm weights are drawn
around head_length^-1/4: scores then spread like standard 1/√d attention. With weights around 1
the random model's softmax is so peaked that half-precision rounding differences flip it."""
import numpy as np

ARCHITECTURE = "gemma4"

# Weights of the norms after attention, feed-forward and per-layer input (what each adds to the
# residual stream), and a layer scalar near 1 (as initialized). With both around 1, or scalars
# that shrink the stream, every layer's fresh output dominates it and the 8-bit rounding flips
# that tiny summation differences cause upstream are amplified layer after layer: in a float64
# replica, flipping roundings alone moves the Q8_0 logits by 0.25 rather than 0.1.
POST_NORM = 0.4


def build(model, per_layer: int = 32, shared_layers: int = 5, experts: tuple[int, int, int] | None = None) -> None:
    """`per_layer`: embedding_length_per_layer_input (0: none); `shared_layers`: how many last
    layers reuse earlier KV caches; `experts`: (count, used, feed-forward length) of a routed
    mixture of experts beside every layer's dense feed-forward (Gemma 4 26B-A4B), or None."""
    embedding, layers, heads = 64, 10, 4
    swa_head, full_head = 32, 64            # key/value length of sliding and global layers
    swa_kv_heads, full_kv_heads = 2, 1
    feed_forward = 128
    window = 24
    is_sliding = [(i % 5) != 4 for i in range(layers)]   # four sliding layers, then a global one
    first_shared = layers - shared_layers
    kv_heads = [swa_kv_heads if s else full_kv_heads for s in is_sliding]
    # use_double_wide_mlp: KV-sharing layers have twice the feed-forward width.
    feed_forwards = [feed_forward if i < first_shared else 2 * feed_forward for i in range(layers)]
    model.common_keys(context=4096, embedding=embedding, layers=layers, feed_forward=feed_forwards, heads=heads,
                      kv_heads=kv_heads, epsilon=1e-6, rope_base=1_000_000.0, key_length=full_head,
                      value_length=full_head, rope_dimensions=full_head)
    model.key("attention.key_length_swa", swa_head)
    model.key("attention.value_length_swa", swa_head)
    model.key("rope.dimension_count_swa", swa_head)
    model.key("rope.freq_base_swa", 10_000.0)
    model.key("attention.sliding_window", window)
    model.key("attention.sliding_window_pattern", is_sliding)
    model.key("attention.shared_kv_layers", shared_layers)
    model.key("embedding_length_per_layer_input", per_layer)
    model.key("final_logit_softcapping", 30.0)
    if experts:
        model.key("expert_count", experts[0])
        model.key("expert_used_count", experts[1])
        model.key("expert_feed_forward_length", experts[2])

    vocabulary = model.vocabulary_size
    # Tied output: the embedding table at the default scale gives logits with sd ≈ 1.
    model.matrix("token_embd.weight", (embedding, vocabulary))
    if per_layer:
        model.matrix("per_layer_token_embd.weight", (per_layer * layers, vocabulary), scale=1.0 / np.sqrt(per_layer))
        model.matrix("per_layer_model_proj.weight", (embedding, per_layer * layers))
        model.vector("per_layer_proj_norm.weight", per_layer)
    # Proportional RoPE of the global layers: a quarter of the head rotates, the rest is frozen by
    # huge frequency factors (as the converter writes them).
    rotated = full_head // 2 // 4
    model.add("rope_freqs.weight", np.array([1.0] * rotated + [1e30] * (full_head // 2 - rotated), dtype=np.float32),
              quantize=False)
    for i in range(layers):
        p = f"blk.{i}."
        head = swa_head if is_sliding[i] else full_head
        has_kv = i < first_shared
        model.vector(p + "attn_norm.weight", embedding)
        model.matrix(p + "attn_q.weight", (embedding, heads * head))
        model.vector(p + "attn_q_norm.weight", head, mean=head ** -0.25, spread=0.02)
        if has_kv:
            model.matrix(p + "attn_k.weight", (embedding, kv_heads[i] * head))
            if is_sliding[i]:
                model.matrix(p + "attn_v.weight", (embedding, kv_heads[i] * head))
            model.vector(p + "attn_k_norm.weight", head, mean=head ** -0.25, spread=0.02)
        model.matrix(p + "attn_output.weight", (heads * head, embedding))
        model.vector(p + "post_attention_norm.weight", embedding, mean=POST_NORM, spread=0.05)
        model.vector(p + "ffn_norm.weight", embedding)
        model.matrix(p + "ffn_gate.weight", (embedding, feed_forwards[i]))
        model.matrix(p + "ffn_up.weight", (embedding, feed_forwards[i]))
        model.matrix(p + "ffn_down.weight", (feed_forwards[i], embedding))
        model.vector(p + "post_ffw_norm.weight", embedding, mean=POST_NORM, spread=0.05)
        if experts:
            count, _, expert_feed_forward = experts
            # The router reads its own RMS norm of the stream (÷ √embedding, × this scale); the
            # experts read `pre_ffw_norm_2`'s; each branch has its own post-norm before they add up.
            model.vector(p + "ffn_gate_inp.scale", embedding, mean=np.sqrt(embedding), spread=1.0)
            model.matrix(p + "ffn_gate_inp.weight", (embedding, count), quantize=False)
            model.vector(p + "pre_ffw_norm_2.weight", embedding)
            model.matrix(p + "ffn_gate_exps.weight", (embedding, expert_feed_forward, count))
            model.matrix(p + "ffn_up_exps.weight", (embedding, expert_feed_forward, count))
            model.matrix(p + "ffn_down_exps.weight", (expert_feed_forward, embedding, count))
            model.vector(p + "ffn_down_exps.scale", count, mean=1.0, spread=0.2)
            model.vector(p + "post_ffw_norm_1.weight", embedding, mean=1.0, spread=0.05)
            model.vector(p + "post_ffw_norm_2.weight", embedding, mean=1.0, spread=0.05)
        if per_layer:
            model.matrix(p + "inp_gate.weight", (embedding, per_layer))
            model.matrix(p + "proj.weight", (per_layer, embedding))
            model.vector(p + "post_norm.weight", embedding, mean=POST_NORM, spread=0.05)
        model.vector(p + "layer_output_scale.weight", 1, mean=1.0, spread=0.05)
    model.vector("output_norm.weight", embedding)
