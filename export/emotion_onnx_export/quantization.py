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

    def resolved_reduce_range(self) -> bool:
        # onnxruntime: on AVX2 without VNNI, U8S8 uses VPMADDUBSW, whose int16 accumulation
        # can saturate; 7-bit weights (reduce_range) avoid that. AVX512-VNNI and ARM64
        # (SDOT/UDOT) accumulate in int32 and need no reduction.
        if self.reduce_range is not None:
            return self.reduce_range
        return self.target == "avx2"

    def to_manifest(self) -> dict:
        """What the variant's manifest records: what `quantize` did (int8 weights, uint8
        activations, one scale per batch tensor, which is why the variant is batch-dependent)."""
        return {
            **asdict(self),
            "reduce_range": self.resolved_reduce_range(),
            "scheme": "dynamic-per-tensor",
            "weights": "int8 (QInt8)" + (", per output channel" if self.per_channel else ", per tensor"),
            "activations": "uint8 (QUInt8), one dynamic scale per tensor",
        }


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
