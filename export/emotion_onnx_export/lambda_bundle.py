"""`emotion-onnx lambda-bundle`: a deployable AWS Lambda zip and its SAM template.

The zip holds, at its root:
- onnxruntime, tokenizers and numpy as manylinux wheels for the Lambda runtime, fetched with
  pip's platform options (`--platform`, `--python-version`, `--only-binary=:all:`, no deps:
  tokenizers needs huggingface-hub only for downloads, onnxruntime needs nothing else to run);
- the runtime package `emotion_onnx`, as installed (the build stage is a separate package, so
  nothing needs excluding; its server and Spark modules are a few kilobytes never imported);
- `model/`: one variant of the model, its tokenizer and a manifest listing only that variant
  (or, without --model, the runtime's embedded default model, which the package carries).

What serving does not need is dropped (tests, headers, static libraries, type stubs,
onnxruntime's tools/quantization/transformers and C-API library, numpy.f2py). When the target Python is the
one running this command, the sources are precompiled (Lambda's /var/task is read-only, so
nothing could cache them there).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.metadata
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import emotion_onnx
from emotion_onnx.errors import InputError
from emotion_onnx.manifest import is_model_dir

from .packaging import copy_variant, directory_size

UNCHECKED_HASH = py_compile.PycInvalidationMode.UNCHECKED_HASH
AWS_UNZIPPED_LIMIT = 250 * 1024 * 1024  # AWS's hard cap on an unzipped deployment package
PLATFORMS = {  # Lambda's Amazon Linux 2023 runtimes have glibc 2.34
    "x86_64": ["manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64"],
    "arm64": ["manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64"],
}
RUNTIME_DISTRIBUTIONS = ("onnxruntime", "tokenizers", "numpy")
LAMBDA_PYTHONS = ("3.10", "3.11", "3.12", "3.13")  # the Python runtimes AWS Lambda offers
FALLBACK_PYTHON = "3.12"
PRUNE_DIRS = {"tests", "testing", "__pycache__", "include", "f2py", "_pyinstaller", "doc", "_examples"}
ORT_BUILD_TOOLS = {"tools", "quantization", "transformers", "datasets"}  # onnxruntime's offline tooling
# onnxruntime's C-API library (34 MB): the Python extension links the runtime statically and never loads it
ORT_C_LIBRARY = "libonnxruntime.so."
PRUNE_SUFFIXES = (".pyi", ".a", ".h", ".c", ".pxd", ".md")
HANDLER = "emotion_onnx.aws_lambda.handler"


def _pinned(distribution: str) -> str:
    """The version validated here, so the bundle runs what the tests ran."""
    return f"{distribution}=={importlib.metadata.version(distribution)}"


def fetch_wheels(target: Path, arch: str, python: str, index_args: list[str] | None = None) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    cmd += ["--target", str(target), "--implementation", "cp", "--python-version", python]
    cmd += ["--only-binary=:all:", "--no-deps"]
    for platform in PLATFORMS[arch]:
        cmd += ["--platform", platform]
    cmd += [_pinned(d) for d in RUNTIME_DISTRIBUTIONS] + (index_args or [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise InputError(f"could not fetch the Lambda wheels for {arch}/Python {python}: {last}")
    shutil.rmtree(target / "bin", ignore_errors=True)


def prune(root: Path) -> None:
    """Drop what inference never imports or reads."""
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        if path.is_dir() and _prunable_dir(path, root):
            shutil.rmtree(path)
        elif path.is_file() and (path.name.endswith(PRUNE_SUFFIXES) or path.name.startswith(ORT_C_LIBRARY)):
            path.unlink()


def _prunable_dir(path: Path, root: Path) -> bool:
    top = path.relative_to(root).parts[0]
    return path.name in PRUNE_DIRS or (top == "onnxruntime" and path.name in ORT_BUILD_TOOLS)


def default_python() -> tuple[str, str]:
    """(version, why): the running interpreter when Lambda offers it, so that the bundle can be
    imported and invoked here to try it; otherwise FALLBACK_PYTHON."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running in LAMBDA_PYTHONS:
        return running, "the running interpreter"
    return FALLBACK_PYTHON, f"the running Python {running} is not a Lambda runtime"


def copy_package(dest: Path, include_default_model: bool) -> None:
    """The runtime package as installed; its embedded model only when no other model ships."""
    source = Path(emotion_onnx.__file__).resolve().parent
    skip = ("__pycache__",) if include_default_model else ("__pycache__", "default_model")
    shutil.copytree(source, dest / "emotion_onnx", ignore=shutil.ignore_patterns(*skip))


def write_zip(stage: Path, out: Path) -> None:
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(stage)), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (path.stat().st_mode & 0o777 | 0o444) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(path, "rb") as src:
                    zf.writestr(info, src.read())
    tmp.replace(out)


def sam_template(zip_name: str, arch: str, python: str) -> str:
    return f"""AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: emotion-onnx, torch-free emotion classification on onnxruntime (written by emotion-onnx lambda-bundle)

Parameters:
  MemorySize:
    Type: Number
    Default: 2048
    MinValue: 512
    MaxValue: 10240
    Description: MB; Lambda gives 1 vCPU at 1769 MB and 2 at 3538 MB, and the runtime uses what it gets

Resources:
  EmotionFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {zip_name}
      Handler: {HANDLER}
      Runtime: python{python}
      Architectures:
        - {arch}
      MemorySize: !Ref MemorySize
      Timeout: 30
      FunctionUrlConfig:
        AuthType: AWS_IAM
      Events:
        Predict:
          Type: HttpApi
          Properties:
            Path: /predict
            Method: POST
        Embed:
          Type: HttpApi
          Properties:
            Path: /embed
            Method: POST
        Health:
          Type: HttpApi
          Properties:
            Path: /healthz
            Method: GET

Outputs:
  HttpApiUrl:
    Description: 'POST /predict with {{"inputs": "..."}}'
    Value: !Sub "https://${{ServerlessHttpApi}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/"
  FunctionUrl:
    Description: IAM-authenticated Function URL
    Value: !GetAtt EmotionFunctionUrl.FunctionUrl
"""


def build(
    model: Path | None, out: Path, arch: str = "x86_64", python: str = FALLBACK_PYTHON, variant: str | None = None
) -> dict:
    if arch not in PLATFORMS:
        raise InputError(f"--arch must be one of {', '.join(PLATFORMS)}, got {arch!r}")
    if not python.count(".") == 1 or not all(p.isdigit() for p in python.split(".")):
        raise InputError(f"--python must look like 3.12, got {python!r}")
    if out.suffix != ".zip":
        raise InputError(f"--out must be a .zip path, got {out}")
    if model is not None and not is_model_dir(model):
        raise InputError(f"{model} is not a model directory (no manifest.json); run `emotion-onnx export` first")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="emotion-onnx-lambda-") as tmp:
        stage = Path(tmp) / "bundle"
        stage.mkdir()
        fetch_wheels(stage, arch, python)
        prune(stage)
        copy_package(stage, include_default_model=model is None)
        if model is not None:
            copy_variant(model, stage / "model", variant)
        if python == f"{sys.version_info.major}.{sys.version_info.minor}":
            # unchecked-hash pycs: valid whatever mtimes the unzip gives the sources
            compileall.compile_dir(stage, quiet=2, workers=0, invalidation_mode=UNCHECKED_HASH)
        unzipped = directory_size(stage)
        if unzipped > AWS_UNZIPPED_LIMIT:
            raise InputError(f"the bundle is {unzipped / 2**20:.1f} MiB unzipped; AWS's limit is 250 MiB")
        write_zip(stage, out)
    template = out.with_name("template.yaml")
    template.write_text(sam_template(out.name, arch, python))
    return {"zip": out, "template": template, "unzipped_bytes": unzipped, "zipped_bytes": out.stat().st_size}


def configure(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.split("\n\n")[0] + f" The handler is {HANDLER}."
    p.add_argument("--model", type=Path, help="model directory (default: the embedded model)")
    p.add_argument("--variant", help="variant to ship (default: the manifest's default)")
    p.add_argument("--out", type=Path, required=True, help="the zip to write")
    p.add_argument("--arch", default="x86_64", choices=tuple(PLATFORMS))
    p.add_argument(
        "--python",
        help=f"Lambda Python runtime version (default: the running interpreter if Lambda offers it "
        f"({', '.join(LAMBDA_PYTHONS)}), else {FALLBACK_PYTHON})",
    )


def run(args: argparse.Namespace) -> int:
    python, why = (args.python, "as asked") if args.python else default_python()
    result = build(args.model, args.out, args.arch, python, args.variant)
    print(
        f"{result['zip']}: {result['zipped_bytes'] / 2**20:.1f} MiB zipped, "
        f"{result['unzipped_bytes'] / 2**20:.1f} MiB unzipped (AWS limit 250 MiB), for Python {python} "
        f"({why}) on {args.arch}; SAM template: {result['template']}"
    )
    return 0
