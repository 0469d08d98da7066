"""The inference engines a variant can name: onnxruntime (always installed) and OpenVINO (the
`openvino` extra, imported only when a variant that needs it is loaded).

An engine takes the padded input arrays of a batch and returns (logits, embeddings); both
check the graph against the manifest when they load it. Each can also make one-thread runners of
the same graph, for whole batches side by side (emotion_onnx.parallel).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
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


CACHE_ENV = "EMOTION_ONNX_CACHE_DIR"


def compile_cache_dir(setting: str | Path | bool | None = None) -> Path | None:
    """Where OpenVINO keeps the models it compiled, so that later loads import them instead of
    compiling again (OpenVINO's CACHE_DIR). `setting`: a directory; False for no cache; None for
    the default, $EMOTION_ONNX_CACHE_DIR ("off": no cache), else $XDG_CACHE_HOME/emotion-onnx, else
    ~/.cache/emotion-onnx. The compiled models go under its `openvino/` folder. A directory that
    cannot be created means no cache, not an error: the cache only saves time.

    OpenVINO names each compiled model by a hash of the whole graph, weights included, and of the
    compile settings, so a re-exported model never picks up another's compiled form."""
    if setting is False:
        return None
    if setting is None or setting is True:
        setting = os.environ.get(CACHE_ENV) or None
        if setting is not None and setting.strip().lower() == "off":
            return None
        if setting is None:
            xdg = os.environ.get("XDG_CACHE_HOME")
            setting = Path(xdg) / "emotion-onnx" if xdg else Path.home() / ".cache" / "emotion-onnx"
    folder = Path(setting).expanduser() / "openvino"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


class OnnxruntimeEngine:
    name = "onnxruntime"
    # Texts are padded to their own length (batches hold texts of one length): onnxruntime's
    # kernels run as fast at any width, so rounding widths up would only add padded tokens.
    width_step = 1

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
        self._path, self._providers, self._optimized = path, providers, optimized

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        logits, embeds = self.session.run(self.outputs, feeds)
        return logits, embeds

    def one_thread_runners(self, n: int) -> list[Callable[[dict], tuple[np.ndarray, np.ndarray]]]:
        """n sessions of one thread each on the same graph (separate sessions: one shared by
        several callers serialises part of each run)."""
        sessions = [
            create_session(self._path, intra_op_threads=1, providers=self._providers, optimized=self._optimized)
            for _ in range(n)
        ]
        return [lambda feeds, s=s: tuple(s.run(self.outputs, feeds)) for s in sessions]


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty where there is no such file."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def inference_precision(flags: frozenset[str] | None = None) -> str:
    """OpenVINO's precision for the ops outside the int8 GEMMs: bf16 on a CPU with AVX512_BF16 and
    no AMX, f32 everywhere else.

    With AVX512_BF16 alone, bf16 gives a text the same bits alone and in every batch (the runtime
    pads each text to a width of its own, and the row count does not change the rounding), keeps
    the gate's agreement, and runs faster. OpenVINO also defaults to bf16 on AMX, where it picks
    its kernels by shape and a text's logits have moved with its padded width; that is not shown
    to be batch-invariant, so f32 stays there, as on CPUs without native bf16."""
    flags = cpu_flags() if flags is None else flags
    return "bf16" if "avx512_bf16" in flags and not any(f.startswith("amx") for f in flags) else "f32"


class OpenvinoEngine:
    """OpenVINO on the CPU, in its latency mode, with the usable CPUs as threads (and, for batches
    side by side, a second compile in its throughput mode: one stream of one thread per worker).

    The int8 GEMMs stay int8; the precision of everything else is `inference_precision()`."""

    name = "openvino"
    # Widths rounded up to a multiple of 4: OpenVINO's CPU plugin prepares its kernels, and keeps
    # their memory, for each new shape. On the embedded model smaller steps cost more than the
    # padding they save; on the full-size graph step 1 was no faster over a whole benchmark run
    # and held far more memory.
    width_step = 4

    def __init__(self, path: Path, weights: Path | None, file: str, input_names: Sequence[str],
                 outputs: dict[str, int], *, threads: int | None, cache_dir: Path | None = None):  # fmt: skip
        self.precision = inference_precision()
        try:
            import openvino as ov
        except ImportError:
            raise ModelNotFoundError(
                f"{file} runs on OpenVINO, which is not installed: pip install 'emotion-onnx[openvino]' "
                "(or load another variant)"
            ) from None
        self._core = ov.Core()
        self.cache_dir = cache_dir
        try:
            self._model = self._core.read_model(str(path), str(weights) if weights is not None else None)
            self.compiled = self._compile({"INFERENCE_NUM_THREADS": threads or available_cpus(),
                                           "PERFORMANCE_HINT": "LATENCY"})  # fmt: skip
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
        self._outputs = list(outputs)

    def _compile(self, config: dict):
        config = {**config, "INFERENCE_PRECISION_HINT": self.precision}
        if self.cache_dir is not None:
            config["CACHE_DIR"] = str(self.cache_dir)
        return self._core.compile_model(self._model, "CPU", config)

    @staticmethod
    def _infer(request, ports, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        result = request.infer(feeds)
        # the request reuses its output buffers on the next call: copy
        logits, embeds = (np.array(result[port], dtype=np.float32, copy=True) for port in ports)
        return logits, embeds

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return self._infer(self.request, self.ports, feeds)

    def one_thread_runners(self, n: int) -> list[Callable[[dict], tuple[np.ndarray, np.ndarray]]]:
        """n infer requests on n streams of one thread each (OpenVINO's throughput mode)."""
        compiled = self._compile({"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": n, "INFERENCE_NUM_THREADS": n})
        by_name = {name: port for port in compiled.outputs for name in port.get_names()}
        ports = [by_name[name] for name in self._outputs]
        requests = [compiled.create_infer_request() for _ in range(n)]
        return [lambda feeds, r=r: self._infer(r, ports, feeds) for r in requests]

    @property
    def session(self):
        return None
