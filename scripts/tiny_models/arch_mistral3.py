"""mistral3 (Ministral 3's structure): the llama block (RoPE on adjacent pairs, GQA, SwiGLU) with
YaRN context extension (rope.scaling.type yarn, factor, original context, beta fast/slow) and
Llama-4-style attention temperature tuning: queries are scaled by 1 + t·log(1 + ⌊pos / original
context⌋). The original context is short here so the 64-token test sequences cross it."""
ARCHITECTURE = "mistral3"


def build(model, experts: tuple[int, int] | None = None) -> None:
    """`experts`: (count, used) of a routed mixture of experts replacing every feed-forward, each
    expert as wide as `feed_forward_length` (llama.cpp's mistral3 reads no expert width), or None."""
    embedding, layers, feed_forward, heads, kv_heads = 128, 4, 320, 4, 1
    if experts:
        feed_forward = 96
    head = 32
    model.common_keys(context=512, embedding=embedding, layers=layers, feed_forward=feed_forward, heads=heads,
                      kv_heads=kv_heads, epsilon=1e-5, rope_base=1_000_000.0, key_length=head, value_length=head,
                      rope_dimensions=head)
    model.key("rope.scaling.type", "yarn")
    model.key("rope.scaling.factor", 16.0)
    model.key("rope.scaling.original_context_length", 32)
    model.key("rope.scaling.yarn_beta_fast", 32.0)
    model.key("rope.scaling.yarn_beta_slow", 1.0)
    model.key("rope.scaling.yarn_log_multiplier", 1.0)
    model.key("attention.temperature_scale", 0.1)
    if experts:
        model.key("expert_count", experts[0])
        model.key("expert_used_count", experts[1])
    vocabulary = model.vocabulary_size
    model.matrix("token_embd.weight", (embedding, vocabulary), scale=1.0)
    for i in range(layers):
        p = f"blk.{i}."
        model.attention(p, embedding, heads, kv_heads, head)
        if experts:
            model.vector(p + "ffn_norm.weight", embedding)
            model.matrix(p + "ffn_gate_inp.weight", (embedding, experts[0]), quantize=False)
            model.matrix(p + "ffn_gate_exps.weight", (embedding, feed_forward, experts[0]))
            model.matrix(p + "ffn_up_exps.weight", (embedding, feed_forward, experts[0]))
            model.matrix(p + "ffn_down_exps.weight", (feed_forward, embedding, experts[0]))
        else:
            model.gated_feed_forward(p, embedding, feed_forward)
    model.vector("output_norm.weight", embedding)
    model.matrix("output.weight", (embedding, vocabulary))
