"""The OpenVINO INT8 variant: NNCF's post-training quantisation (the recipe optimum-intel uses,
`nncf.quantize(..., model_type=nncf.ModelType.TRANSFORMER)`) of the exported fp32 graph,
calibrated on texts spread over the calibration file and saved as OpenVINO IR (an .xml graph and a .bin of weights).

Its static activation scales do not look at other rows, and the runtime pads every text to a
width that depends on the text alone, so its answers do not depend on the batch; the export gate
measures it like every other variant. Needs the `export-openvino` extra (openvino, nncf).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ExportInputError

SUBSET_SIZE = 1000  # calibration texts, spread over the file (optimum-intel takes 300 by default)


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))


def spread(texts: list[str], n: int) -> list[str]:
    """n texts evenly spaced over `texts`. Calibration files list their corpora one after another
    (tweets, then Reddit, then dialogue), so the first n would calibrate on one corpus alone, and
    the static scales would clip what the others' texts make of the activations."""
    if len(texts) <= n:
        return list(texts)
    return [texts[i * len(texts) // n] for i in range(n)]


def quantize(fp32_onnx: Path, xml: Path, encoder, texts: list[str], subset_size: int = SUBSET_SIZE,
             smooth_alpha: float | None = None) -> dict:  # fmt: skip
    """Write `xml` (and its .bin) from the fp32 ONNX graph; returns the manifest's quantisation entry.
    smooth_alpha: SmoothQuant's migration strength on the MatMuls, the export's --smooth-alpha (the
    same trade as for the onnxruntime INT8 variant); None keeps NNCF's default for transformers."""
    if not available():
        raise ExportInputError("--openvino needs openvino and nncf: pip install 'emotion-onnx[export-openvino]'")
    import logging

    import nncf
    import openvino as ov

    logging.getLogger("nncf").setLevel(logging.ERROR)
    model = ov.Core().read_model(str(fp32_onnx))
    items = [encoder.pad([e]) for e in encoder.encode(spread(texts, subset_size))]
    options = {}
    if smooth_alpha is not None:
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

        alphas = AdvancedSmoothQuantParameters(matmul=smooth_alpha)
        options["advanced_parameters"] = AdvancedQuantizationParameters(smooth_quant_alphas=alphas)
    dataset = nncf.Dataset(items)
    quantized = nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER, subset_size=len(items), **options)
    ov.save_model(quantized, str(xml), compress_to_fp16=False)
    return {
        "scheme": "nncf-int8",
        "recipe": "nncf.quantize(model_type=TRANSFORMER), static activation scales",
        "calibration_texts": len(items),
        **({"smooth_quant_alpha": smooth_alpha} if smooth_alpha is not None else {}),
        "inference_precision": "outside the int8 GEMMs, bf16 on AVX512_BF16 without AMX, else f32 "
        "(emotion_onnx.engines.inference_precision)",
        "nncf": _version("nncf"),
        "openvino": _version("openvino"),
    }


def _version(dist: str) -> str | None:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None
