"""qwen3moe (Qwen3-30B-A3B's structure): qwen3's attention (GQA with a head length that is not
embedding/heads, per-head RMS norms of queries and keys before NeoX RoPE) and a mixture-of-experts
feed-forward block in every layer: a router `ffn_gate_inp` (kept F32, as llama.cpp's quantizer
keeps it), softmax over the experts, the top `expert_used_count` chosen and their weights
renormalized to sum to one, each chosen expert a SwiGLU of `expert_feed_forward_length`, stored
as 3-D tensors [embedding, expert feed-forward, experts]. No shared expert, untied output."""
ARCHITECTURE = "qwen3moe"


def build(model) -> None:
    embedding, layers, heads, kv_heads, head = 128, 4, 4, 2, 48
    experts, used_experts, expert_feed_forward = 8, 2, 96
    # feed_forward_length is what a dense model of this size would use; llama.cpp reads it but the
    # experts take their width from expert_feed_forward_length (as in Qwen3-30B-A3B's file).
    model.common_keys(context=4096, embedding=embedding, layers=layers, feed_forward=384, heads=heads,
                      kv_heads=kv_heads, epsilon=1e-6, rope_base=1_000_000.0, key_length=head, value_length=head)
    model.key("expert_count", experts)
    model.key("expert_used_count", used_experts)
    model.key("expert_feed_forward_length", expert_feed_forward)
    vocabulary = model.vocabulary_size
    model.matrix("token_embd.weight", (embedding, vocabulary), scale=1.0)
    for i in range(layers):
        p = f"blk.{i}."
        model.attention(p, embedding, heads, kv_heads, head, query_key_norms=True)
        model.vector(p + "ffn_norm.weight", embedding)
        model.matrix(p + "ffn_gate_inp.weight", (embedding, experts), quantize=False)
        model.matrix(p + "ffn_gate_exps.weight", (embedding, expert_feed_forward, experts))
        model.matrix(p + "ffn_up_exps.weight", (embedding, expert_feed_forward, experts))
        model.matrix(p + "ffn_down_exps.weight", (expert_feed_forward, embedding, experts))
    model.vector("output_norm.weight", embedding)
    model.matrix("output.weight", (embedding, vocabulary))
