"""Gemma 4 26B-A4B's structure: gemma4's attention (sliding and global layers with their own head
lengths, proportional RoPE, keys as values, softcapping) without per-layer embeddings or KV
sharing, and in every layer a routed mixture of experts beside the dense feed-forward: the router
reads an unweighted RMS norm of the stream scaled by 1/√embedding and a learned per-dimension
scale, softmax over 8 experts, the top 2 renormalized, each a GeGLU expert whose output is scaled
by its own `ffn_down_exps.scale`; the dense and expert branches have their own post-norms, are
added, then normed again."""
import arch_gemma4

ARCHITECTURE = "gemma4moe"
GGUF_ARCHITECTURE = "gemma4"


def build(model) -> None:
    arch_gemma4.build(model, per_layer=0, shared_layers=0, experts=(8, 2, 48))
