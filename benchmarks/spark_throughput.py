"""Spark overhead: rows/s through `classify_dataframe` in local[2] against the runtime used
directly on the same 2 cores.

    python benchmarks/spark_throughput.py [--model MODEL_DIR] [--copies 10] [--quick]

Rows: the emotion test split repeated --copies times. Results go to
benchmarks/results/spark_throughput.{json,md,png}.
"""

from __future__ import annotations

import time

from common import RESULTS, RUNTIME_HOT_PATH, arguments, median, model_or_default, on_machine, read_split, write_results


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, model="embedded", repeats=3, quick="200 texts once (CI smoke run)")
    p.add_argument("--copies", type=int, default=10)
    args = p.parse_args(argv)
    model = str(args.model) if args.model else None  # what Spark ships to its workers
    from pyspark.sql import SparkSession

    from emotion_onnx import EmotionClassifier
    from emotion_onnx.spark import classify_dataframe

    texts, _ = read_split("test", 200 if args.quick else None)
    copies = 1 if args.quick else args.copies
    rows = [(i, t) for i, t in enumerate(texts * copies)]
    repeats = 1 if args.quick else args.repeats
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "2000")
        .getOrCreate()
    )
    try:
        df = spark.createDataFrame(rows, "id long, text string").repartition(2).cache()
        df.count()
        classify_dataframe(df, model=model).write.format("noop").mode("overwrite").save()  # warm workers
        spark_s = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            classify_dataframe(df, model=model).write.format("noop").mode("overwrite").save()
            spark_s.append(time.perf_counter() - t0)
    finally:
        spark.stop()
    clf = EmotionClassifier(args.model)  # both cores, one process
    all_texts = [t for _, t in rows]
    clf.predict_proba(all_texts[:500])
    direct_s = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        clf.predict_proba(all_texts)
        direct_s.append(time.perf_counter() - t0)
    spark_rps, direct_rps = len(rows) / median(spark_s), len(rows) / median(direct_s)
    data = {
        "model": str(args.model) if args.model else "embedded default",
        "rows": len(rows),
        "spark_local2_rows_per_s": spark_rps,
        "direct_rows_per_s": direct_rps,
        "spark_over_direct": spark_rps / direct_rps,
        "per_core_rows_per_s_spark": spark_rps / 2,
        "seconds": {"spark": spark_s, "direct": direct_s},
    }
    md = (
        f"Spark `local[2]` vs the runtime used directly, {len(rows)} rows (emotion test split × {copies}), "
        f"median of {repeats} runs on {on_machine()}, model `{data['model']}`.\n\n"
        "| path | rows/s | per core |\n|---|---|---|\n"
        f"| `classify_dataframe` in Spark local[2] (2 tasks × 1 thread) | {spark_rps:.0f} | {spark_rps / 2:.0f} |\n"
        f"| `EmotionClassifier.predict_proba` directly (1 process × 2 threads) | {direct_rps:.0f} | "
        f"{direct_rps / 2:.0f} |\n\nSpark reaches {spark_rps / direct_rps:.0%} of the direct runtime.\n"
    )
    code = [*RUNTIME_HOT_PATH, "runtime/emotion_onnx/spark.py", "runtime/emotion_onnx/records.py"]
    write_results("spark_throughput", data, md, models=[model_or_default(args.model)], code=code)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(["Spark local[2]", "direct runtime"], [spark_rps, direct_rps], color=["tab:orange", "tab:blue"])
    ax.set_xlabel("rows/s on 2 cores")
    fig.tight_layout()
    fig.savefig(RESULTS / "spark_throughput.png", dpi=110)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
