"""The OpenVINO INT8 variant: NNCF's post-training quantisation (the recipe optimum-intel uses,
`nncf.quantize(..., model_type=nncf.ModelType.TRANSFORMER)`) of the exported fp32 graph,
calibrated on the calibration texts and saved as OpenVINO IR (an .xml graph and a .bin of weights).

Its static activation scales do not look at other rows, and the runtime pads every text to a
width that depends on the text alone, so its answers do not depend on the batch; the export gate
measures it like every other variant. Needs the `export-openvino` extra (openvino, nncf).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ExportInputError

SUBSET_SIZE = 300  # calibration texts, as optimum-intel's default


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))


def quantize(fp32_onnx: Path, xml: Path, encoder, texts: list[str], subset_size: int = SUBSET_SIZE) -> dict:
    """Write `xml` (and its .bin) from the fp32 ONNX graph; returns the manifest's quantisation entry."""
    if not available():
        raise ExportInputError("--openvino needs openvino and nncf: pip install 'emotion-onnx[export-openvino]'")
    import logging

    import nncf
    import openvino as ov

    logging.getLogger("nncf").setLevel(logging.ERROR)
    model = ov.Core().read_model(str(fp32_onnx))
    items = [encoder.pad([e]) for e in encoder.encode(texts[:subset_size])]
    quantized = nncf.quantize(model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(items))
    ov.save_model(quantized, str(xml), compress_to_fp16=False)
    return {
        "scheme": "nncf-int8",
        "recipe": "nncf.quantize(model_type=TRANSFORMER), static activation scales",
        "calibration_texts": len(items),
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
