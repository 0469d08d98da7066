"""INT8 dynamic quantisation of the fused graph, following onnxruntime's guidance per CPU family."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

TARGETS = ("avx512_vnni", "avx2", "arm64")


@dataclass(frozen=True)
class QuantizationSettings:
    target: str = "avx512_vnni"
    per_channel: bool = True
    reduce_range: bool | None = None  # None: the target's recommendation
    weight_type: str = "QInt8"
    activation_type: str = "QUInt8"
    scheme: str = "dynamic-per-tensor"

    def resolved_reduce_range(self) -> bool:
        # onnxruntime: on AVX2 without VNNI, U8S8 uses VPMADDUBSW, whose int16 accumulation
        # can saturate; 7-bit weights (reduce_range) avoid that. AVX512-VNNI and ARM64
        # (SDOT/UDOT) accumulate in int32 and need no reduction.
        if self.reduce_range is not None:
            return self.reduce_range
        return self.target == "avx2"

    def to_manifest(self) -> dict:
        data = asdict(self)
        data["reduce_range"] = self.resolved_reduce_range()
        return data


def quantize(src: Path, dst: Path, settings: QuantizationSettings) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if settings.target not in TARGETS:
        raise ValueError(f"unknown target {settings.target!r}; choose one of {', '.join(TARGETS)}")
    quantize_dynamic(
        str(src),
        str(dst),
        per_channel=settings.per_channel,
        reduce_range=settings.resolved_reduce_range(),
        weight_type=QuantType.QInt8,
        # the fused graph's contrib ops carry no type information for the quantiser
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
