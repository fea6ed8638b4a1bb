#!/usr/bin/env python3
"""llama-bench's method through llama-cpp-python's low-level API, printing the same JSON as
`ember bench --json`: pp (one batch of random tokens), tg (single-token steps), warm-up first,
mean ± sd over repetitions; flash attention off, n_ubatch 512."""
import argparse, ctypes, json, random, resource, statistics, sys, time

import llama_cpp as L


def first(*names):
    for name in names:
        if hasattr(L, name):
            return getattr(L, name)
    raise AttributeError(f"llama_cpp has none of {names}")


def peak_rss_bytes():
    """VmHWM: the peak of this process since exec (ru_maxrss would include a forking parent's)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()

    L.llama_backend_init()
    start = time.perf_counter()
    model_params = L.llama_model_default_params()
    model = first("llama_model_load_from_file", "llama_load_model_from_file")(args.model.encode(), model_params)
    context_params = L.llama_context_default_params()
    context_params.n_ctx = max(args.prompt_tokens, args.gen_tokens, 16) + 16
    context_params.n_batch = 512
    context_params.n_ubatch = 512
    context_params.n_threads = args.threads
    context_params.n_threads_batch = args.threads
    if hasattr(context_params, "flash_attn_type"):
        context_params.flash_attn_type = 0
    elif hasattr(context_params, "flash_attn"):
        context_params.flash_attn = False
    context = first("llama_init_from_model", "llama_new_context_with_model")(model, context_params)
    load_ms = (time.perf_counter() - start) * 1000
    vocab = L.llama_model_get_vocab(model) if hasattr(L, "llama_model_get_vocab") else None
    n_vocab = L.llama_vocab_n_tokens(vocab) if vocab is not None and hasattr(L, "llama_vocab_n_tokens") else L.llama_n_vocab(model)

    def clear():
        if hasattr(L, "llama_get_memory") and hasattr(L, "llama_memory_clear"):
            L.llama_memory_clear(L.llama_get_memory(context), True)
        elif hasattr(L, "llama_kv_self_clear"):
            L.llama_kv_self_clear(context)
        else:
            L.llama_kv_cache_clear(context)

    def decode(tokens):
        array = (L.llama_token * len(tokens))(*tokens)
        if L.llama_decode(context, L.llama_batch_get_one(array, len(tokens))) != 0:
            sys.exit("llama_decode failed")

    first_start = time.perf_counter()
    decode([1])
    first_token_ms = (time.perf_counter() - first_start) * 1000

    rng = random.Random(1)
    prompt = [rng.randrange(n_vocab) for _ in range(args.prompt_tokens)]

    def pp():
        clear()
        t = time.perf_counter()
        decode(prompt)
        return args.prompt_tokens / (time.perf_counter() - t)

    def tg():
        clear()
        t = time.perf_counter()
        token = prompt[0] if prompt else 1
        for _ in range(args.gen_tokens):
            decode([token])
        return args.gen_tokens / (time.perf_counter() - t)

    def measure(function):
        function()
        samples = [function() for _ in range(args.repetitions)]
        return {"mean": statistics.mean(samples), "sd": statistics.stdev(samples) if len(samples) > 1 else 0.0}

    result = {
        "pp_tok_s": measure(pp) if args.prompt_tokens else {"mean": 0, "sd": 0},
        "tg_tok_s": measure(tg) if args.gen_tokens else {"mean": 0, "sd": 0},
        "load_ms": load_ms,
        "peak_rss_bytes": peak_rss_bytes(),
        "first_token_ms": first_token_ms,
        "threads": args.threads,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
