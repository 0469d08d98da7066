"""The systems that benchmarks/compare_systems.py puts side by side, each run in its own process.

    python benchmarks/systems.py SYSTEM --model MODEL_DIR --checkpoint CKPT --cache DIR --threads N [--cold TEXT]

Without --cold the process loads the system, prints one JSON line {"ready": load_seconds}, then
answers JSON commands on stdin, one per line:
    {"op": "batch", "texts": FILE, "logits": OUT.npy or null} -> {"seconds": s}
    {"op": "latency", "texts": FILE}                           -> {"latencies": [s, ...]}
    {"op": "alone", "texts": FILE, "logits": OUT.npy}          -> {} (each text classified on its own)
    {"op": "rss"}                                              -> {"vmhwm_kb": kb}
With --cold it imports, loads, classifies TEXT once and prints the three timings.

Each system is used the way its users call it: the transformers / Optimum pipelines with
batch_size 32 in input order; OpenVINO and CTranslate2 with this runtime's tokenizer, the texts
sorted by length into batches of 64, each padded to its longest (OpenVINO's INT8 also in its
throughput mode, the batches queued on one stream per thread); this runtime as
`EmotionClassifier(...).logits(texts)` (its own token-budget batches). The OpenVINO INT8 peer is
OpenVINO's own recipe (NNCF, model_type TRANSFORMER, 300 validation texts) on the fp32 ONNX at
OpenVINO's default precision; CTranslate2's is its converter's int8 with the classification head
applied to its first-token output in numpy.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
from common import answer_jobs, arguments

SYSTEMS = (
    "pytorch-fp32",
    "pytorch-dynamic-int8",
    "optimum-fp32",
    "optimum-int8",
    "openvino-default",
    "openvino-f32",
    "openvino-int8",
    "openvino-int8-throughput",
    "ctranslate2-int8",
    "ours-fp32",
    "ours-int8",
    "ours-openvino",
)
PRECISION = {  # which peak a system is measured against
    "pytorch-fp32": "fp32",
    "pytorch-dynamic-int8": "int8",
    "optimum-fp32": "fp32",
    "optimum-int8": "int8",
    "openvino-default": "fp32",
    "openvino-f32": "fp32",
    "openvino-int8": "int8",
    "openvino-int8-throughput": "int8",
    "ctranslate2-int8": "int8",
    "ours-fp32": "fp32",
    "ours-int8": "int8",
    "ours-openvino": "int8",
}
PIPELINE_BATCH = 32
PEER_BATCH = 64


def sorted_batches(encodings, run, labels: int) -> np.ndarray:
    """Logits in input order from `run(encodings)` on length-sorted batches of PEER_BATCH."""
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    logits = np.empty((len(encodings), labels), dtype=np.float32)
    for start in range(0, len(order), PEER_BATCH):
        idx = order[start : start + PEER_BATCH]
        logits[idx] = run([encodings[i] for i in idx])
    return logits


def _labels_order(config) -> list[str]:
    return [config.id2label[i] for i in range(len(config.id2label))]


class PipelineSystem:
    """A transformers or Optimum text-classification pipeline; logits rebuilt from its raw scores."""

    def __init__(self, pipe, labels: list[str]):
        self.pipe = pipe
        self.index = {label: i for i, label in enumerate(labels)}

    def _rows(self, outputs) -> np.ndarray:
        logits = np.empty((len(outputs), len(self.index)), dtype=np.float32)
        for r, scores in enumerate(outputs):
            for item in scores:
                logits[r, self.index[item["label"]]] = item["score"]
        return logits

    def batch(self, texts: list[str]) -> np.ndarray:
        out = self.pipe(texts, batch_size=PIPELINE_BATCH, truncation=True, top_k=None, function_to_apply="none")
        return self._rows(out)

    def one(self, text: str):
        return self.pipe(text, truncation=True)


def _tokenizer(checkpoint: Path):
    from transformers import AutoConfig, AutoTokenizer, DistilBertTokenizerFast

    config = AutoConfig.from_pretrained(checkpoint)
    if config.model_type == "distilbert":  # no token_type_ids, or the pipeline rejects its own inputs
        return DistilBertTokenizerFast.from_pretrained(checkpoint)
    return AutoTokenizer.from_pretrained(checkpoint)


def load_pytorch(checkpoint: Path, threads: int, quantized: bool):
    import torch
    from transformers import AutoModelForSequenceClassification, pipeline

    torch.set_num_threads(threads)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    if quantized:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    pipe = pipeline("text-classification", model=model, tokenizer=_tokenizer(checkpoint), device="cpu")
    return PipelineSystem(pipe, _labels_order(model.config))


def optimum_dirs(checkpoint: Path, cache: Path) -> tuple[Path, Path]:
    """Optimum's own export (fp32) and its avx512_vnni dynamic int8, built once into the cache."""
    fp32, int8 = cache / "optimum-fp32", cache / "optimum-int8"
    if not (fp32 / "model.onnx").is_file():
        from optimum.onnxruntime import ORTModelForSequenceClassification

        model = ORTModelForSequenceClassification.from_pretrained(checkpoint, export=True)
        model.save_pretrained(fp32)
        _tokenizer(checkpoint).save_pretrained(fp32)
    if not (int8 / "model_quantized.onnx").is_file():
        from optimum.onnxruntime import AutoQuantizationConfig, ORTQuantizer

        quantizer = ORTQuantizer.from_pretrained(fp32)
        quantizer.quantize(save_dir=int8, quantization_config=AutoQuantizationConfig.avx512_vnni(is_static=False))
        _tokenizer(checkpoint).save_pretrained(int8)
    return fp32, int8


def load_optimum(checkpoint: Path, cache: Path, threads: int, quantized: bool):
    import onnxruntime as ort
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from optimum.pipelines import pipeline

    fp32, int8 = optimum_dirs(checkpoint, cache)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    directory, file_name = (int8, "model_quantized.onnx") if quantized else (fp32, "model.onnx")
    model = ORTModelForSequenceClassification.from_pretrained(directory, file_name=file_name, session_options=opts)
    pipe = pipeline("text-classification", model=model, tokenizer=_tokenizer(checkpoint), accelerator="ort")
    return PipelineSystem(pipe, _labels_order(model.config))


class OpenVinoSystem:
    """OpenVINO on this project's exported fp32 ONNX, fed by this runtime's tokenizer and batches,
    in its latency mode (one stream on every thread, one batch at a time)."""

    HINT = "LATENCY"

    def __init__(self, model_dir: Path, threads: int, precision: str | None, graph: Path | None = None):
        import openvino as ov

        from emotion_onnx.manifest import load as load_manifest
        from emotion_onnx.tokenization import TextEncoder

        manifest = load_manifest(model_dir)
        self.encoder = TextEncoder(manifest)
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": self.HINT}
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        core = ov.Core()
        path = graph or model_dir / manifest.variant("fp32").ref.file
        self.compiled = core.compile_model(core.read_model(path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.logits_name = manifest.logits_output
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        self.labels = len(manifest.labels)

    def _run(self, encodings) -> np.ndarray:
        result = self.request.infer(self.encoder.pad(encodings))
        return np.asarray(result[self.compiled.output(self.logits_name)])

    def batch(self, texts: list[str]) -> np.ndarray:
        return sorted_batches(self.encoder.encode(texts), self._run, self.labels)

    def one(self, text: str):
        return self._run(self.encoder.encode([text]))


class OpenVinoThroughput(OpenVinoSystem):
    """OpenVINO in its throughput mode (one stream per thread): the same length-sorted batches of
    PEER_BATCH, queued on an AsyncInferQueue so that the streams run them side by side. One text
    alone runs on one stream."""

    HINT = "THROUGHPUT"

    def __init__(self, model_dir: Path, threads: int, precision: str | None, graph: Path | None = None):
        import openvino as ov

        super().__init__(model_dir, threads, precision, graph)
        self.queue = ov.AsyncInferQueue(self.compiled, self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        port = self.compiled.output(self.logits_name)
        self.queue.set_callback(lambda request, rows: self._out.__setitem__(rows, request.get_tensor(port).data))

    def batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.encoder.encode(texts)
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        self._out = np.empty((len(encodings), self.labels), dtype=np.float32)
        for start in range(0, len(order), PEER_BATCH):
            rows = order[start : start + PEER_BATCH]
            self.queue.start_async(self.encoder.pad([encodings[i] for i in rows]), rows)
        self.queue.wait_all()
        return self._out


def nncf_int8(model_dir: Path, cache: Path) -> Path:
    """OpenVINO's INT8 recipe on the exported fp32 ONNX: the export's own --openvino step (NNCF's
    transformer recipe, as optimum-intel calls it, calibrated on the export's number of validation
    texts) at NNCF's own SmoothQuant strength, built once into the cache."""
    xml = cache / "openvino-int8" / "model.xml"
    if xml.is_file():
        return xml
    from common import read_split

    from emotion_onnx.manifest import load as load_manifest
    from emotion_onnx.tokenization import TextEncoder
    from emotion_onnx_export import openvino_int8

    manifest = load_manifest(model_dir)
    texts, _ = read_split("validation", openvino_int8.SUBSET_SIZE)
    xml.parent.mkdir(parents=True, exist_ok=True)
    openvino_int8.quantize(model_dir / manifest.variant("fp32").ref.file, xml, TextEncoder(manifest), texts)
    return xml


def ct2_dir(checkpoint: Path, cache: Path) -> Path:
    """CTranslate2's int8 conversion of the checkpoint, built once into the cache."""
    out = cache / "ctranslate2-int8"
    if not (out / "model.bin").is_file():
        from ctranslate2.converters import TransformersConverter

        TransformersConverter(str(checkpoint)).convert(str(out), quantization="int8", force=True)
    return out


class Ct2System:
    """CTranslate2's encoder (int8) with DistilBERT's classification head on its first-token output."""

    def __init__(self, model_dir: Path, checkpoint: Path, cache: Path, threads: int):
        import ctranslate2
        from safetensors.numpy import load_file

        from emotion_onnx.manifest import load as load_manifest
        from emotion_onnx.tokenization import TextEncoder

        manifest = load_manifest(model_dir)
        self.encoder = TextEncoder(manifest)
        self.model = ctranslate2.Encoder(str(ct2_dir(checkpoint, cache)), device="cpu", compute_type="int8",
                                         intra_threads=threads)  # fmt: skip
        weights = load_file(str(checkpoint / "model.safetensors"))
        self.pre = (weights["pre_classifier.weight"].T, weights["pre_classifier.bias"])
        self.head = (weights["classifier.weight"].T, weights["classifier.bias"])
        self.labels = len(manifest.labels)

    def _run(self, encodings) -> np.ndarray:
        out = self.model.forward_batch([list(e.ids) for e in encodings])
        first = np.asarray(out.last_hidden_state)[:, 0]
        hidden = np.maximum(first @ self.pre[0] + self.pre[1], 0.0)
        return hidden @ self.head[0] + self.head[1]

    def batch(self, texts: list[str]) -> np.ndarray:
        return sorted_batches(self.encoder.encode(texts), self._run, self.labels)

    def one(self, text: str):
        return self._run(self.encoder.encode([text]))


class OursSystem:
    def __init__(self, model_dir: Path, threads: int, variant: str, **options):
        from emotion_onnx import EmotionClassifier

        self.clf = EmotionClassifier(model_dir, variant=variant, intra_op_threads=threads, **options)
        # shown beside the row's name, as for OpenVINO's own rows
        self.precision = getattr(self.clf.engine, "precision", None)

    def batch(self, texts: list[str]) -> np.ndarray:
        return self.clf.logits(texts)

    def one(self, text: str):
        return self.clf(text)


def ours_variant(system: str, model_dir: Path) -> str | None:
    """The exported variant a row of ours runs (None: the model directory has none for it)."""
    from emotion_onnx import manifest as manifest_io

    variants = manifest_io.load(model_dir).variants
    wanted = {"ours-fp32": ["fp32-fused", "fp32"], "ours-int8": ["int8"], "ours-openvino": ["int8-openvino"]}[system]
    return next((v for v in wanted if v in variants), None)


def load(system: str, model_dir: Path, checkpoint: Path, cache: Path, threads: int):
    if system in ("pytorch-fp32", "pytorch-dynamic-int8"):
        return load_pytorch(checkpoint, threads, quantized=system.endswith("int8"))
    if system in ("optimum-fp32", "optimum-int8"):
        return load_optimum(checkpoint, cache, threads, quantized=system.endswith("int8"))
    if system in ("openvino-default", "openvino-f32"):
        return OpenVinoSystem(model_dir, threads, None if system == "openvino-default" else "f32")
    if system == "openvino-int8":
        return OpenVinoSystem(model_dir, threads, None, nncf_int8(model_dir, cache))
    if system == "openvino-int8-throughput":
        return OpenVinoThroughput(model_dir, threads, None, nncf_int8(model_dir, cache))
    if system == "ctranslate2-int8":
        return Ct2System(model_dir, checkpoint, cache, threads)
    if system.startswith("ours-"):
        variant = ours_variant(system, model_dir)
        if variant is None:
            raise SystemExit(f"{model_dir} has no variant for {system}")
        return OursSystem(model_dir, threads, variant)
    raise SystemExit(f"unknown system {system!r}; choose from {', '.join(SYSTEMS)}")


def vmhwm_kb() -> int:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))


def jobs(sys_obj) -> dict:
    """What a compare_systems.py worker answers (common.answer_jobs runs the protocol)."""

    def batch(cmd: dict) -> dict:
        texts = json.loads(Path(cmd["texts"]).read_text())
        t0 = time.perf_counter()
        logits = sys_obj.batch(texts)
        reply = {"seconds": time.perf_counter() - t0}
        if cmd.get("logits"):
            np.save(cmd["logits"], logits)
        return reply

    def latency(cmd: dict) -> dict:
        latencies = []
        for text in json.loads(Path(cmd["texts"]).read_text()):
            t0 = time.perf_counter()
            sys_obj.one(text)
            latencies.append(time.perf_counter() - t0)
        return {"latencies": latencies}

    def alone(cmd: dict) -> dict:
        texts = json.loads(Path(cmd["texts"]).read_text())
        np.save(cmd["logits"], np.vstack([sys_obj.batch([t]) for t in texts]))
        return {}

    def rss(cmd: dict) -> dict:
        return {"vmhwm_kb": vmhwm_kb(), "precision": getattr(sys_obj, "precision", None)}

    return {"batch": batch, "latency": latency, "alone": alone, "rss": rss}


def main(argv: list[str] | None = None) -> int:
    t0 = time.perf_counter()
    p = arguments(__doc__, model="required")
    p.add_argument("system", choices=SYSTEMS)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cold", help="cold-start mode: classify this text once and exit")
    p.add_argument("--prepare", action="store_true", help="build the Optimum exports into the cache and exit")
    args = p.parse_args(argv)
    if args.prepare:  # the peers' own conversions, once per checkpoint
        optimum_dirs(args.checkpoint, args.cache)
        for build, needs in ((lambda: nncf_int8(args.model, args.cache), "nncf"),
                             (lambda: ct2_dir(args.checkpoint, args.cache), "ctranslate2")):  # fmt: skip
            if importlib.util.find_spec(needs) is not None:
                build()
        return 0
    if args.cold:
        system = load(args.system, args.model, args.checkpoint, args.cache, args.threads)
        t_load = time.perf_counter()
        system.one(args.cold)
        t_first = time.perf_counter()
        print(json.dumps({"import_and_load_s": t_load - t0, "first_prediction_s": t_first - t_load}))
        return 0
    return answer_jobs(lambda: jobs(load(args.system, args.model, args.checkpoint, args.cache, args.threads)), t0)


if __name__ == "__main__":
    raise SystemExit(main())
