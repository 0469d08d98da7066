"""Copy one variant of an exported model into the runtime's package data (the embedded default).

    python -m emotion_onnx.export.package_default MODEL_DIR [--variant int8] [--dest runtime/default_model]

The copy holds that variant's ONNX file, tokenizer.json and a manifest listing only that
variant (its validation figures, temperature and hashes unchanged).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from emotion_onnx.classifier import default_model_dir
from emotion_onnx.manifest import MANIFEST_NAME, load_manifest

SIZE_LIMIT = 30 * 1000 * 1000


def package(model_dir: Path, dest: Path, variant: str = "int8", extra: dict | None = None) -> Path:
    manifest = load_manifest(model_dir)  # validates the schema
    chosen = manifest.variant(variant)
    data = json.loads((model_dir / MANIFEST_NAME).read_text())
    data["variants"] = {variant: data["variants"][variant]}
    data["default_variant"] = variant
    if extra:
        data.update(extra)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(model_dir / chosen.ref.file, tmp / chosen.ref.file)
    shutil.copyfile(model_dir / manifest.tokenizer.ref.file, tmp / manifest.tokenizer.ref.file)
    (tmp / MANIFEST_NAME).write_text(json.dumps(data, indent=2) + "\n")
    total = sum(p.stat().st_size for p in tmp.iterdir())
    if total > SIZE_LIMIT:
        shutil.rmtree(tmp)
        raise SystemExit(f"{variant} with its tokenizer is {total / 1e6:.1f} MB; the embedded model must be ≤ 30 MB")
    load_manifest(tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("--variant", default="int8")
    p.add_argument("--dest", type=Path, default=default_model_dir())
    p.add_argument("--name", help="model name recorded in the manifest")
    args = p.parse_args(argv)
    dest = package(args.model, args.dest, args.variant, {"name": args.name} if args.name else None)
    print(f"{dest}: {sum(f.stat().st_size for f in dest.iterdir()) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
