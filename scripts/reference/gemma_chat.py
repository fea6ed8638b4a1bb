"""llama.cpp's greedy continuation of a Gemma chat turn, with the margin of every step:
`python scripts/reference/gemma_chat.py MODEL.gguf` (from the venv of scripts/tiny_models/setup.sh)
rewrites Tests/Fixtures/llamacpp-gemma3-chat.json.

Besides the text it records, per generated token, the id and llama.cpp's gap between its top two
logits, so the test can tell a real divergence from a near-tie that any last-bit difference tips.
"""
import json
import sys
from pathlib import Path

import numpy as np
import llama_cpp

FIXTURE = Path(__file__).resolve().parents[2] / "Tests/Fixtures/llamacpp-gemma3-chat.json"
PROMPT = "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"
MAX_TOKENS = 24


def main() -> None:
    model = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    prompt_ids = model.tokenize(PROMPT.encode(), add_bos=True, special=True)
    model.reset()
    model.eval(prompt_ids)
    ids, gaps, pieces = [], [], []
    for _ in range(MAX_TOKENS):
        logits = np.array(model.scores[model.n_tokens - 1], dtype=np.float32)
        order = np.argsort(-logits, kind="stable")
        token = int(order[0])
        ids.append(token)
        gaps.append(float(logits[order[0]] - logits[order[1]]))
        pieces.append(model.detokenize([token], special=False))
        if token == model.token_eos():
            break
        model.eval([token])
    text = b"".join(pieces).decode("utf-8", errors="replace")
    fixture = {
        "note": ("llama.cpp (llama-cpp-python " + llama_cpp.__version__ + ", GGML_NATIVE=ON) greedy completion of a Gemma "
                 "chat turn on gemma-3-270m-q4_k_m.gguf, n_ctx 512, 2 threads, one token at a time. The file is Gemma 3 "
                 "270M without instruction tuning (no tokenizer.chat_template), so it echoes the turn instead of answering. "
                 "gen_ids and top2_gaps: each generated token and llama.cpp's margin between its two largest logits there."),
        "prompt": PROMPT,
        "prompt_ids": prompt_ids,
        "max_tokens": MAX_TOKENS,
        "text": text,
        "gen_ids": ids,
        "top2_gaps": gaps,
    }
    FIXTURE.write_text(json.dumps(fixture, indent=2) + "\n")
    print(text, [round(g, 3) for g in gaps])


if __name__ == "__main__":
    main()
