"""The `emotion-onnx` command: classify (runtime) and export (needs the export extra).

Bad input gives one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from .errors import EmotionOnnxError, InputError

EXIT_USAGE = 2


def _add_classify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="classify texts (arguments, stdin, .txt, .jsonl or .csv) into JSONL or CSV",
        description="Classify texts. With no TEXT and no --input, reads one text per line from stdin. "
        "Every input record gives exactly one output record, in order, with its 0-based index. "
        "An empty line/string is classified like any text; a JSON null gives label and score null.",
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("-i", "--input", help="input file: .txt (one per line), .jsonl or .csv; '-' for stdin")
    p.add_argument("--field", default="text", help="JSONL field holding the text (default: text)")
    p.add_argument("--column", default="text", help="CSV column holding the text (default: text)")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument("--format", choices=("jsonl", "csv"), help="output format (default: from --output, else jsonl)")
    p.add_argument("--model", help="model directory (default: the embedded model)")
    p.add_argument("--variant", help="model variant from the manifest (default: the manifest's default)")
    p.add_argument("--top-k", type=int, default=1, help="also list the top K labels per text")
    p.add_argument("--probabilities", action="store_true", help="add every label's probability")
    p.add_argument("--embed", action="store_true", help="add the L2-normalised embedding")
    p.add_argument("--uncalibrated", action="store_true", help="plain softmax instead of the fitted temperature")
    p.add_argument("--long-text", choices=("truncate", "window"), default="truncate")
    p.add_argument("--stride", type=int, default=128, help="tokens shared by neighbouring windows")
    p.add_argument("--errors", choices=("strict", "replace"), default="strict", help="invalid UTF-8 handling")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: usable CPUs)")
    p.add_argument("--chunk-size", type=int, default=1024, help="texts held in memory at once")
    p.set_defaults(func=_run_classify)


def _run_classify(args: argparse.Namespace) -> int:
    from .classifier import EmotionClassifier
    from .progress import Progress
    from .textio import RecordWriter, chunked, iter_texts, open_input, stdin_binary

    if args.texts and args.input:
        raise InputError("give texts as arguments or --input, not both")
    if args.top_k < 1:
        raise InputError("--top-k must be at least 1")
    if args.chunk_size < 1:
        raise InputError("--chunk-size must be at least 1")
    clf = EmotionClassifier(
        args.model, variant=args.variant, long_text=args.long_text, stride=args.stride, intra_op_threads=args.threads
    )
    if args.texts:
        raw, name, fmt, items = None, "<args>", "args", iter(args.texts)
    else:
        raw, name, fmt = open_input(args.input or "-", stdin_binary(sys.stdin))
        items = iter_texts(raw, name, fmt, args.errors, args.field, args.column)
    out_fmt = args.format or ("csv" if args.output and args.output.lower().endswith(".csv") else "jsonl")
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    progress = Progress("classify")
    try:
        writer = RecordWriter(out, out_fmt, clf.labels, args.probabilities, args.embed)
        index = 0
        for chunk in chunked(items, args.chunk_size):
            texts = [t for t in chunk if t is not None]
            results = iter(
                clf.stream(
                    texts,
                    chunk_size=max(1, len(texts)),
                    top_k=args.top_k,
                    calibrated=not args.uncalibrated,
                    return_probabilities=args.probabilities,
                    return_embedding=args.embed,
                )
            )
            for text in chunk:
                if text is None:
                    record = {"index": index, "label": None, "score": None}
                else:
                    record = {"index": index, **next(results)}
                writer.write(record)
                index += 1
            progress.update(len(chunk))
        out.flush()
    finally:
        progress.close()
        if args.output:
            out.close()
        if raw is not None and raw is not sys.stdin.buffer:
            raw.close()
    return 0


def _needs_export_extra(command: str, run):
    """Wrap a build-time command so that a runtime-only install explains what is missing."""

    def guarded(args: argparse.Namespace) -> int:
        missing = [m for m in ("torch", "transformers", "optimum.exporters", "onnx") if not _has_module(m)]
        if missing:
            raise InputError(
                f"`emotion-onnx {command}` needs the export extra (missing: {', '.join(missing)}); "
                "install it with: pip install 'emotion-onnx[export]'"
            )
        return run(args)

    return guarded


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _run_spark(argv: list[str]) -> int:
    if not _has_module("pyspark"):
        raise InputError("`emotion-onnx spark-classify` needs the spark extra: pip install 'emotion-onnx[spark]'")
    from .spark import main as spark_main

    return spark_main(argv)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .export import cli as export_cli
    from .export import finetune_cli

    parser = argparse.ArgumentParser(prog="emotion-onnx", description="Fast, torch-free emotion classification.")
    parser.add_argument("--version", action="version", version=f"emotion-onnx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_classify(sub)
    spark = sub.add_parser(
        "spark-classify",
        add_help=False,
        help="classify a Parquet/CSV dataset into Parquet on Spark (spark extra; --help for options)",
    )
    spark.add_argument("args", nargs=argparse.REMAINDER)
    spark.set_defaults(func=lambda args: _run_spark(args.args))
    from . import lambda_bundle
    from .serving import cli as serve_cli

    serve_cli.add_parser(sub)
    sub.choices["serve"].set_defaults(func=serve_cli.run)
    lambda_bundle.add_parser(sub)
    for command, module in (("export", export_cli), ("finetune", finetune_cli)):
        module.add_parser(sub)
        sub.choices[command].set_defaults(func=_needs_export_extra(command, module.run))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        if argv[:1] == ["spark-classify"]:  # its own parser, options included
            return _run_spark(argv[1:])
        args = parser.parse_args(argv)
        return args.func(args)
    except EmotionOnnxError as exc:
        print(f"emotion-onnx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (TypeError, ValueError) as exc:  # argument values the library rejected
        print(f"emotion-onnx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("emotion-onnx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
