"""Mistral Large 3's mixture of experts in the mistral3 architecture: mistral3's attention (YaRN,
attention temperature tuning) with every feed-forward replaced by 8 routed SwiGLU experts, softmax
gating, the top 2 renormalized to sum to one, each expert as wide as `feed_forward_length`."""
import arch_mistral3

ARCHITECTURE = "mistral3moe"
GGUF_ARCHITECTURE = "mistral3"


def build(model) -> None:
    arch_mistral3.build(model, experts=(8, 2))
