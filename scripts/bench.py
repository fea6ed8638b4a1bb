#!/usr/bin/env python3
"""Same-run comparison of Ember and llama.cpp (through llama-cpp-python) on the catalog models.

For each model and thread count the two engines run alternately, each in its own process, with
llama-bench's method (pp of random tokens in one batch, tg of single-token steps, warm-up, mean ±
sd). With IK_LLAMA_BENCH=/path/to/llama-bench (ik_llama.cpp, built outside the repository), that
binary runs in the same alternation at its defaults. Ember's runs also measure the read bandwidth
(`ember bench --roofline`), so each decode figure is reported against its roofline. Writes
BENCHMARKS.md. Run through `make bench`, which prepares the venv."""
import datetime, json, os, platform, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBER = os.path.join(ROOT, ".build", "release", "ember")
PYTHON = sys.argv[1] if len(sys.argv) > 1 else sys.executable
REPETITIONS = int(os.environ.get("EMBER_BENCH_REPETITIONS", "5"))
IK_LLAMA_BENCH = os.environ.get("IK_LLAMA_BENCH") or None
ROUNDS = int(os.environ.get("EMBER_BENCH_ROUNDS", "2"))
C_CLIENT = os.path.join(ROOT, ".build", "ember-c", "ember_client")



def last_level_cache_bytes():
    """The largest CPU cache of cpu0 in bytes (Linux sysfs), or None."""
    import glob
    sizes = []
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes) if sizes else None

def run_json(command, env=None):
    output = subprocess.run(command, check=True, capture_output=True, text=True,
                            env=None if env is None else {**os.environ, **env}).stdout
    return json.loads(output.strip().splitlines()[-1])


def ember(model_path, threads):
    return run_json([EMBER, "bench", "--model", model_path, "--threads", str(threads),
                     "--repetitions", str(REPETITIONS), "--roofline", "--json"])


def ember_portable(model_path, threads):
    """Ember's prompt processing with its portable Swift prompt kernel, beside the detected one."""
    return run_json([EMBER, "bench", "--model", model_path, "--threads", str(threads), "--gen-tokens", "0",
                     "--repetitions", str(REPETITIONS), "--prompt-kernel", "portable", "--json"])


def c_api(model_path, threads):
    """Decode speed of a 128-token greedy chat reply through libember.so (Tests/CClient's `bench`), the
    path an Android app takes, and `ember bench`'s generation at the same depth (the reply's steps attend
    over the chat prompt, which tg128 from an empty context does not), run one after the other."""
    output = subprocess.run([C_CLIENT, "bench", model_path, str(threads), "128", str(REPETITIONS)], check=True,
                            capture_output=True, text=True).stdout
    line = next(l for l in output.splitlines() if l.startswith("decode through the C API:"))
    mean, sd = line.split(":", 1)[1].split("tokens/s")[0].split("±")
    depth = int(line.rsplit(",", 1)[1].split()[0])
    same_depth = run_json([EMBER, "bench", "--model", model_path, "--threads", str(threads), "--prompt-tokens", "0",
                           "--gen-tokens", "128", "--depth", str(depth), "--repetitions", str(REPETITIONS), "--json"])
    return {"mean": float(mean), "sd": float(sd), "depth": depth, "ember_at_depth": same_depth["tg_tok_s"]}


def ik_llama(model_path, threads):
    """ik_llama.cpp's llama-bench at its defaults (pp512 and tg128), as `ember bench --json` fields."""
    output = subprocess.run([IK_LLAMA_BENCH, "-m", model_path, "-t", str(threads), "-p", "512", "-n", "128",
                             "-r", str(REPETITIONS), "-o", "json"], check=True, capture_output=True, text=True).stdout
    tests = json.loads(output[output.index("["):])
    result = {}
    for test in tests:
        key = "pp_tok_s" if test.get("n_gen", 0) == 0 else "tg_tok_s"
        result[key] = {"mean": test["avg_ts"], "sd": test.get("stddev_ts", 0.0)}
    if set(result) != {"pp_tok_s", "tg_tok_s"}:
        raise SystemExit(f"bench: {IK_LLAMA_BENCH} printed no pp and tg results")
    return result


def llamacpp(model_path, threads):
    return run_json([PYTHON, os.path.join(ROOT, "scripts", "bench_llamacpp.py"), "--model", model_path,
                     "--threads", str(threads), "--repetitions", str(REPETITIONS)])


def float_weights(flags):
    """pp512 over SmolLM2 widened to F16 (`ember convert`, cached outside the repository), where a BLAS
    can win: Ember's own F16 kernels; its OpenBLAS path (`--blas`) with the kernels OpenBLAS detects
    and with OPENBLAS_CORETYPE named from the CPU's flags (OpenBLAS 0.3.21 falls back to generic SSE3
    kernels on a CPU model it does not know); llama.cpp; ik_llama.cpp when given. Same alternation."""
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ember", "bench")
    path = os.path.join(cache, "smollm2-f16.gguf")
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        subprocess.run([EMBER, "convert", "--model", "smollm2", "--type", "f16", "--output", path], check=True, capture_output=True)
    core = "SkylakeX" if "avx512f" in flags else "Haswell" if "avx2" in flags else None
    rows = []
    for threads in (1, 2):
        base = [EMBER, "bench", "--model", path, "--threads", str(threads), "--gen-tokens", "0", "--repetitions", str(REPETITIONS), "--json"]
        samples = {"ember": [], "blas": [], "blas_named": [], "llama.cpp": [], "ik_llama.cpp": []}
        description = {}
        for _ in range(ROUNDS):
            samples["ember"].append(run_json(base)["pp_tok_s"])
            detected = run_json(base + ["--blas"])
            samples["blas"].append(detected["pp_tok_s"])
            description["blas"] = detected["blas"]
            if core:
                named = run_json(base + ["--blas"], env={"OPENBLAS_CORETYPE": core})
                samples["blas_named"].append(named["pp_tok_s"])
                description["blas_named"] = named["blas"]
            samples["llama.cpp"].append(run_json([PYTHON, os.path.join(ROOT, "scripts", "bench_llamacpp.py"), "--model", path,
                                                  "--threads", str(threads), "--gen-tokens", "0",
                                                  "--repetitions", str(REPETITIONS)])["pp_tok_s"])
            if IK_LLAMA_BENCH:
                samples["ik_llama.cpp"].append(ik_llama(path, threads)["pp_tok_s"])
        row = {"threads": threads, "description": description}
        for key, values in samples.items():
            if values:
                row[key] = combine(values)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def model_path(name):
    return subprocess.run([EMBER, "models", "path", name], check=True, capture_output=True, text=True).stdout.strip()


def instructions_per_step(paths):
    """Instructions of one decode step of each model (scripts/instructions.sh, callgrind on an AVX2
    build); {} when valgrind cannot run here."""
    try:
        output = subprocess.run([os.path.join(ROOT, "scripts", "instructions.sh"), *paths], check=True,
                                capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, OSError) as error:
        print(f"bench: no instruction counts ({error})", file=sys.stderr)
        return {}
    return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in output.strip().splitlines()}


def combine(samples):
    """Pools the means of alternating rounds: mean of means, largest sd."""
    means = [s["mean"] for s in samples]
    return {"mean": sum(means) / len(means), "sd": max(s["sd"] for s in samples)}


def main():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    interesting = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni") if f in flags]
    import importlib.metadata
    try:
        llama_version = subprocess.run([PYTHON, "-c", "import importlib.metadata as m; print(m.version('llama_cpp_python'))"],
                                       check=True, capture_output=True, text=True).stdout.strip()
    except subprocess.CalledProcessError:
        llama_version = "unknown"
    rows = []
    for name in ("smollm2", "gemma3"):
        path = model_path(name)
        for threads in (1, 2):
            runs = {"ember": [], "llama.cpp": []}
            ik_runs, portable_runs, c_runs = [], [], []
            for _ in range(ROUNDS):
                runs["ember"].append(ember(path, threads))
                c_runs.append(c_api(path, threads))
                runs["llama.cpp"].append(llamacpp(path, threads))
                if IK_LLAMA_BENCH:
                    ik_runs.append(ik_llama(path, threads))
                if runs["ember"][-1].get("prompt_kernel", "portable") != "portable":
                    portable_runs.append(ember_portable(path, threads))
            result = {"model": name, "threads": threads, "c_api_tg": combine(c_runs), "c_api_depth": c_runs[0]["depth"],
                      "ember_tg_at_depth": combine([c["ember_at_depth"] for c in c_runs])}
            if portable_runs:
                result["ember_portable_pp"] = combine([s["pp_tok_s"] for s in portable_runs])
            if ik_runs:
                result["ik_llama.cpp"] = {"pp": combine([s["pp_tok_s"] for s in ik_runs]),
                                          "tg": combine([s["tg_tok_s"] for s in ik_runs])}
            # The fastest of the rounds' bandwidth at each thread count (the slower ones met other load).
            roofline = {}
            for sample in runs["ember"]:
                for entry in sample["roofline"]:
                    best = roofline.get(entry["threads"])
                    if best is None or entry["read_bandwidth_gb_s"] > best:
                        roofline[entry["threads"]] = entry["read_bandwidth_gb_s"]
            result["read_bandwidth_gb_s"] = roofline
            for engine, samples in runs.items():
                result[engine] = {
                    "pp": combine([s["pp_tok_s"] for s in samples]),
                    "tg": combine([s["tg_tok_s"] for s in samples]),
                    "load_ms": min(s["load_ms"] for s in samples),
                    "first_token_ms": min(s["first_token_ms"] for s in samples),
                    "peak_rss_bytes": max(s["peak_rss_bytes"] for s in samples),
                }
            result["weight_bytes_per_token"] = runs["ember"][0].get("weight_bytes_per_token")
            result["prompt_kernel"] = runs["ember"][0].get("prompt_kernel")
            rows.append(result)
            print(json.dumps(result), flush=True)

    float_rows = float_weights(flags)

    # EMBER_BENCH_INSTRUCTIONS=0 skips the counts (under two minutes once .build-valgrind is built; its first build takes longer).
    counts = ({} if os.environ.get("EMBER_BENCH_INSTRUCTIONS") == "0"
              else instructions_per_step([model_path(name) for name in ("smollm2", "gemma3")]))
    lines = [
        "# Benchmarks: Ember and llama.cpp, same run",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `make bench` on {cpu} "
        f"({os.cpu_count()} cores; {', '.join(interesting)}); Ember's prompt kernel: {rows[0].get('prompt_kernel')}. llama.cpp: llama-cpp-python {llama_version}, built here "
        "with GGML_NATIVE=ON. Each configuration alternates the engines, each in its own process, "
        f"{ROUNDS} rounds × {REPETITIONS} repetitions after a warm-up; flash attention off; mean ± sd (largest sd of the rounds)."
        + (f" ik_llama.cpp: `{os.path.basename(IK_LLAMA_BENCH)}` (IK_LLAMA_BENCH) at its defaults, in the same alternation." if IK_LLAMA_BENCH else ""),
        "",
    ]
    if IK_LLAMA_BENCH:
        lines += ["| model | threads | test | Ember tok/s | llama.cpp tok/s | ik_llama.cpp tok/s | Ember / llama.cpp | Ember / ik_llama.cpp |",
                  "|---|---|---|---|---|---|---|---|"]
    else:
        lines += ["| model | threads | test | Ember tok/s | llama.cpp tok/s | Ember / llama.cpp |", "|---|---|---|---|---|---|"]
    for row in rows:
        for test, label in (("pp", "pp512"), ("tg", "tg128")):
            e, l = row["ember"][test], row["llama.cpp"][test]
            line = f"| {row['model']} | {row['threads']} | {label} | {e['mean']:.1f} ± {e['sd']:.1f} | {l['mean']:.1f} ± {l['sd']:.1f} | "
            if "ik_llama.cpp" in row:
                k = row["ik_llama.cpp"][test]
                line += f"{k['mean']:.1f} ± {k['sd']:.1f} | **{e['mean'] / l['mean']:.2f}×** | **{e['mean'] / k['mean']:.2f}×** |"
            else:
                line += f"**{e['mean'] / l['mean']:.2f}×** |"
            lines.append(line)
    lines += ["", "| model | threads | engine | load ms | first token ms | load + first token ms | peak RSS MiB |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        for engine in ("ember", "llama.cpp"):
            r = row[engine]
            lines.append(f"| {row['model']} | {row['threads']} | {engine} | {r['load_ms']:.0f} | {r['first_token_ms']:.1f} | "
                         f"{r['load_ms'] + r['first_token_ms']:.0f} | {r['peak_rss_bytes'] / 2**20:.0f} |")
    lines += ["", "Decode through the C ABI (`libember.so`, Tests/CClient's `bench`: a 128-token greedy chat reply through "
              "`ember_chat_send` with the engine's scheduler, sampling, events and detokenization, mean of the replies' "
              "`decode_tokens_per_second`) against `ember bench` in the same alternation: its tg128 from an empty context, "
              "and its generation at the depth of the chat prompt (`--prompt-tokens 0 --depth N`, run right after the "
              "client), which is the same work without the engine around it:", "",
              "| model | threads | C API tok/s | ember bench tg128 | ember bench tg128 @ depth | C API / tg128 | C API / tg128 @ depth |",
              "|---|---|---|---|---|---|---|"]
    for row in rows:
        c, e, d = row["c_api_tg"], row["ember"]["tg"], row["ember_tg_at_depth"]
        lines.append(f"| {row['model']} | {row['threads']} | {c['mean']:.1f} ± {c['sd']:.1f} | {e['mean']:.1f} ± {e['sd']:.1f} | "
                     f"{d['mean']:.1f} ± {d['sd']:.1f} (d{row['c_api_depth']}) | {c['mean'] / e['mean']:.2f}× | "
                     f"**{c['mean'] / d['mean']:.2f}×** |")
    kernel_rows = [row for row in rows if "ember_portable_pp" in row]
    if kernel_rows:
        lines += ["", f"Ember's prompt kernels in the same alternation: {rows[0].get('prompt_kernel')} (C, `vpdpbusd`) against the "
                  "portable Swift kernels (`--prompt-kernel portable`); both give the same bits:", "",
                  f"| model | threads | {rows[0].get('prompt_kernel')} pp512 | portable pp512 | ratio |", "|---|---|---|---|---|"]
        for row in kernel_rows:
            e, p = row["ember"]["pp"], row["ember_portable_pp"]
            lines.append(f"| {row['model']} | {row['threads']} | {e['mean']:.1f} ± {e['sd']:.1f} | {p['mean']:.1f} ± {p['sd']:.1f} | "
                         f"**{e['mean'] / p['mean']:.2f}×** |")
    lines += ["", "Streaming read bandwidth, measured by `ember bench --roofline` in each Ember run (a 256 MiB buffer read "
              "end to end, split across the threads; the fastest pass of the fastest round). Decode reads every weight "
              "once per token, so the roofline is bandwidth ÷ weight bytes per token, and the fraction is Ember's tg128 "
              "divided by it:", "",
              "| model | threads | read GB/s | weight MB per token | roofline tok/s | Ember tg128 | fraction |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        bandwidth = row["read_bandwidth_gb_s"].get(row["threads"])
        if not bandwidth or not row["weight_bytes_per_token"]:
            continue
        roof = bandwidth * 1e9 / row["weight_bytes_per_token"]
        tg = row["ember"]["tg"]["mean"]
        lines.append(f"| {row['model']} | {row['threads']} | {bandwidth:.1f} | {row['weight_bytes_per_token'] / 1e6:.1f} | "
                     f"{roof:.0f} | {tg:.1f} | **{tg / roof:.0%}** |")
    last_level_cache = last_level_cache_bytes()
    if last_level_cache:
        lines += ["", f"This host reports a {last_level_cache / 2**20:.0f} MiB last-level cache (sysfs). Weights that fit in it "
                  "are read partly from the cache rather than memory, so a fraction can pass 100 %; only a model larger than "
                  "the cache measures the memory roofline."]
    if float_rows:
        detected = float_rows[0]["description"].get("blas", "")
        named = float_rows[0]["description"].get("blas_named")
        lines += ["", "OpenBLAS, measured: prompt processing (pp512) of SmolLM2 with every weight matrix widened to F16 "
                  "(`ember convert --type f16`), where a BLAS can win, as llama.cpp's BLAS backend uses it. Ember's own F16 "
                  f"kernels; `ember bench --blas` (`cblas_sgemm` per thread over its rows, F16 widened to F32 in workspace tiles) "
                  f"with the kernels OpenBLAS detects ({detected})" + (f" and with `OPENBLAS_CORETYPE` named from the CPU's flags ({named})" if named else "")
                  + "; llama.cpp" + ("; ik_llama.cpp" if IK_LLAMA_BENCH else "") + ", in the same alternation:", "",
                  "| threads | Ember F16 kernels | Ember + OpenBLAS (detected) | Ember + OpenBLAS (named core) | llama.cpp | ik_llama.cpp |",
                  "|---|---|---|---|---|---|"]
        cell = lambda row, key: f"{row[key]['mean']:.1f} ± {row[key]['sd']:.1f}" if key in row else "—"
        for row in float_rows:
            lines.append(f"| {row['threads']} | {cell(row, 'ember')} | {cell(row, 'blas')} | {cell(row, 'blas_named')} | "
                         f"{cell(row, 'llama.cpp')} | {cell(row, 'ik_llama.cpp')} |")
    if counts:
        lines += ["", "Instructions of one decode step (one thread, after the first token), counted by valgrind's callgrind "
                  "inside `InferenceSession.evaluate` on an AVX2 (Haswell) build, since valgrind does not decode AVX-512 "
                  "(`scripts/instructions.sh`); unlike the times, this figure does not move between runs:", "",
                  "| model | instructions per decode step |", "|---|---|"]
        for name in ("smollm2", "gemma3"):
            if model_path(name) in counts:
                lines.append(f"| {name} | {counts[model_path(name)] / 1e6:.1f} M |")
    with open(os.path.join(ROOT, "BENCHMARKS.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
