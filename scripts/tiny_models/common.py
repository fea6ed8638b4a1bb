"""Shared parts of the tiny random-weight model generator (see README.md in this folder).

Each architecture lives in its own module `arch_<name>.py` that defines

    ARCHITECTURE = "qwen3"            # general.architecture
    def build(model: TinyModel) -> None  # adds hyperparameters and tensors

`TinyModel` hides the GGUF writer, the seeded random numbers, the tokenizer and the weight type of
the variant being written, so an architecture module only says what llama.cpp expects: keys,
tensor names and shapes (in llama.cpp's order, fastest dimension first, as GGUF stores them).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import gguf

# Variants written for every architecture: a float file and a quantized one.
VARIANTS = {
    "f32": gguf.GGMLQuantizationType.F32,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
}

# A byte-level BPE vocabulary of 256 byte tokens, 3 control tokens and a few merges: enough for
# both engines to load the file and for Ember's tokenizer to round-trip text.
CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġ", "a"), ("i", "n"), ("Ġt", "he"), ("e", "r"), ("o", "n"), ("Ġ", "s"),
          ("r", "e"), ("a", "t"), ("e", "n"), ("Ġ", "w"), ("o", "r")]
VOCABULARY_SIZE = 256 + len(CONTROL_TOKENS) + len(MERGES)  # 272


def byte_to_unicode() -> list[str]:
    """GPT-2's printable stand-in character for each byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    table = dict(zip(printable, characters))
    return [chr(table[byte]) for byte in range(256)]


class TinyModel:
    """One GGUF file being written: hyperparameters, tokenizer and random tensors."""

    def __init__(self, path: Path, architecture: str, variant: str, seed_text: str):
        self.architecture = architecture
        self.variant = variant
        self.weight_type = VARIANTS[variant]
        self.writer = gguf.GGUFWriter(str(path), architecture)
        # The same seed for both variants, so the quantized file holds the float file's weights.
        seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
        self.random = np.random.default_rng(seed)
        self.vocabulary_size = VOCABULARY_SIZE
        # A neutral name: llama.cpp changes token attributes for some names (e.g. containing "phi3").
        self.writer.add_name("ember tiny random model")
        self._add_tokenizer()

    # Keys -----------------------------------------------------------------------------------------
    def key(self, suffix: str, value) -> None:
        """Adds `<architecture>.<suffix>` with a type chosen from the Python value."""
        name = f"{self.architecture}.{suffix}"
        if isinstance(value, bool):
            self.writer.add_bool(name, value)
        elif isinstance(value, int):
            self.writer.add_uint32(name, value)
        elif isinstance(value, float):
            self.writer.add_float32(name, value)
        elif isinstance(value, str):
            self.writer.add_string(name, value)
        elif isinstance(value, (list, tuple)):
            self.writer.add_array(name, list(value))
        else:
            raise TypeError(f"{name}: unsupported value {value!r}")

    def common_keys(self, *, context: int, embedding: int, layers: int, feed_forward, heads: int, kv_heads,
                    epsilon: float = 1e-6, rope_base: float = 10000.0, key_length: int | None = None,
                    value_length: int | None = None, rope_dimensions: int | None = None) -> None:
        """The keys nearly every decoder has. `feed_forward` and `kv_heads` may be per-layer lists."""
        self.key("context_length", context)
        self.key("embedding_length", embedding)
        self.key("block_count", layers)
        self.key("feed_forward_length", feed_forward)
        self.key("attention.head_count", heads)
        self.key("attention.head_count_kv", kv_heads)
        self.key("attention.layer_norm_rms_epsilon", float(epsilon))
        self.key("rope.freq_base", float(rope_base))
        if key_length is not None:
            self.key("attention.key_length", key_length)
        if value_length is not None:
            self.key("attention.value_length", value_length)
        if rope_dimensions is not None:
            self.key("rope.dimension_count", rope_dimensions)
        self.key("vocab_size", self.vocabulary_size)

    # Tensors --------------------------------------------------------------------------------------
    def matrix(self, name: str, shape: tuple[int, ...], scale: float | None = None, quantize: bool = True) -> np.ndarray:
        """A weight tensor of GGUF shape `shape` (columns first): normal values with standard
        deviation `scale` (1/√columns by default), stored in the variant's type when `quantize`
        and the row length allows it, else F32. Returns the float values (rows last→first).

        Keep the output projection at the default scale (logits with a standard deviation near 1).
        Both engines quantize activations to 8 bits before a quantized matmul, and a difference in
        the last bits upstream (summation order) flips a few roundings; the logit error that
        causes grows with the logit scale. At sd ≈ 1 it stays well under the 0.05 bound, while the
        F32 variants show the engines agree to a few thousandths whatever the scale."""
        columns = shape[0]
        if scale is None:
            scale = 1.0 / np.sqrt(columns)
        values = (self.random.standard_normal(tuple(reversed(shape))) * scale).astype(np.float32)
        self.add(name, values, quantize=quantize)
        return values

    def attention(self, prefix: str, embedding: int, heads: int, kv_heads: int, head: int,
                  query_key_norms: bool = False) -> None:
        """The llama-style attention tensors of one block: norm, Q, K, V (then per-head Q/K norms
        when the family has them), output."""
        self.vector(prefix + "attn_norm.weight", embedding)
        self.matrix(prefix + "attn_q.weight", (embedding, heads * head))
        self.matrix(prefix + "attn_k.weight", (embedding, kv_heads * head))
        self.matrix(prefix + "attn_v.weight", (embedding, kv_heads * head))
        if query_key_norms:
            self.vector(prefix + "attn_q_norm.weight", head)
            self.vector(prefix + "attn_k_norm.weight", head)
        self.matrix(prefix + "attn_output.weight", (heads * head, embedding))

    def gated_feed_forward(self, prefix: str, embedding: int, feed_forward: int) -> None:
        """Norm, gate, up and down of a gated (SwiGLU/GeGLU) feed-forward block."""
        self.vector(prefix + "ffn_norm.weight", embedding)
        self.matrix(prefix + "ffn_gate.weight", (embedding, feed_forward))
        self.matrix(prefix + "ffn_up.weight", (embedding, feed_forward))
        self.matrix(prefix + "ffn_down.weight", (feed_forward, embedding))

    def vector(self, name: str, count: int, mean: float = 1.0, spread: float = 0.1) -> np.ndarray:
        """A norm weight or bias: F32, around `mean`."""
        values = (mean + self.random.standard_normal(count) * spread).astype(np.float32)
        self.add(name, values, quantize=False)
        return values

    def add(self, name: str, values: np.ndarray, quantize: bool = True) -> None:
        """Adds float `values` (numpy order: slowest dimension first) in the variant's type."""
        weight_type = self.weight_type if quantize else gguf.GGMLQuantizationType.F32
        block = gguf.GGML_QUANT_SIZES[weight_type][0]
        if weight_type == gguf.GGMLQuantizationType.F32 or values.ndim < 2 or values.shape[-1] % block != 0:
            self.writer.add_tensor(name, values.astype(np.float32))
            return
        if weight_type == gguf.GGMLQuantizationType.F16:
            self.writer.add_tensor(name, values.astype(np.float16))
            return
        data = gguf.quants.quantize(values, weight_type)
        self.writer.add_tensor(name, data, raw_dtype=weight_type)

    # Tokenizer ------------------------------------------------------------------------------------
    def _add_tokenizer(self) -> None:
        tokens = byte_to_unicode() + CONTROL_TOKENS + [a + b for a, b in MERGES]
        types = [gguf.TokenType.NORMAL] * 256 + [gguf.TokenType.CONTROL] * len(CONTROL_TOKENS) + [gguf.TokenType.NORMAL] * len(MERGES)
        self.writer.add_tokenizer_model("gpt2")
        self.writer.add_tokenizer_pre("default")
        self.writer.add_token_list(tokens)
        self.writer.add_token_types(types)
        self.writer.add_token_merges([f"{a} {b}" for a, b in MERGES])
        self.writer.add_bos_token_id(256)
        self.writer.add_eos_token_id(258)
        self.writer.add_add_bos_token(False)

    def finish(self) -> None:
        self.writer.write_header_to_file()
        self.writer.write_kv_data_to_file()
        self.writer.write_tensors_to_file()
        self.writer.close()
