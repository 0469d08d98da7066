"""The request and response bodies as pydantic models, for the OpenAPI schema only: every
decision about a request is made by emotion_onnx.requests over the rules in
emotion_onnx.parameters, and these models are built from the same rules and limits, for /docs and
for clients that generate code from the schema."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..parameters import CALIBRATED, OUTPUT_FUNCTIONS, TRUNCATION_DIRECTIONS, any_case_pattern
from ..requests import Limits

CALIBRATED_WORDS = tuple(v for v in CALIBRATED if isinstance(v, str))  # beside true and false


class LabelScore(BaseModel):
    label: str
    score: float


class ErrorBody(BaseModel):
    error: str


class Options(BaseModel):
    """Accepted for compatibility with the Hugging Face Inference API; changes nothing."""

    model_config = ConfigDict(extra="forbid")
    wait_for_model: bool | None = None
    use_cache: bool | None = None


def request_models(limits: Limits) -> tuple[type[BaseModel], type[BaseModel]]:
    """(PredictRequest, EmbedRequest) with these limits on texts and list lengths."""
    text = Annotated[str, StringConstraints(max_length=limits.max_text_chars)]
    direction = Annotated[str, Field(pattern=any_case_pattern(TRUNCATION_DIRECTIONS), description="any case")]
    texts = Annotated[list[text], Field(max_length=limits.max_inputs)]
    inputs_doc = (
        f"A text, or a list of at most {limits.max_inputs} texts, each at most {limits.max_text_chars} characters, "
        f"at most {limits.max_request_tokens} tokens in all (the model reads at most its max_length tokens of a text)."
    )

    class PredictParameters(BaseModel):
        model_config = ConfigDict(extra="forbid")
        top_k: Annotated[int, Field(ge=1)] | None = Field(
            None, description="Return the K best labels per text (default: every label, best first)."
        )
        function_to_apply: Annotated[str, Field(pattern=any_case_pattern(OUTPUT_FUNCTIONS))] = Field(
            "softmax", description="softmax (calibrated as `calibrated` says), sigmoid or none (raw logits); any case."
        )
        calibrated: Union[bool, Literal[CALIBRATED_WORDS]] = Field(  # noqa: UP007
            True,
            description="true: the model's calibrated probabilities (temperature, then its top-1 map); "
            '"temperature": the temperature only; false: plain softmax.',
        )
        neutral: bool = Field(
            False,
            description="true: rank the model's neutral label beside the others (a model without one refuses, 422).",
        )

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        inputs: Union[text, texts] = Field(description=inputs_doc)  # noqa: UP007
        parameters: PredictParameters | None = None
        options: Options | None = None

    class EmbedParameters(BaseModel):
        model_config = ConfigDict(extra="forbid")
        normalize: bool | None = Field(True, description="L2-normalise each embedding.")
        truncate: bool | None = Field(True, description="false: refuse (413) a text longer than the model reads.")
        truncation_direction: direction | None = None
        prompt_name: None = Field(None, description="Always null: this model has no prompts.")

    class EmbedRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        inputs: Union[text, texts] = Field(description=inputs_doc)  # noqa: UP007
        parameters: EmbedParameters | None = None
        options: Options | None = None
        # Text Embeddings Inference's form: the same parameters at the top level
        normalize: bool | None = None
        truncate: bool | None = None
        truncation_direction: direction | None = None
        prompt_name: None = None

    return PredictRequest, EmbedRequest


PredictResponse = list[list[LabelScore]]
EmbedResponse = list[list[float]]
