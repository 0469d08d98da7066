"""Build-time export stage: checkpoint -> ONNX (fp32, fused, int8) -> gate -> calibrate -> manifest.

Needs the `export` extra (torch, transformers 4.57.x, optimum-onnx, onnx). Submodules
import their heavy dependencies lazily, so the CLI can list this command without them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExportConfig", "ExportResult", "run_export"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
