"""Distributed classification on Apache Spark (the `spark` extra: pyspark, pandas, pyarrow).

    from emotion_onnx.spark import classify_dataframe
    out = classify_dataframe(df, "review", probabilities=True)

The DataFrame goes through `mapInPandas` (Arrow batches). Each Python worker process loads
the classifier once and reuses it for every batch and task it runs; onnxruntime's intra-op
threads follow `spark.task.cpus`, so a worker never uses more cores than its task holds.
The model is a path on a filesystem every executor sees, a file name shipped with
`spark.sparkContext.addFile(dir, recursive=True)` (resolved through SparkFiles), or, by
default, the model embedded in the package. Null texts give null outputs; every input row
gives exactly one output row.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

_CLASSIFIERS: dict[tuple, Any] = {}  # per Python worker process: loaded once, reused across tasks

DEFAULT_COLUMNS = {"label": "label", "score": "score", "probabilities": "probabilities", "embedding": "embedding"}


def _resolve_model(model: str | None) -> str | None:
    """A path that exists here, else a name shipped through SparkContext.addFile."""
    if model is None or os.path.exists(model):
        return model
    from pyspark import SparkFiles

    shipped = SparkFiles.get(model)
    if not os.path.exists(shipped):
        raise FileNotFoundError(f"model {model!r} is neither a path on this executor nor a file shipped with addFile")
    return shipped


def worker_classifier(model: str | None, threads: int, variant: str | None, max_batch_tokens: int | None):
    """The classifier of this worker process, created on first use."""
    key = (model, threads, variant, max_batch_tokens)
    if key not in _CLASSIFIERS:
        from .classifier import EmotionClassifier

        _CLASSIFIERS[key] = EmotionClassifier(
            _resolve_model(model), variant=variant, intra_op_threads=threads, max_batch_tokens=max_batch_tokens
        )
    return _CLASSIFIERS[key]


def output_schema(df, labels: list[str], embedding_dim: int | None, columns: dict[str, str], probabilities: str):
    from pyspark.sql import types as T

    fields = list(df.schema.fields) + [
        T.StructField(columns["label"], T.StringType(), True),
        T.StructField(columns["score"], T.DoubleType(), True),
    ]
    if probabilities == "map":
        fields.append(T.StructField(columns["probabilities"], T.MapType(T.StringType(), T.DoubleType()), True))
    elif probabilities == "struct":
        struct = T.StructType([T.StructField(label, T.DoubleType(), True) for label in labels])
        fields.append(T.StructField(columns["probabilities"], struct, True))
    if embedding_dim is not None:
        fields.append(T.StructField(columns["embedding"], T.ArrayType(T.FloatType()), True))
    return T.StructType(fields)


def _classify_batches(
    batches: Iterator[Any],
    *,
    text_col: str,
    model: str | None,
    threads: int,
    variant: str | None,
    max_batch_tokens: int | None,
    columns: dict[str, str],
    probabilities: str,
    embedding: bool,
    calibrated: bool,
    neutral: bool = False,
) -> Iterator[Any]:
    import numpy as np

    clf = worker_classifier(model, threads, variant, max_batch_tokens)
    for pdf in batches:
        texts = [None if t is None or t != t else str(t) for t in pdf[text_col].tolist()]  # NaN is null too
        records = list(
            clf.stream(
                texts,
                chunk_size=max(1, len(texts)),
                calibrated=calibrated,
                return_probabilities=probabilities != "none",
                return_embedding=embedding,
                allow_none=True,
                neutral=neutral,
            )
        )
        out = pdf.copy()
        out[columns["label"]] = [r["label"] for r in records]
        out[columns["score"]] = np.array([np.nan if r["score"] is None else r["score"] for r in records])
        out.loc[[r["score"] is None for r in records], columns["score"]] = None
        if probabilities != "none":
            out[columns["probabilities"]] = [r["probabilities"] for r in records]
        if embedding:
            out[columns["embedding"]] = [
                None if r["embedding"] is None else np.asarray(r["embedding"], dtype=np.float32) for r in records
            ]
        yield out


def task_cpus(spark) -> int:
    return int(spark.sparkContext.getConf().get("spark.task.cpus", "1"))


def classify_dataframe(
    df,
    text_col: str = "text",
    *,
    model: str | None = None,
    variant: str | None = None,
    probabilities: str | bool = False,
    embedding: bool = False,
    calibrated: bool = True,
    threads: int | None = None,
    max_batch_tokens: int | None = None,
    columns: dict[str, str] | None = None,
    neutral: bool = False,
):
    """Return `df` with label and score columns added (and optionally probabilities, embedding).

    probabilities: False, True/"map" (map<string,double>) or "struct" (one double per label).
    threads: onnxruntime intra-op threads per task; default `spark.task.cpus`.
    neutral: True ranks the model's neutral label beside the others (a model without one: ValueError).
    """
    from .classifier import default_model_dir
    from .manifest import load as load_manifest

    if text_col not in df.columns:
        raise ValueError(f"DataFrame has no column {text_col!r} (columns: {', '.join(df.columns)})")
    mode = {False: "none", True: "map", "map": "map", "struct": "struct", "none": "none"}.get(probabilities)
    if mode is None:
        raise ValueError(f"probabilities must be False, True, 'map' or 'struct', got {probabilities!r}")
    names = {**DEFAULT_COLUMNS, **(columns or {})}
    clash = [
        c
        for key, c in names.items()
        if c in df.columns
        and (
            key in ("label", "score")
            or (key == "probabilities" and mode != "none")
            or (key == "embedding" and embedding)
        )
    ]
    if clash:
        raise ValueError(f"output column(s) {', '.join(clash)} already exist; pass columns={{...}} to rename")
    # the driver reads the manifest (labels, embedding size) without loading the model
    manifest = load_manifest(_resolve_model(model) or default_model_dir())
    dim = manifest.embedding_dim if embedding else None
    schema = output_schema(df, manifest.answer_labels(neutral), dim, names, mode)
    threads = threads or task_cpus(df.sparkSession)

    def run(batches):
        return _classify_batches(
            batches,
            text_col=text_col,
            model=model,
            threads=threads,
            variant=variant,
            max_batch_tokens=max_batch_tokens,
            columns=names,
            probabilities=mode,
            embedding=embedding,
            calibrated=calibrated,
            neutral=neutral,
        )

    return df.mapInPandas(run, schema)


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _check_paths(args) -> None:
    """One-line errors for what Spark would answer with a stack trace."""
    from pathlib import Path

    from .errors import InputError

    if _is_local(args.input) and not Path(args.input.removeprefix("file://")).exists():
        raise InputError(f"input {args.input} does not exist")
    out = Path(args.output.removeprefix("file://"))
    if _is_local(args.output) and args.mode == "errorifexists" and out.exists():
        raise InputError(f"output {args.output} already exists; remove it or pass --mode overwrite")


def read_input(spark, path: str, text_col: str = "text"):
    """A Parquet file or directory, or a CSV file with a header. CSV keeps what the file says: column
    types are inferred (an id of digits stays a number) and an empty text field is the empty string,
    classified like any text, as Parquet's empty strings are (Spark reads an empty CSV field as null,
    but a CSV file has no null)."""
    if not path.lower().endswith(".csv"):
        return spark.read.parquet(path)
    df = spark.read.option("header", True).option("multiLine", True).option("escape", '"')
    df = df.option("inferSchema", True).csv(path)
    if text_col in df.columns:
        from pyspark.sql import functions as F

        df = df.withColumn(text_col, F.coalesce(F.col(text_col).cast("string"), F.lit("")))
    return df


def main(argv: list[str] | None = None) -> int:
    """`emotion-onnx spark-classify`: Parquet/CSV in, Parquet out, on any Spark master."""
    import argparse
    import sys

    from .errors import InputError

    p = argparse.ArgumentParser(prog="emotion-onnx spark-classify", description=main.__doc__)
    p.add_argument("--input", required=True, help="Parquet file/directory or .csv")
    p.add_argument("--output", required=True, help="Parquet directory to write")
    p.add_argument("--text-column", default="text")
    p.add_argument("--model", help="model directory (default: the embedded model)")
    p.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    p.add_argument("--partitions", type=int, help="repartition the input first")
    p.add_argument("--probabilities", choices=("none", "map", "struct"), default="none")
    p.add_argument("--embedding", action="store_true")
    p.add_argument("--neutral", action="store_true", help="rank the model's neutral label beside the others")
    p.add_argument("--mode", default="errorifexists", choices=("errorifexists", "overwrite"))
    args = p.parse_args(argv)
    _check_paths(args)

    from pyspark.errors import AnalysisException
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    builder = SparkSession.builder.appName("emotion-onnx")
    if args.master:
        builder = builder.master(args.master)
    if not os.environ.get("PYSPARK_PYTHON"):
        # workers would otherwise start the system python3, which need not have this package
        os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = builder.getOrCreate()
    try:
        df = read_input(spark, args.input, args.text_column)
        if args.partitions:
            df = df.repartition(args.partitions)
        out = classify_dataframe(
            df,
            args.text_column,
            model=args.model,
            probabilities=args.probabilities,
            embedding=args.embedding,
            neutral=args.neutral,
        )
        out.write.mode(args.mode).parquet(args.output)
    except AnalysisException as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"Spark refused the job: {first[:300]}") from None
    finally:
        if existing is None:  # only stop a session this command started
            spark.stop()
    return 0
