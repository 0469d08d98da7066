"""What the export stage knows about each supported architecture."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    model_type: str
    head_linear: str  # dotted path of the Linear that maps the embedding to the logits
    uses_token_type_ids: bool
    position_offset: int  # positions reserved before the first token (RoBERTa: padding_idx + 1)


ARCHITECTURES: dict[str, Architecture] = {
    "distilbert": Architecture("distilbert", "classifier", False, 0),
    "bert": Architecture("bert", "classifier", True, 0),
    "roberta": Architecture("roberta", "classifier.out_proj", False, 2),
}


def supported_list() -> str:
    return ", ".join(sorted(ARCHITECTURES))
