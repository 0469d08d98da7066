"""One table of requests, good, bad and hostile, that both the HTTP server and the Lambda handler
must answer alike: the same status and the same error message.

The adapters under test run with CONTRACT_ENV, so that both read the same limits.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field

CONTRACT_ENV = {
    "EMOTION_ONNX_MAX_INPUTS": "64",
    "EMOTION_ONNX_MAX_TEXT_CHARS": "2000",
    "EMOTION_ONNX_MAX_REQUEST_TOKENS": "4096",
    "EMOTION_ONNX_MAX_BODY_BYTES": "65536",
}
JSON = {"Content-Type": "application/json"}


@dataclass
class Case:
    name: str
    body: bytes
    status: int
    fragment: str = ""  # a piece of the error message (2xx: unused)
    route: str = "/predict"
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))


def j(obj) -> bytes:
    return json.dumps(obj).encode()


def _cases() -> list[Case]:
    long_words = " ".join(["feel"] * 300)  # 302 tokens in 1499 characters
    ok_text = "i feel wonderful today"
    return [
        # ------------------------------------------------------------ accepted
        Case("one text", j({"inputs": ok_text}), 200),
        Case("a list with top_k", j({"inputs": ["a", "b"], "parameters": {"top_k": 2}}), 200),
        Case("an empty list", j({"inputs": []}), 200),
        Case("the empty text", j({"inputs": ""}), 200),
        Case("emoji and accents", j({"inputs": "je suis ravi 🎉 ça va"}), 200),
        Case("parameters null", j({"inputs": ok_text, "parameters": None}), 200),
        Case("top_k null", j({"inputs": ok_text, "parameters": {"top_k": None}}), 200),
        Case("top_k above the labels", j({"inputs": ok_text, "parameters": {"top_k": 100}}), 200),
        Case(
            "function_to_apply upper case", j({"inputs": ok_text, "parameters": {"function_to_apply": "SOFTMAX"}}), 200
        ),
        Case("calibrated temperature", j({"inputs": ok_text, "parameters": {"calibrated": "temperature"}}), 200),
        Case("calibrated false", j({"inputs": ok_text, "parameters": {"calibrated": False}}), 200),
        Case("options", j({"inputs": ok_text, "options": {"wait_for_model": True, "use_cache": False}}), 200),
        Case("no content type", j({"inputs": ok_text}), 200, headers={}),
        Case(
            "json with charset",
            j({"inputs": ok_text}),
            200,
            headers={"Content-Type": "application/json; charset=utf-8"},
        ),
        Case("a +json media type", j({"inputs": ok_text}), 200, headers={"Content-Type": "application/vnd.api+json"}),
        Case("a byte order mark", b"\xef\xbb\xbf" + j({"inputs": ok_text}), 200),
        Case("a trailing slash", j({"inputs": ok_text}), 200, route="/predict/"),
        Case("embed one text", j({"inputs": ok_text}), 200, route="/embed"),
        Case(
            "embed truncate false, short",
            j({"inputs": ok_text, "parameters": {"truncate": False}}),
            200,
            route="/embed",
        ),
        Case(
            "embed TEI parameters",
            j(
                {
                    "inputs": ok_text,
                    "parameters": {
                        "normalize": True,
                        "truncate": True,
                        "truncation_direction": "Right",
                        "prompt_name": None,
                    },
                }
            ),
            200,
            route="/embed",
        ),  # fmt: skip
        Case(
            "embed TEI top-level fields", j({"inputs": "x", "normalize": False, "truncate": True}), 200, route="/embed"
        ),
        Case(
            "embed a parameter twice",
            j({"inputs": "x", "normalize": False, "parameters": {"normalize": True}}),
            422,
            "given twice",
            route="/embed",
        ),  # fmt: skip
        # ------------------------------------------------------------ bodies that are not JSON
        Case("not JSON", b"{bad", 400, "not valid JSON"),
        Case("an empty body", b"", 400, "no body"),
        Case("invalid UTF-8", b'{"inputs": "\xff\xfe"}', 400, "not UTF-8"),
        Case("trailing garbage", j({"inputs": "x"}) + b" x", 400, "not valid JSON"),
        Case("deep nesting", b"[" * 5000 + b"]" * 5000, 400, "nests deeper than 32 levels"),
        Case("deep nesting in inputs", b'{"inputs": ' + b"[" * 100 + b"]" * 100 + b"}", 400, "nests deeper"),
        Case(
            "a 5000-digit number",
            b'{"inputs": "x", "parameters": {"top_k": ' + b"9" * 5000 + b"}}",
            400,
            "not valid JSON",
        ),  # fmt: skip
        Case("NaN", b'{"inputs": "x", "parameters": {"top_k": NaN}}', 400, "NaN is not a JSON number"),
        Case("Infinity", b'{"inputs": "x", "parameters": {"top_k": -Infinity}}', 400, "Infinity is not a JSON number"),
        Case("a body over the byte cap", j({"inputs": ["x" * 1900] * 35}), 413, "the limit is 65536"),
        # ------------------------------------------------------------ media types
        Case(
            "gzip",
            gzip.compress(j({"inputs": ok_text})),
            415,
            "Content-Encoding gzip",
            headers={**JSON, "Content-Encoding": "gzip"},
        ),  # fmt: skip
        Case(
            "form-encoded",
            b"inputs=x",
            415,
            "Content-Type: application/json",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),  # fmt: skip
        Case("text/plain", j({"inputs": ok_text}), 415, "got text/plain", headers={"Content-Type": "text/plain"}),
        # ------------------------------------------------------------ JSON of the wrong shape
        Case("a JSON string body", b'"hello"', 422, "must be a JSON object"),
        Case("a list body", b'["x"]', 422, "got an array"),
        Case("a null body", b"null", 422, "got null"),
        Case("a number body", b"3", 422, "got a number"),
        Case("no inputs", b"{}", 422, 'no "inputs"'),
        Case("inputs a number", j({"inputs": 3}), 422, "inputs must be a string or a list of strings"),
        Case("inputs null", j({"inputs": None}), 422, "got null"),
        Case("inputs an object", j({"inputs": {"a": 1}}), 422, "got an object"),
        Case("a non-string item", j({"inputs": ["ok", 5]}), 422, "inputs[1] must be a string"),
        Case("a null item", j({"inputs": ["ok", None]}), 422, "inputs[1] must be a string, got null"),
        Case("a nested list", j({"inputs": [["nested"]]}), 422, "inputs[0] must be a string, got an array"),
        Case("a lone surrogate", b'{"inputs": "caf\\ud800"}', 422, "lone surrogate"),
        Case("a lone surrogate in a list", b'{"inputs": ["ok", "\\udfff"]}', 422, "inputs[1] holds a lone surrogate"),
        Case("an unknown field", j({"inputs": "x", "extra": 1}), 422, "unknown field(s) 'extra'"),
        Case("the wrong field", j({"text": "x"}), 422, 'no "inputs"'),
        Case("parameters a list", j({"inputs": "x", "parameters": []}), 422, "parameters must be a JSON object"),
        Case(
            "parameters a string", j({"inputs": "x", "parameters": "top_k=2"}), 422, "parameters must be a JSON object"
        ),
        Case("top_k 0", j({"inputs": "x", "parameters": {"top_k": 0}}), 422, "top_k must be a positive integer"),
        Case("top_k negative", j({"inputs": "x", "parameters": {"top_k": -1}}), 422, "top_k"),
        Case("top_k a string", j({"inputs": "x", "parameters": {"top_k": "2"}}), 422, 'got "2"'),
        Case("top_k a float", j({"inputs": "x", "parameters": {"top_k": 2.0}}), 422, "got 2.0"),
        Case("top_k true", j({"inputs": "x", "parameters": {"top_k": True}}), 422, "got true"),
        Case(
            "a bad function", j({"inputs": "x", "parameters": {"function_to_apply": "relu"}}), 422, "function_to_apply"
        ),
        Case("function a number", j({"inputs": "x", "parameters": {"function_to_apply": 1}}), 422, "function_to_apply"),
        Case("calibrated a string", j({"inputs": "x", "parameters": {"calibrated": "yes"}}), 422, "calibrated must be"),
        Case("an unknown parameter", j({"inputs": "x", "parameters": {"temperature": 2}}), 422, "'temperature'"),
        Case(
            "an embed parameter on predict", j({"inputs": "x", "parameters": {"normalize": True}}), 422, "'normalize'"
        ),
        Case("options a list", j({"inputs": "x", "options": []}), 422, "options must be a JSON object"),
        Case("an option not a bool", j({"inputs": "x", "options": {"wait_for_model": "yes"}}), 422, "wait_for_model"),
        Case("an unknown option", j({"inputs": "x", "options": {"stream": True}}), 422, "'stream'"),
        Case(
            "embed normalize not a bool",
            j({"inputs": "x", "parameters": {"normalize": "maybe"}}),
            422,
            "normalize",
            route="/embed",
        ),  # fmt: skip
        Case(
            "embed truncate not a bool",
            j({"inputs": "x", "parameters": {"truncate": "no"}}),
            422,
            "truncate",
            route="/embed",
        ),  # fmt: skip
        Case(
            "embed a prompt",
            j({"inputs": "x", "parameters": {"prompt_name": "query"}}),
            422,
            "no prompts",
            route="/embed",
        ),  # fmt: skip
        Case(
            "embed left truncation",
            j({"inputs": "x", "parameters": {"truncation_direction": "left"}}),
            422,
            "truncation_direction",
            route="/embed",
        ),  # fmt: skip
        Case(
            "embed a predict parameter", j({"inputs": "x", "parameters": {"top_k": 1}}), 422, "'top_k'", route="/embed"
        ),
        # ------------------------------------------------------------ limits
        Case("too many inputs", j({"inputs": ["x"] * 65}), 413, "inputs has 65 texts; the limit is 64"),
        Case("a text too long", j({"inputs": "x" * 2001}), 413, "2001 characters; the limit is 2000"),
        Case("a long text in a list", j({"inputs": ["x", "y" * 2001]}), 413, "inputs[1] has 2001 characters"),
        Case("too many tokens", j({"inputs": [long_words] * 20}), 413, "tokens; the limit is 4096"),
        Case(
            "embed a text longer than the model reads",
            j({"inputs": "a " * 900, "parameters": {"truncate": False}}),
            413,
            "longer than 512 tokens",
            route="/embed",
        ),  # fmt: skip
        # ------------------------------------------------------------ routes and methods
        Case("an unknown route", j({"inputs": "x"}), 404, "no route for /classify", route="/classify"),
        Case("GET /predict", b"", 405, "/predict takes POST, not GET", method="GET"),
        Case("POST /healthz", j({"inputs": "x"}), 405, "/healthz takes GET, HEAD, not POST", route="/healthz"),
        *_cloud_cases(),
    ]


INFER = "/v2/models/{model}/infer"  # the test fills in the model's name
CSV = {"Content-Type": "text/csv"}


def v2(data, datatype="BYTES", name="text", shape=None, **extra) -> bytes:
    tensor = {"name": name, "datatype": datatype, "shape": [len(data)] if shape is None else shape, "data": data}
    return j({"inputs": [tensor], **extra})


def _cloud_cases() -> list[Case]:
    """The same rules through SageMaker's /invocations and the Open Inference Protocol's infer route:
    a body that means the same as a /predict body gets the same answer, refusals included."""
    return [
        # ------------------------------------------------------------ SageMaker
        Case("sagemaker json", j({"inputs": "I love this product!"}), 200, route="/invocations"),
        Case("sagemaker csv", b'i feel great\n"so sad, truly"\n', 200, route="/invocations", headers=CSV),
        Case(
            "sagemaker too many inputs",
            j({"inputs": ["x"] * 65}),
            413,
            "inputs has 65 texts; the limit is 64",
            route="/invocations",
        ),  # fmt: skip
        Case(
            "sagemaker csv too many lines",
            b"x\n" * 65,
            413,
            "inputs has 65 texts; the limit is 64",
            route="/invocations",
            headers=CSV,
        ),  # fmt: skip
        Case(
            "sagemaker csv record of two fields",
            b"a,b\n",
            422,
            "quote a text that holds commas",
            route="/invocations",
            headers=CSV,
        ),  # fmt: skip
        Case("sagemaker csv not utf-8", b"\xff\xfe\n", 400, "not UTF-8", route="/invocations", headers=CSV),
        Case("sagemaker bad json", b'{"inputs": ', 400, "not valid JSON", route="/invocations"),
        Case(
            "sagemaker gzip",
            j({"inputs": "x"}),
            415,
            "Content-Encoding gzip",
            route="/invocations",
            headers={**JSON, "Content-Encoding": "gzip"},
        ),  # fmt: skip
        Case(
            "sagemaker a bad parameter",
            j({"inputs": "x", "parameters": {"top_k": 0}}),
            422,
            "parameters.top_k must be a positive integer",
            route="/invocations",
        ),  # fmt: skip
        Case("GET /invocations", b"", 405, "/invocations takes POST, not GET", route="/invocations", method="GET"),
        # ------------------------------------------------------------ Open Inference Protocol
        Case("v2 infer", v2(["i feel great", "hmm ok"], id="r1"), 200, route=INFER),
        Case("v2 infer one output", v2(["x"], outputs=[{"name": "label"}]), 200, route=INFER),
        Case("v2 infer with parameters", v2(["x"], parameters={"top_k": 2}), 200, route=INFER),
        Case("v2 a tensor of numbers", v2([1.0, 2.0], datatype="FP32"), 422, "must have datatype BYTES", route=INFER),
        Case("v2 a tensor of another name", v2(["x"], name="input_ids"), 422, "must be named 'text'", route=INFER),
        Case("v2 a shape that is not the data's", v2(["x"], shape=[3]), 422, "has shape [3] but 1 texts", route=INFER),
        Case(
            "v2 two input tensors",
            j({"inputs": [{"name": "text"}, {"name": "text"}]}),
            422,
            "exactly one input tensor",
            route=INFER,
        ),  # fmt: skip
        Case("v2 an unknown output", v2(["x"], outputs=[{"name": "logits"}]), 422, "unknown output(s)", route=INFER),
        Case("v2 too many texts", v2(["x"] * 65), 413, "inputs has 65 texts; the limit is 64", route=INFER),
        Case("v2 a number among the texts", v2(["x", 3]), 422, "inputs[1] must be a string", route=INFER),
        Case(
            "v2 neutral on a model without it",
            v2(["x"], parameters={"neutral": True}),
            422,
            "no neutral output",
            route=INFER,
        ),  # fmt: skip
        Case("v2 another model", v2(["x"]), 404, "no model named", route="/v2/models/someone-else/infer"),
        Case("v2 not an inference request", j({"inputs": "x"}), 422, "must be an inference request", route=INFER),
    ]


CASES = _cases()
