"""A Gemma 4 tokenizer fixture: `python tokenizer_gemma4.py` (from the venv of setup.sh).

Gemma 4's GGUF files name their tokenizer `gemma4`: BPE merges over raw UTF-8 characters (not
GPT-2's byte alphabet) after spaces become "▁", text split only at runs of newlines, byte
fallback through `<0xXX>` tokens, and a BOS token always added. The real vocabulary (262k tokens)
cannot be fetched here, so this writes a small one with the same structure — control tokens,
the 256 byte tokens, single characters and 200 merges learned from a fixed text — into a
vocabulary-only GGUF (no tensors; the hyperparameters of the tiny gemma4 model so llama.cpp
accepts the architecture), then records llama.cpp's token ids and detokenized text for test
strings:

    Tests/Fixtures/tokenizers/gemma4-tokenizer.gguf
    Tests/Fixtures/tokenizers/gemma4-tokenizer.json   {"cases": [{"text", "ids", "ids_special", "pieces"}], ...}
"""
from __future__ import annotations

import collections
import json
from pathlib import Path

import gguf
import llama_cpp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUTPUT = ROOT / "Tests/Fixtures/tokenizers"
SPACE = "\u2581"

CORPUS = (
    "The quick brown fox jumps over the lazy dog. The meeting moved to Friday at noon.\n"
    "Battery life matters more than peak speed when the phone is used all day.\n\n"
    "Buy oat milk, two lemons, fresh basil and a loaf of rye bread on the way home.\n"
    "Remember to send the signed lease to the landlord before the end of the month.\n"
    "Our flight lands at six in the evening, so the hotel check-in should be easy.\n"
) * 3
CONTROL = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>"]
CASES = [
    "Hello world",
    "The meeting moved to Friday.",
    "  two leading spaces and  double  spaces ",
    "line one\nline two\n\n\nafter three newlines",
    "\n\n",
    "numbers 12345 and symbols #@%&*!",
    "café naïve über — “quoted” 日本語 🙂",
    "<|turn>user\nSummarize this note.<turn|>",
    "tabs\tand\rcarriage returns",
    "",
]


def learn_merges(text: str, count: int) -> tuple[list[str], list[str]]:
    """Plain BPE training over the escaped corpus (pieces split at newlines), deterministic."""
    words = collections.Counter()
    for piece in text.replace(" ", SPACE).split("\n"):
        if piece:
            words[tuple(piece)] += 1
    merges: list[str] = []
    symbols: list[str] = []
    for _ in range(count):
        pairs = collections.Counter()
        for word, frequency in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += frequency
        if not pairs:
            break
        best = max(pairs.items(), key=lambda item: (item[1], item[0]))[0]
        merges.append(f"{best[0]} {best[1]}")
        symbols.append(best[0] + best[1])
        merged = collections.Counter()
        for word, frequency in words.items():
            out, index = [], 0
            while index < len(word):
                if index + 1 < len(word) and (word[index], word[index + 1]) == best:
                    out.append(best[0] + best[1])
                    index += 2
                else:
                    out.append(word[index])
                    index += 1
            merged[tuple(out)] += frequency
        words = merged
    return merges, symbols


def vocabulary() -> tuple[list[str], list[int], list[str]]:
    tokens, types = [], []
    for token in CONTROL:
        tokens.append(token)
        types.append(gguf.TokenType.CONTROL)
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        types.append(gguf.TokenType.BYTE)
    characters = sorted(set(CORPUS.replace(" ", SPACE)) - {"\n"}) + ["\n", "\n\n", "\n\n\n"]
    for character in characters:
        tokens.append(character)
        types.append(gguf.TokenType.NORMAL)
    merges, symbols = learn_merges(CORPUS, 200)
    for symbol in symbols:
        if symbol not in tokens:
            tokens.append(symbol)
            types.append(gguf.TokenType.NORMAL)
    return tokens, types, merges


def main() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / "gemma4-tokenizer.gguf"
    source = gguf.GGUFReader(ROOT / "Tests/Fixtures/tiny-models/gemma4-f32.gguf")
    writer = gguf.GGUFWriter(str(path), "gemma4")
    for field in source.fields.values():
        name = field.name
        if name.startswith("GGUF.") or name.startswith("tokenizer.") or name == "general.architecture":
            continue
        value = field.contents()
        value_type = field.types[0]
        if value_type == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, value, value_type, sub_type=field.types[-1])
        else:
            writer.add_key_value(name, value, value_type)
    tokens, types, merges = vocabulary()
    writer.add_tokenizer_model("gemma4")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(CONTROL.index("<bos>"))
    writer.add_eos_token_id(CONTROL.index("<eos>"))
    writer.add_unk_token_id(CONTROL.index("<unk>"))
    writer.add_pad_token_id(CONTROL.index("<pad>"))
    writer.add_add_bos_token(True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    model = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    cases = []
    for text in CASES:
        data = text.encode("utf-8")
        ids = model.tokenize(data, add_bos=True, special=False)
        ids_special = model.tokenize(data, add_bos=True, special=True)
        pieces = [model.detokenize([token]).decode("utf-8", errors="replace") for token in ids]
        round_trip = model.detokenize(ids).decode("utf-8", errors="replace")
        cases.append({"text": text, "ids": ids, "ids_special": ids_special, "pieces": pieces, "detokenized": round_trip})
    manifest = {"model": path.name, "vocabulary": len(tokens), "merges": len(merges),
                "llama_cpp_python": llama_cpp.__version__, "cases": cases}
    (OUTPUT / "gemma4-tokenizer.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
    print(f"{path.name}: {len(tokens)} tokens, {len(merges)} merges, {len(cases)} cases")


if __name__ == "__main__":
    main()
