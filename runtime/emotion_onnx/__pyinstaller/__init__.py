"""PyInstaller's entry point (`pyinstaller40` in pyproject.toml): where our hook lies, so that a
frozen app that imports emotion_onnx carries the embedded model, its tokenizer and the page's
static files without the app's author listing them."""

from __future__ import annotations

import os


def get_hook_dirs() -> list[str]:
    return [os.path.dirname(__file__)]


# What an app built in an environment that also holds the build side should leave out: onnxruntime's
# own tooling (its transformers and quantization helpers) imports these when they are installed, and
# PyInstaller follows every import it can see. docs/desktop.md shows them as --exclude-module flags.
BUILD_SIDE = ("torch", "transformers", "optimum", "onnx_ir", "matplotlib", "pandas", "scipy", "sympy", "networkx",
              "pyspark", "openvino", "nncf", "sklearn")  # fmt: skip
BUILD_SIDE_EXCLUDES = tuple(flag for name in BUILD_SIDE for flag in ("--exclude-module", name))
