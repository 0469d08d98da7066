"""HTTP server under concurrent single-text clients, against offline batch throughput.

    python benchmarks/serve_throughput.py --model MODEL_DIR [--name NAME] [--clients 64] [--rounds 2] [--quick]

The emotion test split (2000 real texts) is classified
- offline: `clf(texts)` in this process (token-budget batches, the library's best case);
- over HTTP: a real `emotion-onnx serve` process on 127.0.0.1, with `--clients` concurrent
  keep-alive connections, each sending one text per request (asyncio client, raw HTTP/1.1,
  so the load generator stays light on these 2 cores).
The two alternate for `--rounds` rounds; figures are medians. The server's own micro-batch
sizes come from its /metrics. Results: benchmarks/results/serve_throughput[_NAME].{json,md,png}.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from pathlib import Path

from common import (
    RESULTS,
    RUNTIME_HOT_PATH,
    SERVING_CODE,
    arguments,
    median,
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


async def _client(port: int, texts: list[str], cursor: list[int], latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while cursor[0] < len(texts):
            text = texts[cursor[0]]
            cursor[0] += 1
            t0 = time.perf_counter()
            status, _ = await post_predict(reader, writer, {"inputs": text, "parameters": {"top_k": 1}})
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _load(port: int, texts: list[str], clients: int) -> tuple[float, list[float], list[int]]:
    cursor, latencies, errors = [0], [], []
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(port, texts, cursor, latencies, errors) for _ in range(clients)))
    return time.perf_counter() - t0, latencies, errors


def _metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith(("emotion_onnx_batch_texts_sum", "emotion_onnx_batch_texts_count")):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, model="embedded", name="emotion-minilm-l6", quick="200 texts, 1 round (harness check only)")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--port", type=int, default=0, help="0: any free port")
    p.add_argument("--server-arg", action="append", default=[], help="extra `emotion-onnx serve` option")
    args = p.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    from emotion_onnx import EmotionClassifier

    if args.port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
    texts, _ = read_split("test", 200 if args.quick else None)
    rounds = 1 if args.quick else args.rounds
    clf = EmotionClassifier(args.model)
    clf(texts[:100])
    offline, served, lat_all, batch_means, errors = [], [], [], [], []
    server = start_server(args.model, args.port, args.server_arg)
    try:
        asyncio.run(_load(args.port, texts[:200], args.clients))  # warm-up
        for _ in range(rounds):
            t0 = time.perf_counter()
            clf(texts)
            offline.append(len(texts) / (time.perf_counter() - t0))
            before = _metrics(args.port)
            wall, latencies, errs = asyncio.run(_load(args.port, texts, args.clients))
            after = _metrics(args.port)
            served.append(len(texts) / wall)
            lat_all.extend(latencies)
            errors.extend(errs)
            calls = after["emotion_onnx_batch_texts_count"] - before["emotion_onnx_batch_texts_count"]
            batch_means.append((after["emotion_onnx_batch_texts_sum"] - before["emotion_onnx_batch_texts_sum"]) / calls)
    finally:
        server.terminate()
        server.wait(timeout=60)

    ratio = median(served) / median(offline)
    data = {
        "model": args.name,
        "texts": len(texts),
        "clients": args.clients,
        "rounds": rounds,
        "offline_texts_per_s": offline,
        "served_requests_per_s": served,
        "served_over_offline": ratio,
        "latency_ms_p50": 1000 * percentile(lat_all, 50),
        "latency_ms_p99": 1000 * percentile(lat_all, 99),
        "mean_micro_batch_texts": batch_means,
        "errors": len(errors),
        "goal_served_over_offline": 0.70,
        "goal_met": ratio >= 0.70,
    }
    md = (
        f"HTTP server, {args.clients} concurrent single-text clients, {len(texts)} emotion test texts, "
        f"model `{args.name}`, median of {rounds} rounds on {on_machine()} (`python benchmarks/serve_throughput.py"
        f"{' --model ' + str(args.model) if args.model else ''} --name {args.name}`):\n\n"
        "| | texts/s | p50 ms | p99 ms |\n|---|---|---|---|\n"
        f"| offline `clf(texts)`, same model and threads | {median(offline):.1f} | | |\n"
        f"| `emotion-onnx serve`, {args.clients} clients × 1 text/request | {median(served):.1f} | "
        f"{data['latency_ms_p50']:.1f} | {data['latency_ms_p99']:.1f} |\n\n"
        f"Served / offline: **{ratio:.0%}** (goal ≥ 70 %: {'met' if data['goal_met'] else 'MISSED'}); "
        f"mean micro-batch {median(batch_means):.1f} texts; {len(errors)} errors.\n"
    )
    stem = "serve_throughput" + (f"_{args.name}" if args.name else "")
    write_results(stem, data, md, models=[model_or_default(args.model)],
                  code=[*RUNTIME_HOT_PATH, *SERVING_CODE])  # fmt: skip
    _plot(lat_all, data, RESULTS / f"{stem}.png")
    print(md)
    return 0


def _plot(latencies: list[float], data: dict, path: Path) -> None:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.bar(["offline", "served"], [median(data["offline_texts_per_s"]), median(data["served_requests_per_s"])],
            color=["#888", "#2a7"])  # fmt: skip
    ax1.set_ylabel("texts / s")
    ax1.set_title(f"{data['model']}: throughput ({data['served_over_offline']:.0%} of offline)")
    ax2.hist([1000 * x for x in latencies], bins=60, color="#2a7")
    ax2.axvline(data["latency_ms_p50"], color="k", ls="--", label=f"p50 {data['latency_ms_p50']:.1f} ms")
    ax2.axvline(data["latency_ms_p99"], color="r", ls="--", label=f"p99 {data['latency_ms_p99']:.1f} ms")
    ax2.set_xlabel(f"request latency, ms ({data['clients']} clients)")
    ax2.legend()
    save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
