"""The FastAPI application: /predict, /embed, /healthz, /readyz, /metrics and the OpenAPI schema."""

import asyncio
import contextlib
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..classifier import EmotionClassifier
from ..responses import classification_body, embedding_body
from .batcher import MicroBatcher, QueueFullError, ShuttingDownError
from .guard import Guard
from .metrics import ServerMetrics
from .schemas import EmbedResponse, ErrorBody, PredictResponse, request_models
from .settings import ServerSettings

# Requests with at most this many characters are tokenised on the event loop (tens of
# microseconds); bigger ones in a worker thread, so they never stall other clients.
INLINE_TOKENIZE_CHARS = 4096


class ServiceUnavailable(Exception):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class ClientGone(Exception):
    """The client disconnected before its result was ready."""


class InferenceService:
    """Owns the classifier (loaded in the background, so /readyz can say when) and the batcher."""

    def __init__(self, settings: ServerSettings, metrics: ServerMetrics):
        self.settings = settings
        self.metrics = metrics
        self.clf: EmotionClassifier | None = None
        self.load_error: str | None = None
        self.batcher: MicroBatcher | None = None

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
        except Exception as exc:  # reported by /readyz and every inference request
            self.load_error = f"{type(exc).__name__}: {exc}"

    async def _attach_batcher(self) -> None:
        await self._load_task
        if self.clf is None:
            return
        batcher = MicroBatcher(
            self.clf.forward_encodings,
            batch_tokens=self.settings.batch_tokens,
            max_wait_ms=self.settings.max_wait_ms,
            max_queue_texts=self.settings.max_queue_texts,
            on_batch=self.metrics.observe_batch,
            on_skip=self.metrics.skipped.inc,
        )
        batcher.start()
        self.metrics.queue_depth.set_function(lambda: batcher.queued_texts)
        self.batcher = batcher

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._attach_task
        if self.batcher is not None:
            await self.batcher.close()

    async def infer_inputs(self, inputs: str | list[str], request: Request):
        """(single, (logits, embeddings)) for a request's `inputs`; None instead of the arrays
        when there are no texts (the answer is then [])."""
        single = isinstance(inputs, str)
        texts = [inputs] if single else list(inputs)
        return single, (await self.infer(texts, request) if texts else None)

    async def infer(self, texts: list[str], request: Request) -> tuple[np.ndarray, np.ndarray]:
        if not self.ready:
            if self.load_error:
                raise ServiceUnavailable(f"the model failed to load: {self.load_error}", 30)
            raise ServiceUnavailable("the model is still loading", 1)
        clf, batcher = self.clf, self.batcher
        if sum(len(t) for t in texts) <= INLINE_TOKENIZE_CHARS:
            encodings = clf.encoder.encode(texts)
        else:
            encodings = await asyncio.get_running_loop().run_in_executor(None, clf.encoder.encode, texts)
        try:
            job = batcher.submit(encodings)
        except QueueFullError as exc:
            self.metrics.rejected.inc(len(texts))
            raise ServiceUnavailable(f"server busy: {exc}", self.settings.retry_after_s) from None
        except ShuttingDownError as exc:
            raise ServiceUnavailable(str(exc), self.settings.retry_after_s) from None
        watcher = asyncio.ensure_future(_wait_for_disconnect(request))
        try:
            done, _ = await asyncio.wait({job.future, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if job.future not in done:  # the client left first
                batcher.cancel(job)
                raise ClientGone
            return job.future.result()
        finally:
            watcher.cancel()


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _error(status: int, message: str, detail: list | None = None, headers: dict | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> list[dict]:
    """Pydantic's errors without the offending input echoed back (it can be megabytes)."""
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]


def _validation_message(detail: list[dict], content_type: str | None) -> str:
    """One line naming the problem: the most specific error, with pydantic's union tags dropped."""
    if any(d["type"] == "json_invalid" for d in detail):
        return "the request body is not valid JSON"
    if content_type and "json" not in content_type.lower():
        return f"send the body as JSON with Content-Type: application/json (got {content_type})"
    if not detail:
        return "invalid request"
    best = max(detail, key=lambda d: len(d["loc"]))
    path = [str(p) for p in best["loc"] if p != "body" and not (isinstance(p, str) and ("[" in p or "-" in p))]
    return f"{'.'.join(path) or 'body'}: {best['msg']}"


def create_app(settings: ServerSettings | None = None) -> Any:
    settings = settings or ServerSettings.with_env_token()
    settings.check()
    metrics = ServerMetrics()
    service = InferenceService(settings, metrics)
    PredictRequest, EmbedRequest = request_models(settings)
    errors = {code: {"model": ErrorBody} for code in (400, 401, 413, 422, 503)}

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
    )
    app.state.service = service
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError):
        detail = _validation_detail(exc)
        return _error(422, _validation_message(detail, request.headers.get("content-type")), detail)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException):
        message = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in message:  # FastAPI's words for undecodable bytes
            message = "the request body could not be decoded as UTF-8 JSON"
        return _error(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(ServiceUnavailable)
    async def on_unavailable(request: Request, exc: ServiceUnavailable):
        return _error(503, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(ClientGone)
    async def on_gone(request: Request, exc: ClientGone):
        return _error(499, "client closed the request")  # nginx's convention; nobody reads it

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception):
        return _error(500, f"internal error ({type(exc).__name__})")

    @app.post("/predict", response_model=PredictResponse, responses=errors, summary="Classify texts")
    async def predict(body: PredictRequest, request: Request):  # type: ignore[valid-type]
        single, out = await service.infer_inputs(body.inputs, request)
        if out is None:
            return JSONResponse([])
        params = body.parameters
        return JSONResponse(classification_body(service.clf, out[0], single, params.top_k, params.function_to_apply))

    @app.post("/embed", response_model=EmbedResponse, responses=errors, summary="Sentence embeddings")
    async def embed(body: EmbedRequest, request: Request):  # type: ignore[valid-type]
        single, out = await service.infer_inputs(body.inputs, request)
        if out is None:
            return JSONResponse([])
        return JSONResponse(embedding_body(service.clf, out[1], single, body.parameters.normalize))

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: is the model loaded?", responses={503: {"model": ErrorBody}})
    async def readyz():
        if service.ready:
            clf = service.clf
            return {
                "status": "ready",
                "model": clf.manifest.directory.name,
                "variant": clf.variant.name,
                "labels": clf.labels,
            }
        if service.load_error:
            return _error(503, f"the model failed to load: {service.load_error}")
        return _error(503, "the model is still loading", headers={"Retry-After": "1"})

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus():
        return Response(metrics.render(), media_type=metrics.content_type)

    return Guard(app, max_body_bytes=settings.max_body_bytes, api_token=settings.api_token, metrics=metrics)


def _version() -> str:
    from .. import __version__

    return __version__
