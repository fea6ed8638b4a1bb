"""Writes the tiny random-weight models: `python make.py [ARCH ...] [--output DIR]`.

Every `arch_*.py` module in this folder is one architecture; each is written in every variant of
common.VARIANTS to `<output>/<architecture>-<variant>.gguf` (default Tests/Fixtures/tiny-models).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402


def architecture_modules() -> dict:
    modules = {}
    for path in sorted(HERE.glob("arch_*.py")):
        module = importlib.import_module(path.stem)
        modules[module.ARCHITECTURE] = module
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("architectures", nargs="*", help="architectures to write (default: all)")
    parser.add_argument("--output", type=Path, default=HERE.parent.parent / "Tests/Fixtures/tiny-models")
    arguments = parser.parse_args()
    modules = architecture_modules()
    names = arguments.architectures or list(modules)
    arguments.output.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name not in modules:
            sys.exit(f"make.py: no module for architecture '{name}' (have: {', '.join(modules)})")
        for variant in common.VARIANTS:
            path = arguments.output / f"{name}-{variant}.gguf"
            model = common.TinyModel(path, modules[name].GGUF_ARCHITECTURE if hasattr(modules[name], "GGUF_ARCHITECTURE") else name,
                                     variant, seed_text=name)
            modules[name].build(model)
            model.finish()
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
