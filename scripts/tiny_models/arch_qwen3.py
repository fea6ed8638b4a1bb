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
        model.attention(p, embedding, heads, kv_heads, head, query_key_norms=True)
        model.gated_feed_forward(p, embedding, feed_forward)
    model.vector("output_norm.weight", embedding)
    model.matrix("output.weight", (embedding, vocabulary))
