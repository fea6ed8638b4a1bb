"""Ministral 8B / Mistral Small as llama.cpp stores them: the `llama` architecture with Mistral's
settings — GQA 4:1, head length 32 independent of embedding / heads, RoPE base 1e8 — and the
output tied to the token embeddings (no output.weight), as the small Mistral and SmolLM2 files do."""
ARCHITECTURE = "ministral"
GGUF_ARCHITECTURE = "llama"


def build(model) -> None:
    embedding, layers, feed_forward, heads, kv_heads, head = 128, 4, 384, 8, 2, 32
    model.common_keys(context=32768, embedding=embedding, layers=layers, feed_forward=feed_forward, heads=heads,
                      kv_heads=kv_heads, epsilon=1e-5, rope_base=100_000_000.0, key_length=head, value_length=head,
                      rope_dimensions=head)
    vocabulary = model.vocabulary_size
    model.matrix("token_embd.weight", (embedding, vocabulary))
    for i in range(layers):
        p = f"blk.{i}."
        model.attention(p, embedding, heads, kv_heads, head)
        model.gated_feed_forward(p, embedding, feed_forward)
    model.vector("output_norm.weight", embedding)
