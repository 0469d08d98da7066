"""The server under sustained mixed load, checked answer by answer, and its fairness.

    python benchmarks/serve_load.py [--model MODEL_DIR] [--name NAME] [--requests 10000] [--clients 64] [--quick]

- Load: --requests requests over --clients concurrent keep-alive connections to a real
  `emotion-onnx serve` on 127.0.0.1, half of one text and half of eight (seeded order; emotion
  test texts). Every answer is compared with `clf(texts, top_k=None)` offline: same labels in
  the same order, same scores (to 1e-6). Reported: errors, mismatches, request latency p50 and
  p99, and the server's peak resident memory (VmHWM).
- Fairness: one 256-text request of 512-token texts is sent, and 0.3 s later a one-text request;
  the one-text request's latency against its latency on an idle server (the server is started
  with a per-request token cap that admits the big request).
Results: benchmarks/results/serve_load[_NAME].{json,md,png}.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import numpy as np
from common import (
    RESULTS,
    RUNTIME_HOT_PATH,
    SERVING_CODE,
    arguments,
    markdown_table,
    model_or_default,
    on_machine,
    percentile,
    post_predict,
    pyplot,
    read_split,
    save_figure,
    start_server,
    write_results,
)

BIG_TEXTS, BIG_TOKENS = 256, 512


async def _client(port: int, requests: list[list[str]], cursor: list[int], out: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while cursor[0] < len(requests):
            i = cursor[0]
            cursor[0] += 1
            texts = requests[i]
            payload = {"inputs": texts[0] if len(texts) == 1 else texts, "parameters": {"top_k": None}}
            t0 = time.perf_counter()
            status, body = await post_predict(reader, writer, payload)
            out["latency"][i] = time.perf_counter() - t0
            out["status"][i] = status
            out["body"][i] = body
    finally:
        writer.close()


async def _load(port: int, requests: list[list[str]], clients: int) -> tuple[float, dict]:
    out = {"latency": [0.0] * len(requests), "status": [0] * len(requests), "body": [b""] * len(requests)}
    cursor = [0]
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(port, requests, cursor, out) for _ in range(clients)))
    return time.perf_counter() - t0, out


async def _one(port: int, text: str) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        t0 = time.perf_counter()
        status, _ = await post_predict(reader, writer, {"inputs": text})
        if status != 200:
            raise SystemExit(f"the one-text request got {status}")
        return time.perf_counter() - t0
    finally:
        writer.close()


async def _fairness(port: int, big: list[str], small: str) -> dict:
    async def big_request():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            t0 = time.perf_counter()
            status, _ = await post_predict(reader, writer, {"inputs": big})
            return status, time.perf_counter() - t0
        finally:
            writer.close()

    idle = sorted([await _one(port, small) for _ in range(20)])[10]
    task = asyncio.create_task(big_request())
    await asyncio.sleep(0.3)
    during = await _one(port, small)
    status, big_s = await task
    if status != 200:
        raise SystemExit(f"the big request got {status}")
    return {"idle_ms": 1000 * idle, "during_big_ms": 1000 * during, "big_request_s": big_s}


def expected(clf, requests: list[list[str]]) -> dict[str, list[dict]]:
    unique = sorted({t for r in requests for t in r})
    return dict(zip(unique, clf(unique, top_k=None)))


def check(requests, out, offline) -> tuple[int, int, float]:
    """(errors, mismatched answers, largest score difference)."""
    errors = mismatched = 0
    worst = 0.0
    for texts, status, body in zip(requests, out["status"], out["body"]):
        if status != 200:
            errors += 1
            continue
        answers = json.loads(body)
        if len(answers) != len(texts):
            mismatched += len(texts)
            continue
        for text, got in zip(texts, answers):
            want = offline[text]
            if [g["label"] for g in got] != [w["label"] for w in want]:
                mismatched += 1
                continue
            diff = max(abs(g["score"] - w["score"]) for g, w in zip(got, want))
            worst = max(worst, diff)
            mismatched += diff > 1e-6
    return errors, mismatched, worst


def peak_rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def long_text(tokenizer, texts: list[str], start: int) -> str:
    """Consecutive test texts joined until they exceed BIG_TOKENS tokens (the server truncates)."""
    parts, i = [], start
    while len(tokenizer.encode(" ".join(parts)).ids) <= BIG_TOKENS:
        parts.append(texts[i % len(texts)])
        i += 1
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, model="embedded", name="emotion-minilm-l6",
                  quick="400 requests, 16 clients, a small fairness probe")  # fmt: skip
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from tokenizers import Tokenizer

    from emotion_onnx import EmotionClassifier

    n_requests, clients = (400, 16) if args.quick else (args.requests, args.clients)
    texts, _ = read_split("test")
    rng = np.random.default_rng(args.seed)
    sizes = rng.permutation([1] * (n_requests // 2) + [8] * (n_requests - n_requests // 2))
    starts = np.cumsum([0, *sizes[:-1]])
    requests = [[texts[(s + k) % len(texts)] for k in range(n)] for s, n in zip(starts, sizes)]
    clf = EmotionClassifier(args.model)
    offline = expected(clf, requests)
    tokenizer = Tokenizer.from_file(str(clf.manifest.path(clf.manifest.tokenizer.ref)))
    tokenizer.no_truncation()
    big = [long_text(tokenizer, texts, 40 * i) for i in range(16 if args.quick else BIG_TEXTS)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cap = str(len(big) * BIG_TOKENS)
    server = start_server(args.model, port, ["--max-request-tokens", cap, "--max-queue-tokens", str(4 * int(cap))])
    try:
        asyncio.run(_load(port, requests[:200], clients))  # warm-up
        wall, out = asyncio.run(_load(port, requests, clients))
        fairness = asyncio.run(_fairness(port, big, "i feel fine"))
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=120)
    errors, mismatched, worst = check(requests, out, offline)
    latencies = out["latency"]
    n_texts = int(sizes.sum())
    data = {
        "model": args.name,
        "requests": n_requests,
        "texts": n_texts,
        "clients": clients,
        "errors": errors,
        "mismatched_answers": mismatched,
        "max_score_diff_vs_offline": worst,
        "wall_s": wall,
        "requests_per_s": n_requests / wall,
        "texts_per_s": n_texts / wall,
        "latency_ms_p50": 1000 * percentile(latencies, 50),
        "latency_ms_p99": 1000 * percentile(latencies, 99),
        "latency_ms_p50_by_size": {
            str(k): 1000 * percentile([t for t, n in zip(latencies, sizes) if n == k], 50) for k in (1, 8)
        },
        "server_peak_rss_mb": rss,
        "fairness": {**fairness, "big_texts": len(big), "big_tokens_each": BIG_TOKENS},
    }
    md = markdown(data, f"python benchmarks/serve_load.py{' --model ' + str(args.model) if args.model else ''}")
    stem = "serve_load" + (f"_{args.name}" if args.name else "")
    write_results(stem, data, md, models=[model_or_default(args.model)], code=[*RUNTIME_HOT_PATH, *SERVING_CODE])
    _plot(latencies, sizes, data, RESULTS / f"{stem}.png")
    print(md)
    return 0 if errors == mismatched == 0 else 1


def markdown(data: dict, command: str) -> str:
    """The load table and the fairness probe, with the machine they ran on."""
    f, by_size = data["fairness"], data["latency_ms_p50_by_size"]
    row = (data["errors"], f"{data['mismatched_answers']} (largest score difference "
           f"{data['max_score_diff_vs_offline']:.1e})", f"{data['requests_per_s']:.0f}", f"{data['texts_per_s']:.0f}",
           f"{data['latency_ms_p50']:.1f}", f"{data['latency_ms_p99']:.1f}", f"{by_size['1']:.1f} / {by_size['8']:.1f}",
           f"{data['server_peak_rss_mb']:.0f}")  # fmt: skip
    header = ("errors", "answers unequal to offline", "requests/s", "texts/s", "p50 ms", "p99 ms",
              "p50 ms, 1 / 8 texts", "server peak RSS MB")  # fmt: skip
    return (
        f"`emotion-onnx serve` (model `{data['model']}`) under {data['requests']:,} requests from {data['clients']} "
        f"concurrent keep-alive clients, half of 1 text and half of 8 ({data['texts']:,} texts; on {on_machine()}; "
        f"`{command}`):\n\n" + "\n".join(markdown_table(header, [row])) + "\n\n"
        f"Fairness: a one-text request sent 0.3 s after a {f['big_texts']}-text request of "
        f"{f['big_tokens_each']}-token texts took **{f['during_big_ms']:.0f} ms** (on an idle server: "
        f"{f['idle_ms']:.1f} ms), while the big request took {f['big_request_s']:.1f} s.\n"
    )


def _plot(latencies, sizes, data: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for k, colour in ((1, "#2a7"), (8, "#27a")):
        ax.hist([1000 * t for t, n in zip(latencies, sizes) if n == k], bins=60, alpha=0.6, color=colour,
                label=f"{k}-text requests")  # fmt: skip
    ax.axvline(data["latency_ms_p99"], color="r", ls="--", label=f"p99 {data['latency_ms_p99']:.0f} ms")
    ax.set_xlabel(f"request latency, ms ({data['clients']} clients, {data['requests']:,} requests)")
    ax.legend()
    save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
