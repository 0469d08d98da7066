"""One variant of an exported model directory, copied: its ONNX file, tokenizer.json and a
manifest listing only that variant (validation figures, calibration and hashes unchanged).

Used for the embedded default model and for Lambda bundles, which ship one variant each:

    python -m emotion_onnx_export.packaging MODEL_DIR [--variant int8] [--name NAME]   # -> the embedded default
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from emotion_onnx import manifest as manifest_io
from emotion_onnx.classifier import default_model_dir
from emotion_onnx.errors import InputError

EMBEDDED_SIZE_LIMIT = 30 * 1000 * 1000  # the embedded model's budget, in bytes


def copy_variant(model_dir: Path, dest: Path, variant: str | None = None, name: str | None = None) -> Path:
    """Write `dest` (replaced atomically if it exists) and return it; the copy is re-validated."""
    model_dir, dest = Path(model_dir), Path(dest)
    source = manifest_io.load(model_dir)
    chosen = source.variant(variant)  # default: the fastest that onnxruntime runs
    copy = source.only(chosen.name, **({"name": name} if name else {}))
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for ref in copy.files():  # the tokenizer, the graph and its weights file, if any
            shutil.copyfile(source.path(ref), tmp / ref.file)
        manifest_io.write(copy, tmp)
        manifest_io.load(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def package_default(model_dir: Path, dest: Path | None = None, variant: str = "int8", name: str | None = None) -> Path:
    """Copy one variant into the runtime's package data (the embedded default), within its budget."""
    dest = Path(dest) if dest is not None else default_model_dir()
    copy_variant(model_dir, dest, variant, name)
    total = directory_size(dest)
    if total > EMBEDDED_SIZE_LIMIT:
        shutil.rmtree(dest)
        raise InputError(f"{variant} with its tokenizer is {total / 1e6:.1f} MB; the embedded model must be ≤ 30 MB")
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("--variant", default="int8")
    p.add_argument("--dest", type=Path, default=default_model_dir())
    p.add_argument("--name", help="model name recorded in the manifest")
    args = p.parse_args(argv)
    dest = package_default(args.model, args.dest, args.variant, args.name)
    print(f"{dest}: {directory_size(dest) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
