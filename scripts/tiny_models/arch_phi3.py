"""phi3 (Phi-4-mini's structure): fused QKV projection (`attn_qkv`), fused gate and up (`ffn_up`
holds 2 × feed-forward rows: gate first), partial RoPE on split halves (rope.dimension_count <
head length), LongRoPE frequency factors (`rope_factors_short/long`, short below the original
context) and the rope attention factor, GQA, untied output."""
import numpy as np

ARCHITECTURE = "phi3"


def build(model) -> None:
    embedding, layers, feed_forward, heads, kv_heads = 128, 4, 256, 4, 2
    head = embedding // heads  # phi3 ties the head length to embedding / heads
    rope_dimensions = head * 3 // 4  # Phi-4-mini rotates 96 of 128
    model.common_keys(context=8192, embedding=embedding, layers=layers, feed_forward=feed_forward, heads=heads,
                      kv_heads=kv_heads, epsilon=1e-5, rope_base=10000.0, rope_dimensions=rope_dimensions)
    model.key("rope.scaling.original_context_length", 4096)
    model.key("rope.scaling.attn_factor", 1.19)
    vocabulary = model.vocabulary_size
    model.matrix("token_embd.weight", (embedding, vocabulary), scale=1.0)
    # LongRoPE factors (one set, shared by every layer); the short set applies at contexts ≤ 4096.
    pairs = rope_dimensions // 2
    model.add("rope_factors_short.weight", (1.0 + model.random.random(pairs) * 2).astype(np.float32), quantize=False)
    model.add("rope_factors_long.weight", (1.0 + model.random.random(pairs) * 20).astype(np.float32), quantize=False)
    for i in range(layers):
        p = f"blk.{i}."
        model.vector(p + "attn_norm.weight", embedding)
        model.matrix(p + "attn_qkv.weight", (embedding, embedding + 2 * kv_heads * head))
        model.matrix(p + "attn_output.weight", (embedding, embedding))
        model.vector(p + "ffn_norm.weight", embedding)
        model.matrix(p + "ffn_up.weight", (embedding, 2 * feed_forward))
        model.matrix(p + "ffn_down.weight", (feed_forward, embedding))
    model.vector("output_norm.weight", embedding)
    model.matrix("output.weight", (embedding, vocabulary))
