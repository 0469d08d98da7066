"""The `emotion-onnx` command.

Runtime commands: classify, serve (serve extra), spark-classify (spark extra). Build-time
commands (export, finetune, lambda-bundle) live in the emotion_onnx_export package and are
imported only when run, after checking that their extra is installed.

Bad input gives one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections import deque

from .errors import EmotionOnnxError, InputError

EXIT_USAGE = 2
MODEL_NOTE = (
    "The embedded model answers six labels (sadness, joy, love, anger, fear, surprise) by default, so a text "
    "with no emotion still gets one of them; --neutral adds a seventh answer, neutral. It reads English only. "
    "Scores are calibrated probabilities by default (--uncalibrated for plain softmax)."
)
# command -> (help, modules its extra provides, extra)
BUILD_COMMANDS = {
    "export": (
        "export a checkpoint to validated fp32/fused/int8 ONNX with a manifest (export extra)",
        ("torch", "transformers", "optimum.exporters", "onnx"),
        "export",
    ),
    "finetune": (
        "fine-tune a classifier on JSONL/CSV data (any label set), optionally export it (export extra)",
        ("torch", "transformers", "onnx"),
        "export",
    ),
    "lambda-bundle": ("build a deployable AWS Lambda zip and a SAM template.yaml beside it", (), None),
}


def _add_classify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="classify texts (arguments, stdin, .txt, .jsonl or .csv) into JSONL or CSV",
        description="Classify texts. With no TEXT and no --input, reads one text per line from stdin. "
        "Every input record gives exactly one output record, in order, with its 0-based index; at a bad "
        "input record every record before it is written, then the command stops with exit code 2. "
        "An empty line/string is classified like any text; a JSON null gives label and score null. " + MODEL_NOTE,
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("-i", "--input", help="input file: .txt (one per line), .jsonl or .csv; '-' for stdin")
    p.add_argument("--field", help="JSONL field holding the text (default: text; needs -i)")
    p.add_argument("--column", help="CSV column holding the text (default: text; needs -i)")
    p.add_argument(
        "--keep",
        nargs="+",
        metavar="FIELD",
        default=[],
        help="input fields (JSONL) or columns (CSV) to copy into each output record, e.g. an id",
    )
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument("--format", choices=("jsonl", "csv"), help="output format (default: from --output, else jsonl)")
    p.add_argument("--model", help="model directory (default: the embedded model)")
    p.add_argument("--variant", help="model variant from the manifest (default: the manifest's default)")
    p.add_argument("--top-k", type=int, default=1, help="also list the top K labels per text")
    p.add_argument("--probabilities", action="store_true", help="add every label's probability")
    p.add_argument("--embed", action="store_true", help="add the L2-normalised embedding")
    p.add_argument("--uncalibrated", action="store_true", help="plain softmax instead of the calibrated probabilities")
    p.add_argument(
        "--neutral", action="store_true", help="rank the model's neutral label beside the others (a neutral model)"
    )
    p.add_argument("--long-text", choices=("truncate", "window"), default="truncate")
    p.add_argument("--stride", type=int, default=128, help="tokens shared by neighbouring windows")
    p.add_argument("--errors", choices=("strict", "replace"), default="strict", help="invalid UTF-8 handling")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: usable CPUs)")
    p.add_argument("--chunk-size", type=int, default=1024, help="texts held in memory at once")
    p.set_defaults(func=_run_classify)


def _run_classify(args: argparse.Namespace) -> int:
    from .textio import check_keep, open_output, stdin_binary

    if args.texts and args.input:
        raise InputError("give texts as arguments or --input, not both")
    if (args.field or args.column or args.keep) and not args.input:
        flag = "--field" if args.field else "--column" if args.column else "--keep"
        raise InputError(f"{flag} names a field of an input file: pass the file with -i FILE")
    if args.top_k < 1:
        raise InputError("--top-k must be at least 1")
    if args.chunk_size < 1:
        raise InputError("--chunk-size must be at least 1")
    check_keep(args.keep)
    out_fmt = args.format or ("csv" if args.output and args.output.lower().endswith(".csv") else "jsonl")
    stdin = None if args.texts or args.input not in (None, "-") else stdin_binary(sys.stdin)
    # refused before the model loads and before anything is opened for writing: a bad path, or the input
    out = open_output(args.output, args.input, stdin)
    try:
        _classify_into(out, out_fmt, args)
    except InputError:  # a bad record: every record before it is kept, as documented
        out.commit()
        raise
    except BaseException:  # anything else (a crash, ^C, a full disk): the previous file stays
        out.discard()
        raise
    out.commit()
    return 0


def _classify_into(out, out_fmt: str, args: argparse.Namespace) -> None:
    from .classifier import EmotionClassifier
    from .textio import RecordWriter, open_input, read_records, stdin_binary

    raw = None
    try:
        clf = EmotionClassifier(
            args.model, variant=args.variant, long_text=args.long_text, stride=args.stride,
            intra_op_threads=args.threads,
        )  # fmt: skip
        if args.texts:
            rows = ((text, {}) for text in args.texts)
        else:
            raw, name, fmt = open_input(args.input or "-", stdin_binary(sys.stdin))
            rows = read_records(raw, name, fmt, args.errors, args.field or "text", args.column or "text", args.keep)
        labels = clf.answer_labels(args.neutral)
        writer = RecordWriter(out, out_fmt, labels, args.top_k, args.probabilities, args.embed, args.keep)
        kept: deque[dict] = deque()  # fields to copy, read ahead of their records by at most a chunk

        def texts():
            for text, extra in rows:
                kept.append(extra)
                yield text

        records = clf.stream(
            texts(),
            chunk_size=args.chunk_size,
            top_k=args.top_k,
            calibrated=not args.uncalibrated,
            return_probabilities=args.probabilities,
            return_embedding=args.embed,
            allow_none=True,
            neutral=args.neutral,
        )
        from tqdm import tqdm

        with tqdm(desc="classify", unit=" texts", disable=not sys.stderr.isatty(), leave=False) as bar:
            for index, record in enumerate(records):
                writer.write({"index": index, **kept.popleft(), **record})
                bar.update(1)
    finally:
        if raw is not None and raw is not sys.stdin.buffer:
            raw.close()


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ModuleNotFoundError, ValueError):
        return False


def _run_build_command(command: str, argv: list[str]) -> int:
    _, modules, extra = BUILD_COMMANDS[command]
    missing = [m for m in modules if not _has_module(m)]
    if missing:
        raise InputError(
            f"`emotion-onnx {command}` needs the {extra} extra (missing: {', '.join(missing)}); "
            f"install it with: pip install 'emotion-onnx[{extra}]'"
        )
    return importlib.import_module("emotion_onnx_export.commands").main(command, argv)


def _run_spark(argv: list[str]) -> int:
    if not _has_module("pyspark"):
        raise InputError("`emotion-onnx spark-classify` needs the spark extra: pip install 'emotion-onnx[spark]'")
    from .spark import main as spark_main

    return spark_main(argv)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .serving import cli as serve_cli

    parser = argparse.ArgumentParser(
        prog="emotion-onnx", description="Fast, torch-free emotion classification. " + MODEL_NOTE
    )
    parser.add_argument("--version", action="version", version=f"emotion-onnx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_classify(sub)
    serve_cli.add_parser(sub)
    sub.choices["serve"].set_defaults(func=serve_cli.run)
    # these parse their own options: listed here, parsed by the command itself
    sub.add_parser(
        "spark-classify", add_help=False,
        help="classify a Parquet/CSV dataset into Parquet on Spark (spark extra; --help for options)",
    )  # fmt: skip
    for command, (text, _, _) in BUILD_COMMANDS.items():
        sub.add_parser(command, add_help=False, help=text + "; --help for options")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["spark-classify"]:
            return _run_spark(argv[1:])
        if argv[:1] and argv[0] in BUILD_COMMANDS:
            return _run_build_command(argv[0], argv[1:])
        args = build_parser().parse_args(argv)
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
