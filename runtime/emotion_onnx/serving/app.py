"""The FastAPI application: /predict, /embed, /healthz, /readyz, /metrics and the OpenAPI schema.

Requests are decoded, validated and answered by emotion_onnx.handling (as the Lambda handler's
are); the pydantic models in schemas.py only describe them in the OpenAPI schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..classifier import EmotionClassifier
from ..contracts import model_metadata, model_name, unknown_model
from ..handling import begin, decode
from ..requests import RequestError, method_not_allowed, not_found
from .batcher import MicroBatcher, QueueFullError, ShuttingDownError
from .guard import Guard, allowed_methods, open_route
from .metrics import ServerMetrics
from .schemas import EmbedResponse, ErrorBody, PredictResponse, request_models
from .settings import ServerSettings

# Requests with at most this many characters are tokenised on the event loop (tens of
# microseconds); bigger ones in a worker thread, so they never stall other clients.
INLINE_TOKENIZE_CHARS = 4096
PAGE = Path(__file__).resolve().parent / "static" / "index.html"


class ClientGone(Exception):
    """The client disconnected before its result was ready."""


def unavailable(message: str, retry_after: int) -> RequestError:
    return RequestError("unavailable", message, {"Retry-After": str(retry_after)})


class InferenceService:
    """Owns the classifier (loaded in the background, so /readyz can say when) and the batcher."""

    def __init__(self, settings: ServerSettings, metrics: ServerMetrics):
        self.settings = settings
        self.metrics = metrics
        self.clf: EmotionClassifier | None = None
        self.load_error: str | None = None  # the kind of failure, for clients
        self.batcher: MicroBatcher | None = None
        self.draining = False

    @property
    def ready(self) -> bool:
        return self.clf is not None and self.batcher is not None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._load_task = loop.run_in_executor(None, self._load)
        self._attach_task = asyncio.ensure_future(self._attach_batcher())

    def _load(self) -> None:
        s = self.settings
        try:
            clf = EmotionClassifier(s.model, variant=s.variant, intra_op_threads=s.threads, spinning=s.spinning)
            clf.warn_if_batch_dependent("the server's micro-batches")
            self.clf = clf
        except Exception as exc:  # the operator reads the details on stderr; clients get the kind
            print(f"emotion-onnx serve: the model failed to load: {type(exc).__name__}: {exc}", file=sys.stderr)
            self.load_error = type(exc).__name__

    async def _attach_batcher(self) -> None:
        await self._load_task
        if self.clf is None:
            return
        batcher = MicroBatcher(
            self.clf.forward_encodings,
            batch_tokens=self.settings.batch_tokens,
            max_wait_ms=self.settings.max_wait_ms,
            max_queue_tokens=self.settings.max_queue_tokens,
            on_batch=self.metrics.observe_batch,
            on_skip=self.metrics.skipped.inc,
        )
        batcher.start()
        self.metrics.queue_depth.set_function(lambda: batcher.queued_texts)
        self.batcher = batcher

    def begin_drain(self, grace_s: float) -> None:
        """SIGTERM: refuse new requests (503), and refuse what is still queued a little before the grace
        period ends, so that every accepted request gets an answer or a clean JSON refusal."""
        self.draining = True
        if self.batcher is None:
            return
        self.batcher.stop_accepting()
        margin = min(5.0, grace_s / 4)
        asyncio.get_running_loop().call_later(
            max(0.0, grace_s - margin), self.batcher.give_up_waiting, "the server is shutting down"
        )

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._attach_task
        if self.batcher is not None:
            await self.batcher.close()

    def refusal(self) -> RequestError | None:
        """Why the service cannot answer now, or None when it can: the one place that decides it
        (shutting down, the model failed to load, still loading)."""
        if self.draining:
            return unavailable("the server is shutting down; retry on another instance", self.settings.retry_after_s)
        if self.load_error:
            return unavailable(f"the model failed to load ({self.load_error}); see the server's log", 30)
        if not self.ready:
            return unavailable("the model is still loading", 1)
        return None

    def draining_refusal(self) -> RequestError | None:
        """The refusal of a new request once shutdown has begun (the guard asks before reading a body)."""
        return self.refusal() if self.draining else None

    async def answer(self, route: str, request: Request, contract: str = "hf") -> Any:
        """One request to /predict or /embed in `contract`'s shape, through emotion_onnx.handling
        (as the Lambda handler's); only the inference goes through the micro-batcher."""
        limits = self.settings.limits
        payload, context = decode(contract, await request.body(), dict(request.headers), limits)
        call = begin(route, payload, limits, self.clf, self.refusal, contract, context, request.path_params.get("name"))
        if sum(len(t) for t in call.request.texts) <= INLINE_TOKENIZE_CHARS:
            encodings = call.admit()
        else:
            encodings = await asyncio.get_running_loop().run_in_executor(None, call.admit)
        outputs = await self._infer(encodings, request) if encodings else call.clf.forward_encodings([])
        return call.answer(outputs)

    async def _infer(self, encodings: list, request: Request) -> tuple[np.ndarray, np.ndarray]:
        try:
            job = self.batcher.submit(encodings)
        except QueueFullError as exc:
            self.metrics.rejected.inc(len(encodings))
            raise unavailable(f"server busy: {exc}", self.settings.retry_after_s) from None
        except ShuttingDownError as exc:
            raise unavailable(str(exc), self.settings.retry_after_s) from None
        watcher = asyncio.ensure_future(_wait_for_disconnect(request))
        try:
            done, _ = await asyncio.wait({job.future, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if job.future not in done:  # the client left first
                self.batcher.cancel(job)
                raise ClientGone
            return job.future.result()
        finally:
            watcher.cancel()


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(settings: ServerSettings | None = None) -> Any:
    """The ASGI application (uvicorn's `--factory` target): every route behind the guard."""
    return create_server(settings)[0]


def create_server(settings: ServerSettings | None = None) -> tuple[Guard, InferenceService]:
    """(the ASGI application, the service behind it): `emotion-onnx serve` keeps the service, to
    begin draining it on SIGTERM."""
    settings = settings or ServerSettings.from_env()
    settings.check()
    metrics = ServerMetrics()
    service = InferenceService(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        yield
        await service.stop()  # uvicorn has stopped accepting and drained the connections

    app = FastAPI(
        title="emotion-onnx",
        summary="Emotion classification (sadness, joy, love, anger, fear, surprise) on onnxruntime.",
        version=_version(),
        lifespan=lifespan,
        redirect_slashes=False,  # never redirect to the client's Host header; /predict/ is served
        docs_url=None,  # served below from local files, not a CDN: edge machines are often offline
        redoc_url=None,
    )
    app.state.service = service
    app.state.settings = settings
    add_error_handlers(app)
    request_models = add_model_routes(app, service, settings)
    add_cloud_routes(app, service, settings)
    add_pages(app)
    add_probes(app, service, metrics)
    use_openapi(app, request_models)
    guard = Guard(
        app,
        max_body_bytes=settings.limits.max_body_bytes,
        api_token=settings.api_token,
        metrics=metrics,
        body_timeout_s=settings.body_timeout_s,
        refuse_new=service.draining_refusal,
    )
    return guard, service


ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 413, 415, 422, 503)}


def model_handler(service: InferenceService, route: str, contract: str = "hf"):
    """The endpoint of a route that runs the model: `route`'s request in `contract`'s shape."""

    async def handle(request: Request):  # the only parameter: nothing else may reach it from a query string
        return JSONResponse(await service.answer(route, request, contract))

    return handle


def add_model_routes(app: FastAPI, service: InferenceService, settings: ServerSettings) -> tuple:
    """/predict and /embed (with a trailing slash too), and / as /predict, as Lambda's root URL.
    Returns the request models, which only document the bodies (emotion_onnx.requests decides)."""
    PredictRequest, EmbedRequest = request_models(settings.limits)
    for route, model, response, summary in (
        ("/predict", PredictRequest, PredictResponse, "Classify texts"),
        ("/embed", EmbedRequest, EmbedResponse, "Sentence embeddings"),
    ):
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}
        endpoint = model_handler(service, route)
        app.post(route, response_model=response, responses=ERRORS, summary=summary, openapi_extra=doc)(endpoint)
        app.post(route + "/", include_in_schema=False)(endpoint)
    app.post("/", include_in_schema=False)(model_handler(service, "/predict"))
    return PredictRequest, EmbedRequest


def add_pages(app: FastAPI) -> None:
    """The page at / and the API docs, from local files (no CDN)."""
    try:
        import swagger_ui_bundle

        app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")
        open_route(app.routes[-1].app)  # Swagger UI's static files
        docs_assets = True
    except ImportError:  # the serve extra installs it; without it /docs says so instead of going blank
        docs_assets = False

    @app.get("/docs", include_in_schema=False)
    @open_route
    async def docs():
        if not docs_assets:
            return _error(
                404, "the API docs need swagger-ui-bundle-v2 (the serve extra); the schema is at /openapi.json"
            )
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="emotion-onnx API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    @open_route
    async def page():
        return FileResponse(PAGE, media_type="text/html")


def ready_or_503(service: InferenceService, body: dict):
    refused = service.refusal()
    if refused is None:
        return JSONResponse(body)
    return _error(refused.status, str(refused), refused.headers)


def add_probes(app: FastAPI, service: InferenceService, metrics: ServerMetrics) -> None:
    """/healthz, /readyz and /metrics: open, for orchestrators and scrapers."""

    @app.get("/healthz", summary="Liveness")
    @open_route
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: is the model loaded?", responses={503: {"model": ErrorBody}})
    @open_route
    async def readyz():
        clf = service.clf
        if clf is None:
            return ready_or_503(service, {})
        model = clf.manifest.name or clf.manifest.directory.name
        return ready_or_503(service, {"status": "ready", "model": model, "variant": clf.variant.name,
                                      "labels": clf.labels})  # fmt: skip

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    @open_route
    async def prometheus():
        return Response(metrics.render(), media_type=metrics.content_type)


def use_openapi(app: FastAPI, models: tuple) -> None:
    """The schema, with the request models that document /predict and /embed; open to all."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(doc.pop("$defs", {}))
                components[model.__name__] = doc
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    for route in app.routes:  # FastAPI's own schema route
        if getattr(route, "path", None) == app.openapi_url:
            open_route(route.endpoint)


NAME_PARAMETER = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal and failure as one JSON body naming the problem, never a stack trace."""

    @app.exception_handler(RequestError)
    async def on_request_error(request: Request, exc: RequestError):
        return _error(exc.status, str(exc), exc.headers)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            return _error(404, str(not_found(request.url.path)))
        if exc.status_code == 405:
            wanted = ", ".join(allowed_methods(app.router.routes, request.scope))
            err = method_not_allowed(request.url.path, request.method, wanted)
            return _error(405, str(err), err.headers)
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError):
        return _error(422, "invalid request")

    @app.exception_handler(ClientGone)
    async def on_gone(request: Request, exc: ClientGone):
        return _error(499, "client closed the request")  # nginx's convention; nobody reads it

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception):
        return _error(500, f"internal error ({type(exc).__name__})")


def add_cloud_routes(app: FastAPI, service: InferenceService, settings: ServerSettings) -> None:
    """The cloud platforms' contracts on the same service (emotion_onnx.contracts): SageMaker's
    /ping and /invocations, Vertex AI's health and predict routes, and the Open Inference
    Protocol's /v2 routes. Their probes and metadata are open; what runs the model needs the token."""
    probe = {503: {"model": ErrorBody}}
    by_name = {"parameters": [NAME_PARAMETER]}
    model_probe = {**probe, 404: {"model": ErrorBody}}
    app.post("/invocations", summary="SageMaker: classify texts (JSON, or text/csv one per line)", responses=ERRORS)(
        model_handler(service, "/predict", "sagemaker")
    )
    app.post(settings.vertex_predict_route, summary="Vertex AI: classify instances", responses=ERRORS)(
        model_handler(service, "/predict", "vertex")
    )
    app.post(
        "/v2/models/{name}/infer", summary="Open Inference Protocol: infer", responses=ERRORS, openapi_extra=by_name
    )(model_handler(service, "/predict", "v2"))

    @app.get("/ping", summary="SageMaker: ready?", responses=probe)
    @open_route
    async def ping():
        return ready_or_503(service, {"status": "ready"})

    @app.get(settings.vertex_health_route, summary="Vertex AI: ready?", responses=probe)
    @open_route
    async def vertex_health():
        return ready_or_503(service, {"status": "ready"})

    @app.get("/v2/health/live", summary="Open Inference Protocol: live")
    @open_route
    async def v2_live():
        return {"live": True}

    @app.get("/v2/health/ready", summary="Open Inference Protocol: ready?", responses=probe)
    @open_route
    async def v2_ready():
        return ready_or_503(service, {"ready": True})

    @app.get("/v2", summary="Open Inference Protocol: server metadata")
    @open_route
    async def v2_server():
        return {"name": "emotion-onnx", "version": _version(), "extensions": []}

    def known_model(name: str):
        if not service.ready:  # loading, or the load failed: metadata needs the model
            raise service.refusal()
        if name != model_name(service.clf):
            raise unknown_model(name, service.clf)
        return service.clf

    @app.get("/v2/models/{name}", summary="Open Inference Protocol: model metadata", responses=model_probe,
             openapi_extra=by_name)  # fmt: skip
    @open_route
    async def v2_model(request: Request):
        return model_metadata(known_model(request.path_params["name"]))

    @app.get("/v2/models/{name}/ready", summary="Open Inference Protocol: model ready?", responses=model_probe,
             openapi_extra=by_name)  # fmt: skip
    @open_route
    async def v2_model_ready(request: Request):
        known_model(request.path_params["name"])
        return ready_or_503(service, {"name": request.path_params["name"], "ready": True})


def _version() -> str:
    from .. import __version__

    return __version__
