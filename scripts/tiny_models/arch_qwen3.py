"""qwen3 (Qwen3-4B's structure): GQA with a head length that is not embedding/heads, per-head RMS
norms of queries and keys before RoPE (NeoX halves), SwiGLU, untied output."""
ARCHITECTURE = "qwen3"


def build(model) -> None:
    embedding, layers, feed_forward, heads, kv_heads, head = 128, 4, 320, 4, 2, 48
    model.common_keys(context=4096, embedding=embedding, layers=layers, feed_forward=feed_forward, heads=heads,
                      kv_heads=kv_heads, epsilon=1e-6, rope_base=1_000_000.0, key_length=head, value_length=head)
    vocabulary = model.vocabulary_size
    model.matrix("token_embd.weight", (embedding, vocabulary), scale=1.0)
    for i in range(layers):
        p = f"blk.{i}."
        model.vector(p + "attn_norm.weight", embedding)
        model.matrix(p + "attn_q.weight", (embedding, heads * head))
        model.matrix(p + "attn_k.weight", (embedding, kv_heads * head))
        model.matrix(p + "attn_v.weight", (embedding, kv_heads * head))
        model.vector(p + "attn_q_norm.weight", head)
        model.vector(p + "attn_k_norm.weight", head)
        model.matrix(p + "attn_output.weight", (heads * head, embedding))
        model.vector(p + "ffn_norm.weight", embedding)
        model.matrix(p + "ffn_gate.weight", (embedding, feed_forward))
        model.matrix(p + "ffn_up.weight", (embedding, feed_forward))
        model.matrix(p + "ffn_down.weight", (feed_forward, embedding))
    model.vector("output_norm.weight", embedding)
    model.matrix("output.weight", (embedding, vocabulary))
