"""gemma3n (Gemma 3n E2B/E4B's structure): embeddings scaled by √d and tied to the output, four
AltUp streams (the embedding projected to three more, rescaled to its magnitude; per layer a
router-weighted prediction before and a correction after the block; unembedded and averaged at
the end), a LAuReL low-rank branch beside attention, per-layer embeddings gated into the AltUp
streams, per-head RMS norms of queries and keys and an unweighted one of values, attention scale
1, GeGLU with Gaussian top-k activation sparsity in the first 10 layers, sliding and global layers
with their own RoPE bases, layers from 20 on reusing the KV cache of the last sliding and the last
global layer before them, and final-logit softcapping.

llama.cpp hard-codes several sizes of the real models rather than reading them: 4 AltUp inputs,
per-layer embeddings of 256, LAuReL rank 64, KV sharing from layer 20 and sparsity in layers
0–9 (quantile 0.95). The tiny model keeps those, so it has 22 layers and the 256-wide per-layer
embeddings dominate its size.

Attention has scale 1 after RMS norms of query and key heads, so their norm weights are drawn
around head_length^-1/4: scores then spread like standard 1/√d attention. With weights around 1
the random model's softmax is so peaked that half-precision rounding differences flip it."""
import numpy as np

ARCHITECTURE = "gemma3n"

# Weights of the norms after attention, feed-forward and per-layer input: what each block adds
# stays smaller than the streams it updates, so 8-bit rounding flips upstream are not amplified
# layer after layer (see arch_gemma4.py).
POST_NORM = 0.4


def build(model) -> None:
    embedding, layers, heads, kv_heads, head, feed_forward = 32, 22, 2, 1, 32, 256
    # The feed-forward block is wide enough that the sparse layers keep a dozen gate values: with a
    # handful, the post-feed-forward norm magnifies whichever barely passes the cutoff.
    per_layer, altup, laurel_rank = 256, 4, 64
    first_shared, sparse_layers = 20, 10
    window = 24
    global_layers = {4, 9, 14, 19, 21}   # layer 20 reuses layer 18's cache, layer 21 layer 19's
    is_sliding = [i not in global_layers for i in range(layers)]
    model.common_keys(context=4096, embedding=embedding, layers=layers, feed_forward=feed_forward, heads=heads,
                      kv_heads=kv_heads, epsilon=1e-6, rope_base=1_000_000.0, key_length=head, value_length=head)
    model.key("rope.freq_base_swa", 10_000.0)
    model.key("attention.sliding_window", window)
    model.key("attention.sliding_window_pattern", is_sliding)
    model.key("attention.shared_kv_layers", layers - first_shared)
    model.key("embedding_length_per_layer_input", per_layer)
    model.key("altup.active_idx", 0)
    model.key("altup.num_inputs", altup)
    # The converter's Φ⁻¹(0.95) for the sparse layers and Φ⁻¹(0) = -inf for the others.
    model.key("activation_sparsity_scale", [1.6448533535003662] * sparse_layers + [float("-inf")] * (layers - sparse_layers))
    model.key("final_logit_softcapping", 30.0)

    vocabulary = model.vocabulary_size
    model.matrix("token_embd.weight", (embedding, vocabulary))
    model.matrix("per_layer_token_embd.weight", (per_layer * layers, vocabulary), scale=1.0 / np.sqrt(per_layer))
    model.matrix("per_layer_model_proj.weight", (embedding, per_layer * layers))
    model.vector("per_layer_proj_norm.weight", per_layer)
    model.matrix("altup_proj.weight", (embedding, embedding, altup - 1))
    model.matrix("altup_unembd_proj.weight", (embedding, embedding, altup - 1))
    for i in range(layers):
        p = f"blk.{i}."
        model.vector(p + "attn_norm.weight", embedding)
        model.matrix(p + "attn_q.weight", (embedding, heads * head))
        model.matrix(p + "attn_k.weight", (embedding, kv_heads * head))
        model.matrix(p + "attn_v.weight", (embedding, kv_heads * head))
        model.vector(p + "attn_q_norm.weight", head, mean=head ** -0.25, spread=0.02)
        model.vector(p + "attn_k_norm.weight", head, mean=head ** -0.25, spread=0.02)
        model.matrix(p + "attn_output.weight", (heads * head, embedding))
        model.vector(p + "post_attention_norm.weight", embedding, mean=POST_NORM, spread=0.05)
        model.vector(p + "ffn_norm.weight", embedding)
        model.matrix(p + "ffn_gate.weight", (embedding, feed_forward))
        model.matrix(p + "ffn_up.weight", (embedding, feed_forward))
        model.matrix(p + "ffn_down.weight", (feed_forward, embedding))
        model.vector(p + "post_ffw_norm.weight", embedding, mean=POST_NORM, spread=0.05)
        model.matrix(p + "inp_gate.weight", (embedding, per_layer))
        model.matrix(p + "proj.weight", (per_layer, embedding))
        model.vector(p + "post_norm.weight", embedding, mean=POST_NORM, spread=0.05)
        # AltUp: the router sees the normed active stream divided by d, so it is scaled up to give
        # modalities well inside tanh's range rather than near zero. The prediction coefficients
        # stay small, as trained ones do: at the default scale every layer multiplies the streams
        # by about 1.4, they grow a thousandfold over 22 layers and bury the block's output in
        # rounding.
        model.matrix(p + "altup_router.weight", (embedding, altup), scale=4.0)
        model.vector(p + "altup_router_norm.weight", embedding)
        model.matrix(p + "altup_predict_coef.weight", (altup, altup * altup), scale=0.05)
        model.matrix(p + "altup_correct_coef.weight", (altup, altup), scale=0.2)
        model.vector(p + "altup_correct_scale.weight", embedding)
        model.matrix(p + "laurel_l.weight", (embedding, laurel_rank))
        model.matrix(p + "laurel_r.weight", (laurel_rank, embedding))
        model.vector(p + "laurel_post_norm.weight", embedding)
    model.vector("output_norm.weight", embedding)
