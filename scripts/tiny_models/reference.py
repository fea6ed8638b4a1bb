"""llama.cpp's logits for the tiny models, as test fixtures: `python reference.py [FILE.gguf ...]`.

For each model (default: every .gguf in Tests/Fixtures/tiny-models) it draws three seeded random
sequences of 64 token ids, runs each through llama.cpp (llama-cpp-python, one thread, flash
attention off, teacher-forced: logits at every position) and writes

    <name>.logits.f32   little-endian float32, sequences × positions × vocabulary
    <name>.json         {"model", "vocabulary", "sequences", "logits", "llama_cpp_python"}

Run it from the venv that scripts/tiny_models/setup.sh prepares.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import llama_cpp

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent.parent / "Tests/Fixtures/tiny-models"
SEQUENCES = 4
LENGTH = 64


def reference(path: Path) -> None:
    model = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_batch=256, n_ubatch=256, n_threads=1,
                            logits_all=True, flash_attn=False, verbose=False)
    vocabulary = model.n_vocab()
    # The same sequences for every variant of an architecture (the name before the last "-").
    seed = int.from_bytes(hashlib.sha256(path.stem.rsplit("-", 1)[0].encode()).digest()[:8], "little")
    random = np.random.default_rng(seed)
    sequences = [random.integers(0, vocabulary, LENGTH).tolist() for _ in range(SEQUENCES)]
    logits = []
    for sequence in sequences:
        model.reset()
        model.eval(sequence)
        logits.append(np.array(model.scores[:LENGTH], dtype=np.float32))
    data = np.stack(logits)
    assert data.shape == (SEQUENCES, LENGTH, vocabulary), data.shape
    assert np.isfinite(data).all(), f"{path.name}: llama.cpp produced non-finite logits"
    data.astype("<f4").tofile(path.with_suffix(".logits.f32"))
    manifest = {"model": path.name, "vocabulary": vocabulary, "sequences": sequences,
                "logits": path.with_suffix(".logits.f32").name, "llama_cpp_python": llama_cpp.__version__}
    path.with_suffix(".json").write_text(json.dumps(manifest) + "\n")
    spread = float(np.mean(np.sort(data, axis=-1)[..., -1] - np.sort(data, axis=-1)[..., -2]))
    print(f"{path.name}: {SEQUENCES}×{LENGTH} positions, logit sd {data.std():.2f}, mean top-1/top-2 gap {spread:.3f}")


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(FIXTURES.glob("*.gguf"))
    for path in paths:
        reference(path)


if __name__ == "__main__":
    main()
