"""Copy one variant of an exported model into the runtime's package data (the embedded default).

    python -m emotion_onnx.export.package_default MODEL_DIR [--variant int8] [--dest runtime/default_model]

The copy holds that variant's ONNX file, tokenizer.json and a manifest listing only that
variant (its validation figures, temperature and hashes unchanged).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from emotion_onnx.classifier import default_model_dir
from emotion_onnx.model_copy import copy_variant, directory_size

SIZE_LIMIT = 30 * 1000 * 1000


def package(model_dir: Path, dest: Path, variant: str = "int8", extra: dict | None = None) -> Path:
    copy_variant(model_dir, dest, variant, extra)
    total = directory_size(dest)
    if total > SIZE_LIMIT:
        shutil.rmtree(dest)
        raise SystemExit(f"{variant} with its tokenizer is {total / 1e6:.1f} MB; the embedded model must be ≤ 30 MB")
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("--variant", default="int8")
    p.add_argument("--dest", type=Path, default=default_model_dir())
    p.add_argument("--name", help="model name recorded in the manifest")
    args = p.parse_args(argv)
    dest = package(args.model, args.dest, args.variant, {"name": args.name} if args.name else None)
    print(f"{dest}: {directory_size(dest) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
