"""The inference engines a variant can name: onnxruntime (always installed) and OpenVINO (the
`openvino` extra, imported only when a variant that needs it is loaded).

An engine takes the padded input arrays of a batch and returns (logits, embeddings); both
check the graph against the manifest when they load it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .cpu import available_cpus
from .errors import ManifestError, ModelNotFoundError, first_line
from .session import check_graph, create_session


def engine_available(name: str) -> bool:
    if name == "onnxruntime":
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class OnnxruntimeEngine:
    name = "onnxruntime"

    def __init__(
        self,
        path: Path,
        file: str,
        input_names: Sequence[str],
        outputs: dict[str, int],
        *,
        threads: int | None,
        spinning: bool | None,
        providers: Sequence[str] | None,
        optimized: bool,
    ):
        self.session = create_session(
            path, intra_op_threads=threads, spinning=spinning, providers=providers, optimized=optimized
        )
        check_graph(self.session, file, input_names, outputs)
        self.outputs = list(outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        logits, embeds = self.session.run(self.outputs, feeds)
        return logits, embeds


class OpenvinoEngine:
    """OpenVINO on the CPU, in its latency mode, with the usable CPUs as threads.

    The inference precision is pinned to f32 (the int8 GEMMs stay int8). OpenVINO's default on
    CPUs with AMX is bf16 for everything else, and in bf16 a text's logits change with its padded
    width, by whole logits for a few tokens of padding at some widths; in f32 they do not."""

    name = "openvino"

    def __init__(self, path: Path, weights: Path | None, file: str, input_names: Sequence[str],
                 outputs: dict[str, int], *, threads: int | None):  # fmt: skip
        try:
            import openvino as ov
        except ImportError:
            raise ModelNotFoundError(
                f"{file} runs on OpenVINO, which is not installed: pip install 'emotion-onnx[openvino]' "
                "(or load another variant)"
            ) from None
        core = ov.Core()
        try:
            model = core.read_model(str(path), str(weights) if weights is not None else None)
            self.compiled = core.compile_model(
                model,
                "CPU",
                {
                    "INFERENCE_NUM_THREADS": threads or available_cpus(),
                    "PERFORMANCE_HINT": "LATENCY",
                    "INFERENCE_PRECISION_HINT": "f32",
                },
            )
        except Exception as exc:  # OpenVINO raises its own exception types
            first = first_line(exc, 300).replace(str(path), file)
            raise ManifestError(f"{file} is not a model OpenVINO can load: {first}") from None
        graph_inputs = sorted(port.get_any_name() for port in self.compiled.inputs)
        if graph_inputs != sorted(input_names):
            raise ManifestError(f"{file} takes inputs {', '.join(graph_inputs)} but manifest.json lists "
                                f"{', '.join(input_names)}")  # fmt: skip
        by_name = {n: port for port in self.compiled.outputs for n in port.get_names()}
        self.ports = []
        for name, width in outputs.items():
            if name not in by_name:
                raise ManifestError(f"{file} has no output {name!r} (its outputs: {', '.join(sorted(by_name))})")
            shape = by_name[name].get_partial_shape()
            last = shape[shape.rank.get_length() - 1] if shape.rank.is_static else None
            if last is not None and last.is_static and last.get_length() != width:
                raise ManifestError(f"{file}'s output {name!r} has width {last.get_length()} but manifest.json "
                                    f"says {width}")  # fmt: skip
            self.ports.append(by_name[name])
        self.request = self.compiled.create_infer_request()

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        result = self.request.infer(feeds)
        # the request reuses its output buffers on the next call: copy
        logits, embeds = (np.array(result[port], dtype=np.float32, copy=True) for port in self.ports)
        return logits, embeds

    @property
    def session(self):
        return None
