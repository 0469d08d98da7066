"""The build-time subcommands of `emotion-onnx` (export, finetune, lambda-bundle), each with its
own parser. The runtime's CLI imports this module only when one of them is run."""

from __future__ import annotations

import argparse
import importlib

MODULES = {"export": "cli", "finetune": "finetune_cli", "lambda-bundle": "lambda_bundle"}


def main(command: str, argv: list[str]) -> int:
    module = importlib.import_module(f"emotion_onnx_export.{MODULES[command]}")
    parser = argparse.ArgumentParser(prog=f"emotion-onnx {command}")
    module.configure(parser)
    args = parser.parse_args(argv)
    return module.run(args)
