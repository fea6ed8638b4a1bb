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
        model.vector(p + "attn_norm.weight", embedding)
        model.matrix(p + "attn_q.weight", (embedding, heads * head))
        model.matrix(p + "attn_k.weight", (embedding, kv_heads * head))
        model.matrix(p + "attn_v.weight", (embedding, kv_heads * head))
        model.matrix(p + "attn_output.weight", (heads * head, embedding))
        model.vector(p + "ffn_norm.weight", embedding)
        model.matrix(p + "ffn_gate.weight", (embedding, feed_forward))
        model.matrix(p + "ffn_up.weight", (embedding, feed_forward))
        model.matrix(p + "ffn_down.weight", (feed_forward, embedding))
    model.vector("output_norm.weight", embedding)
