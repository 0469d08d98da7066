"""`emotion-onnx classify`: inputs, outputs, streaming and bad input."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from helpers import assert_clean_error, run_cli

LABELS = {"sadness", "joy", "love", "anger", "fear", "surprise"}


def records(proc) -> list[dict]:
    assert proc.returncode == 0, proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def test_texts_as_arguments(tiny_model):
    out = records(run_cli("classify", "--model", str(tiny_model), "i am happy", "i am sad", "--top-k", "2"))
    assert [r["index"] for r in out] == [0, 1]
    for r in out:
        assert r["label"] in LABELS and 0 < r["score"] <= 1
        assert len(r["top_k"]) == 2 and r["top_k"][0]["label"] == r["label"]


def test_stdin_lines_keep_empty_lines(tiny_model):
    out = records(run_cli("classify", "--model", str(tiny_model), input="first\n\nthird\n"))
    assert [r["index"] for r in out] == [0, 1, 2]
    assert all(r["label"] in LABELS for r in out)


def test_txt_file_with_probabilities_and_embedding(tiny_model, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("i feel great\r\nso scared\n")
    out = records(run_cli("classify", "--model", str(tiny_model), "-i", str(src), "--probabilities", "--embed"))
    assert len(out) == 2
    for r in out:
        assert set(r["probabilities"]) == LABELS
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-5
        assert len(r["embedding"]) == 32


def test_jsonl_field_and_null(tiny_model, tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [{"body": "hello"}, {"body": None}, {"body": ""}]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = records(run_cli("classify", "--model", str(tiny_model), "-i", str(src), "--field", "body"))
    assert [r["index"] for r in out] == [0, 1, 2]
    assert out[1] == {"index": 1, "label": None, "score": None}  # null text: null result, not dropped
    assert out[2]["label"] in LABELS  # the empty string is classified


def test_csv_column_to_csv_output(tiny_model, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,review\n1,"i love it, truly"\n2,"awful, just awful"\n')
    dst = tmp_path / "out.csv"
    proc = run_cli(
        "classify", "--model", str(tiny_model), "-i", str(src), "--column", "review", "-o", str(dst), "--probabilities"
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(dst.read_text())))
    assert [r["index"] for r in rows] == ["0", "1"]
    assert {"label", "score", "p_joy", "p_fear"} <= set(rows[0])


def test_matches_library(tiny_model, test_texts, tmp_path):
    from emotion_onnx import EmotionClassifier

    src = tmp_path / "in.txt"
    src.write_text("\n".join(test_texts[:200]) + "\n")
    out = records(run_cli("classify", "--model", str(tiny_model), "--variant", "fp32-fused", "-i", str(src)))
    expected = EmotionClassifier(tiny_model, variant="fp32-fused")(test_texts[:200])
    assert [r["label"] for r in out] == [e["label"] for e in expected]
    assert [round(r["score"], 5) for r in out] == [round(e["score"], 5) for e in expected]


def test_invalid_utf8_names_the_line(tiny_model, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"fine\nalso fine\nbad \xff byte\n")
    proc = run_cli("classify", "--model", str(tiny_model), "-i", str(src))
    assert_clean_error(proc, f"{src}:3", "invalid UTF-8", "--errors replace")
    assert [json.loads(line)["index"] for line in proc.stdout.decode().splitlines()] == [0, 1]  # written first
    out = records(run_cli("classify", "--model", str(tiny_model), "-i", str(src), "--errors", "replace"))
    assert len(out) == 3


@pytest.mark.parametrize("chunk", ["1024", "7"])
def test_every_record_before_a_bad_line_is_written(tiny_model, chunk):
    """A bad byte deep in a stream: every earlier record is written, in order, before exit code 2."""
    lines = b"".join(b"text number %d\n" % i for i in range(3000)) + b"\xff\n" + b"never read\n"
    proc = run_cli("classify", "--model", str(tiny_model), "--chunk-size", chunk, input=lines)
    assert_clean_error(proc, "<stdin>:3001", "invalid UTF-8")
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r["index"] for r in out] == list(range(3000))


def test_the_issue_example_prints_both_records(tiny_model):
    proc = run_cli("classify", "--model", str(tiny_model), input=b"i feel good\ni feel bad\n\xff\n")
    assert_clean_error(proc, "<stdin>:3")
    assert len(proc.stdout.decode().splitlines()) == 2


def test_csv_output_carries_top_k_and_kept_fields(tiny_model, tmp_path):
    src = tmp_path / "reviews.csv"
    src.write_text('id,review\n17,"i love it, truly"\n42,"awful, just awful"\n')
    dst = tmp_path / "out.csv"
    proc = run_cli("classify", "--model", str(tiny_model), "-i", str(src), "--column", "review", "--keep", "id",
                   "-o", str(dst), "--top-k", "3")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(dst.read_text())))
    assert [r["id"] for r in rows] == ["17", "42"]
    for r in rows:
        assert r["label_1"] == r["label"] and float(r["score_1"]) >= float(r["score_2"]) >= float(r["score_3"])


def test_jsonl_keeps_fields_as_they_were(tiny_model, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 7, "meta": {"lang": "en"}, "text": "hello"}\n{"id": "x-2", "meta": null, "text": null}\n')
    out = records(run_cli("classify", "--model", str(tiny_model), "-i", str(src), "--keep", "id", "meta"))
    assert [(r["id"], r["meta"]) for r in out] == [(7, {"lang": "en"}), ("x-2", None)]
    assert out[1]["label"] is None
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"id": 1, "text": "a"}\n{"text": "b"}\n')
    assert_clean_error(run_cli("classify", "--model", str(tiny_model), "-i", str(missing), "--keep", "id"),
                       ":2", "no field 'id' to keep")  # fmt: skip


@pytest.mark.parametrize("flag", [["--field", "body"], ["--column", "review"], ["--keep", "id"]])
def test_a_field_without_an_input_file_is_refused(tiny_model, flag):
    """`classify reviews.jsonl --field body` would classify the words "reviews.jsonl"."""
    proc = run_cli("classify", "--model", str(tiny_model), "reviews.jsonl", *flag)
    assert_clean_error(proc, flag[0], "pass the file with -i FILE")


def test_output_paths(tiny_model, tmp_path):
    assert_clean_error(run_cli("classify", "--model", str(tiny_model), "x", "-o", str(tmp_path / "no" / "out.jsonl")),
                       "folder", "does not exist")  # fmt: skip
    assert_clean_error(run_cli("classify", "--model", str(tiny_model), "x", "-o", str(tmp_path)), "is a directory")
    assert_clean_error(run_cli("classify", "--model", str(tiny_model), "-i", str(tmp_path)), "is a directory")


def _broken_copy(tiny_model, tmp_path, edit):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    manifest = json.loads((model / "manifest.json").read_text())
    edit(model, manifest)
    (model / "manifest.json").write_text(json.dumps(manifest))
    return model


def _corrupt_graph(model, manifest):
    from emotion_onnx.manifest import FileRef

    v = manifest["variants"][manifest["default_variant"]]
    (model / v["file"]).write_bytes(b"garbage" * 100)
    ref = FileRef.of(model, v["file"])
    v.update(sha256=ref.sha256, size=ref.size)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_corrupt_graph, "not a graph onnxruntime can load"),
        (lambda m, d: d["outputs"].update(logits="scores"), "no output 'scores'"),
        (lambda m, d: d["variants"][d["default_variant"]]["calibration"].update(temperature=float("nan")), "finite"),
        (lambda m, d: d["variants"][d["default_variant"]].update(sha256="f" * 64), "does not match the sha256"),
    ],
)
def test_a_broken_model_is_one_line(tiny_model, tmp_path, edit, fragment):
    model = _broken_copy(tiny_model, tmp_path, edit)
    proc = run_cli("classify", "--model", str(model), "x")
    assert_clean_error(proc, fragment)
    assert "verify=False" not in proc.stderr.decode()  # the CLI has no such flag


def test_help_says_what_the_model_is_not():
    for args in ([" --help"], ["classify", "--help"]):
        proc = run_cli(*[a.strip() for a in args])
        text = " ".join(proc.stdout.decode().split())
        assert proc.returncode == 0
        for fragment in ("--neutral adds a seventh answer", "English only", "calibrated probabilities by default"):
            assert fragment in text, (args, fragment)


def test_missing_csv_column(tiny_model, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,body\n1,hello\n")
    assert_clean_error(run_cli("classify", "--model", str(tiny_model), "-i", str(src)), "no column 'text'", "body")


def test_missing_jsonl_field(tiny_model, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "ok"}\n{"body": "x"}\n')
    assert_clean_error(run_cli("classify", "--model", str(tiny_model), "-i", str(src)), ":2", "no field 'text'")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["-i", "/no/such/file.txt"], ["does not exist"]),
        (["--model", "/no/such/model", "x"], ["/no/such/model", "does not exist"]),
        (["--top-k", "0", "x"], ["--top-k"]),
        (["--variant", "fp16", "x"], ["variant 'fp16'"]),
    ],
)
def test_bad_arguments(tiny_model, args, fragments):
    base = [] if "--model" in args else ["--model", str(tiny_model)]
    assert_clean_error(run_cli("classify", *base, *args), *fragments)


def test_non_string_jsonl_value(tiny_model, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": 42}\n')
    assert_clean_error(run_cli("classify", "--model", str(tiny_model), "-i", str(src)), ":1", "int")


@pytest.mark.slow
def test_200k_lines_stream_in_bounded_memory(tiny_model, tmp_path):
    def peak_rss_kb(n_lines: int) -> int:
        src = tmp_path / f"in_{n_lines}.txt"
        with open(src, "w") as fh:
            for i in range(n_lines):
                fh.write(f"line {i}: i feel {'great' if i % 2 else 'awful'} about number {i % 97}\n")
        dst = tmp_path / f"out_{n_lines}.jsonl"
        # VmHWM (peak RSS of this image), not ru_maxrss, which Linux carries over from the
        # forked parent (pytest, with torch loaded) across exec and would hide any growth
        code = (
            "import sys\n"
            "from emotion_onnx.cli import main\n"
            f"rc = main(['classify', '--model', {str(tiny_model)!r}, '-i', {str(src)!r}, '-o', {str(dst)!r}])\n"
            "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
            "sys.exit(rc)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        with open(dst) as fh:
            count = 0
            for count, line in enumerate(fh, 1):
                if count in (1, n_lines):
                    assert json.loads(line)["index"] == count - 1
        assert count == n_lines
        return int(proc.stdout.strip())

    small = peak_rss_kb(10_000)
    large = peak_rss_kb(200_000)
    # 20x the input, same memory (within 25 MB of allocator noise)
    assert large - small < 25_000, (small, large)
