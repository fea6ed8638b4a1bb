#!/usr/bin/env python3
"""Teacher-forced fidelity of Ember against llama.cpp (llama-cpp-python) on held-out texts.
Usage (with make bench's venv): ~/.cache/ember/venv/bin/python scripts/fidelity.py MODEL.gguf \
    .build/release/ember scripts/fidelity_texts.json [PREFILL=8] [THREADS=1]
The texts were written after the Q4_K change, not tuned against.
Each text: the first PREFILL tokens as one batch, every later token a one-token step, in both
engines. Reports argmax agreement, top-5 |Δlogit| p99/max (llama.cpp's top-5 ids), and
llama.cpp's own batch-vs-step agreement (the whole text as one batch against the steps)."""
import json, subprocess, sys, math
import numpy as np
import llama_cpp

model, ember = sys.argv[1], sys.argv[2]
texts = json.load(open(sys.argv[3]))
prefill = int(sys.argv[4]) if len(sys.argv) > 4 else 8
threads = sys.argv[5] if len(sys.argv) > 5 else "1"
llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_batch=512, n_ubatch=512, logits_all=True, verbose=False,
                      n_threads=int(threads), flash_attn=False)

def llama_logits(tokens, steps_from):
    llm.reset()
    llm.eval(tokens[:steps_from])
    for t in tokens[steps_from:]:
        llm.eval([t])
    return np.array(llm.scores[:len(tokens)], dtype=np.float32)

agree = total = 0
deltas = []
self_agree = 0
self_deltas = []
nll_llama = nll_ember = 0.0
nll_count = 0
for text in texts:
    tokens = llm.tokenize(text.encode(), add_bos=True, special=False)
    reference = llama_logits(tokens, prefill)
    batch = llama_logits(tokens, len(tokens))
    out = subprocess.run([ember, "logits", "--model", model, "--threads", threads, "--ids", ",".join(map(str, tokens)),
                          "--top", "64", "--prefill", str(prefill)], capture_output=True, text=True, check=True)
    top = json.loads(out.stdout)["top"]
    for position in range(len(tokens)):
        row = reference[position]
        ember_row = dict((int(i), float(v)) for i, v in top[position])
        best = int(np.argmax(row))
        ember_best = max(ember_row, key=ember_row.get)
        agree += best == ember_best
        self_agree += best == int(np.argmax(batch[position]))
        total += 1
        ids = np.argsort(-row)[:5]
        floor = min(ember_row.values())
        for i in ids:
            deltas.append(abs(ember_row.get(int(i), floor) - row[i]))
            self_deltas.append(abs(batch[position][i] - row[i]))
        if position + 1 < len(tokens):
            nxt = tokens[position + 1]
            lse = float(np.log(np.sum(np.exp(row - row.max()))) + row.max())
            nll_llama += lse - row[nxt]
            nll_count += 1
deltas = np.array(deltas); self_deltas = np.array(self_deltas)
print(json.dumps({
    "positions": total,
    "argmax_agreement_percent": round(100 * agree / total, 2),
    "top5_abs_delta_p99": round(float(np.percentile(deltas, 99)), 3),
    "top5_abs_delta_max": round(float(deltas.max()), 3),
    "llama_batch_vs_step_argmax_percent": round(100 * self_agree / total, 2),
    "llama_batch_vs_step_p99": round(float(np.percentile(self_deltas, 99)), 3),
    "llama_perplexity": round(math.exp(nll_llama / nll_count), 4),
}))
