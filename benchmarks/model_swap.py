"""Does a new embedded model keep the old one's speed? Both models side by side, interleaved, on the
emotion test texts and on GoEmotions dev (Reddit comments, longer), as a user calls them.

    python benchmarks/model_swap.py --before OLD_MODEL_DIR [--after NEW_MODEL_DIR] [--repeats 7]

--after defaults to the embedded model. For each model and text set: texts/s of one
`predict_proba` call over every text (median of the rounds), and the one-text latency p50 of
`clf(text)` over a block of texts taken in each round. Results go to
benchmarks/results/model_swap.{json,md}, with the machine, the commit and both models' hashes.
"""

from __future__ import annotations

import time
from pathlib import Path

from common import RUNTIME_HOT_PATH, arguments, interleaved, median, percentile, write_results

SINGLE_TEXTS = 200  # one-text calls per round


def _model_hash(clf) -> str:
    return clf.variant.ref.sha256[:16]


def _one_text_ms(clf, texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        t0 = time.perf_counter()
        clf(text)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def measure(models: dict, sets: dict[str, list[str]], repeats: int) -> dict:
    systems = {f"{m}|{s}": (lambda c=clf, t=texts: c.predict_proba(t)) for m, clf in models.items()
               for s, texts in sets.items()}  # fmt: skip
    for fn in systems.values():
        fn()  # warm-up
    singles = {key: [] for key in systems}
    batch = {key: [] for key in systems}
    for _ in range(repeats):
        for key, seconds in interleaved(systems, 1).items():
            batch[key] += seconds
        for key in systems:
            model, set_name = key.split("|")
            singles[key] += _one_text_ms(models[model], sets[set_name][:SINGLE_TEXTS])
    return {
        key: {
            "texts_per_s": len(sets[key.split("|")[1]]) / median(batch[key]),
            "one_text_p50_ms": percentile(singles[key], 50),
            "one_text_p90_ms": percentile(singles[key], 90),
        }
        for key in systems
    }


def markdown(data: dict) -> str:
    m = data["machine"]
    lines = [
        f"2 cores of an {m.get('cpu', 'unknown CPU')} ({data['date']}, `python benchmarks/model_swap.py`), "
        f"median of {data['repeats']} interleaved rounds.",
        "",
        "| texts | model | texts/s | one text p50 / p90 |",
        "|---|---|---|---|",
    ]
    for key, r in data["results"].items():
        model, set_name = key.split("|")
        lines.append(
            f"| {set_name} ({data['set_sizes'][set_name]} texts, mean {data['mean_tokens'][set_name]:.0f} tokens) | "
            f"{model} (`{data['models'][model]}`) | {r['texts_per_s']:.0f} | "
            f"{r['one_text_p50_ms']:.2f} / {r['one_text_p90_ms']:.2f} ms |"
        )
    for set_name in data["set_sizes"]:
        after, before = data["results"][f"after|{set_name}"], data["results"][f"before|{set_name}"]
        lines.append(f"\n{set_name}: after / before = {after['texts_per_s'] / before['texts_per_s']:.2f}× texts/s.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, repeats=7)
    p.add_argument("--before", type=Path, required=True)
    p.add_argument("--after", type=Path)
    args = p.parse_args(argv)
    from emotion_onnx import EmotionClassifier, default_model_dir
    from emotion_onnx_export.evaluation import evaluation_sets

    after = args.after or default_model_dir()
    models = {"before": EmotionClassifier(args.before), "after": EmotionClassifier(after)}
    sets = {name: evaluation_sets()[name].texts for name in ("emotion-test", "goemotions-dev")}
    results = measure(models, sets, args.repeats)
    encoder = models["after"].encoder
    data = {
        "models": {name: _model_hash(clf) for name, clf in models.items()},
        "repeats": args.repeats,
        "set_sizes": {name: len(texts) for name, texts in sets.items()},
        "mean_tokens": {name: sum(len(e.ids) for e in encoder.encode(t)) / len(t) for name, t in sets.items()},
        "results": results,
    }
    from common import git_revision, machine

    md = markdown({**data, "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "git": git_revision()})
    write_results("model_swap", data, md, models=[args.before, after], code=RUNTIME_HOT_PATH)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
