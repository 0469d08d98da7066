"""Request and response bodies, in Hugging Face Inference API form, with the server's caps built in
(so the OpenAPI schema states them and over-cap requests get 422 before any inference)."""

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..calibration import OUTPUT_FUNCTIONS
from .settings import ServerSettings


class LabelScore(BaseModel):
    label: str
    score: float


class ErrorBody(BaseModel):
    error: str
    detail: list | None = None


def request_models(settings: ServerSettings) -> tuple[type[BaseModel], type[BaseModel]]:
    """(PredictRequest, EmbedRequest) with this server's limits on texts and list lengths."""
    text = Annotated[str, StringConstraints(max_length=settings.max_text_chars)]
    texts = Annotated[list[text], Field(max_length=settings.max_inputs)]
    inputs_doc = (
        f"A text, or a list of at most {settings.max_inputs} texts, each at most "
        f"{settings.max_text_chars} characters (the model truncates at its max_length tokens)."
    )

    class PredictParameters(BaseModel):
        model_config = ConfigDict(extra="forbid")
        top_k: Annotated[int, Field(ge=1)] | None = Field(
            None, description="Return the K best labels per text (default: every label, best first)."
        )
        function_to_apply: Literal[OUTPUT_FUNCTIONS] = Field(  # type: ignore[valid-type]
            "softmax",
            description="softmax (divided by the model's fitted temperature), sigmoid, or none (raw logits).",
        )

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        inputs: Union[text, texts] = Field(description=inputs_doc)  # noqa: UP007
        parameters: PredictParameters = Field(default_factory=PredictParameters)

    class EmbedParameters(BaseModel):
        model_config = ConfigDict(extra="forbid")
        normalize: bool = Field(True, description="L2-normalise each embedding.")

    class EmbedRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        inputs: Union[text, texts] = Field(description=inputs_doc)  # noqa: UP007
        parameters: EmbedParameters = Field(default_factory=EmbedParameters)

    return PredictRequest, EmbedRequest


PredictResponse = Union[list[LabelScore], list[list[LabelScore]]]  # noqa: UP007
EmbedResponse = Union[list[float], list[list[float]]]  # noqa: UP007
