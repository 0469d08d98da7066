"""Copy one variant of an exported model directory: its ONNX file, tokenizer.json and a manifest
listing only that variant (validation figures, temperature and hashes unchanged).

Used for the embedded default model and for Lambda bundles, which ship one variant only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .manifest import MANIFEST_NAME, load_manifest


def copy_variant(model_dir: Path, dest: Path, variant: str | None = None, extra: dict | None = None) -> Path:
    """Write `dest` (replaced atomically if it exists) and return it; the copy is re-validated."""
    model_dir, dest = Path(model_dir), Path(dest)
    manifest = load_manifest(model_dir)  # validates the schema
    chosen = manifest.variant(variant)
    data = json.loads((model_dir / MANIFEST_NAME).read_text())
    data["variants"] = {chosen.name: data["variants"][chosen.name]}
    data["default_variant"] = chosen.name
    if extra:
        data.update(extra)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        shutil.copyfile(model_dir / chosen.ref.file, tmp / chosen.ref.file)
        shutil.copyfile(model_dir / manifest.tokenizer.ref.file, tmp / manifest.tokenizer.ref.file)
        (tmp / MANIFEST_NAME).write_text(json.dumps(data, indent=2) + "\n")
        load_manifest(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
