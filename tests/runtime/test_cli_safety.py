"""`emotion-onnx classify` as a subprocess never destroys a user's file, never runs without bound,
and turns every failure into one line: the input survives every -o that names it, a failed or
killed run leaves the previous output as it was, and hostile inputs and settings are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import assert_clean_error, run_cli

TEXTS = "i am thrilled\ni am furious\nwhat a lovely gift\n"


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text(TEXTS)
    return tmp_path


@pytest.mark.parametrize(
    "make_output",
    [
        lambda d: "in.txt",
        lambda d: str(d / "in.txt"),
        lambda d: "./sub/../in.txt" if (d / "sub").mkdir() is None else "",
        lambda d: os.symlink("in.txt", d / "link.txt") or "link.txt",
        lambda d: os.link(d / "in.txt", d / "hard.txt") or "hard.txt",
    ],
    ids=["same-path", "absolute", "dotted", "symlink", "hardlink"],
)
def test_the_input_survives_every_output_that_names_it(work, make_output, tiny_model):
    output = make_output(work)
    proc = run_cli("classify", "--model", str(tiny_model), "-i", "in.txt", "-o", output)
    assert_clean_error(proc, "is the input file")
    assert (work / "in.txt").read_text() == TEXTS


def test_stdin_redirected_from_the_output_is_refused(work, tiny_model):
    with open(work / "in.txt", "rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-m", "emotion_onnx", "classify", "--model", str(tiny_model), "-o", "in.txt"],
            stdin=stdin,
            capture_output=True,
            timeout=300,
        )
    assert_clean_error(proc, "is the input file")
    assert (work / "in.txt").read_text() == TEXTS


def test_a_failed_run_leaves_the_previous_output_untouched(work, tiny_model):
    assert run_cli("classify", "--model", str(tiny_model), "-i", "in.txt", "-o", "out.jsonl").returncode == 0
    before = (work / "out.jsonl").read_bytes()
    assert len(before.splitlines()) == 3
    proc = run_cli("classify", "--model", str(work / "missing-model"), "-i", "in.txt", "-o", "out.jsonl")
    assert proc.returncode == 2
    assert (work / "out.jsonl").read_bytes() == before
    assert [p.name for p in work.iterdir() if p.name.endswith(".part")] == []


def test_a_killed_run_leaves_the_previous_output_untouched(work, tiny_model):
    (work / "out.jsonl").write_text("the previous results\n")
    many = work / "many.txt"
    many.write_text("i feel fine today and that is that\n" * 200_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "emotion_onnx", "classify", "--model", str(tiny_model), "-i", str(many),
         "-o", "out.jsonl"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.name.endswith(".part") for p in work.iterdir()):
        time.sleep(0.05)
    time.sleep(1.0)  # writing is under way
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (work / "out.jsonl").read_text() == "the previous results\n"


def test_a_good_run_replaces_the_output_and_keeps_its_mode(work, tiny_model):
    out = work / "out.jsonl"
    out.write_text("old\n")
    out.chmod(0o640)
    assert run_cli("classify", "--model", str(tiny_model), "-i", "in.txt", "-o", "out.jsonl").returncode == 0
    assert len(out.read_text().splitlines()) == 3
    assert out.stat().st_mode & 0o777 == 0o640


def test_a_full_disk_is_one_line(work, tiny_model):
    assert_clean_error(
        run_cli("classify", "--model", str(tiny_model), "-i", "in.txt", "-o", "/dev/full"), "No space left"
    )


def test_an_endless_line_is_refused(tiny_model):
    proc = run_cli("classify", "--model", str(tiny_model), "-i", "/dev/zero", timeout=120)
    assert_clean_error(proc, "/dev/zero:1", "longer than 16 MiB")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"text\rhello\rworld\r", "use LF or CRLF line endings"),
        (b"text\n" + b"a" * 200_000 + b"\n", None),  # a field over the csv module's default limit reads fine
    ],
    ids=["bare-cr", "wide-field"],
)
def test_csv_edge_cases(work, tiny_model, content, fragment):
    (work / "in.csv").write_bytes(content)
    proc = run_cli("classify", "--model", str(tiny_model), "-i", "in.csv")
    if fragment is None:
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == 1
    else:
        assert_clean_error(proc, "in.csv:1", fragment)


def test_a_lone_surrogate_keeps_the_records_before_it_and_names_the_line(work, tiny_model):
    lines = ['{"text": "i am thrilled"}', '{"text": "i am furious"}', '{"text": "\\ud800"}', '{"text": "ok"}']
    (work / "in.jsonl").write_text("\n".join(lines) + "\n")
    proc = run_cli("classify", "--model", str(tiny_model), "-i", "in.jsonl", "-o", "out.jsonl")
    assert_clean_error(proc, "in.jsonl:3", "lone surrogate")
    records = [json.loads(x) for x in (work / "out.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1]


@pytest.mark.parametrize("keep", [["index"], ["label"], ["score"], ["p_joy"], ["id", "id"]])
def test_kept_fields_cannot_shadow_output_fields(work, tiny_model, keep):
    (work / "in.jsonl").write_text('{"text": "hi", "index": 7, "label": "x", "score": 1, "p_joy": 0, "id": 1}\n')
    proc = run_cli("classify", "--model", str(tiny_model), "-i", "in.jsonl", "--keep", *keep)
    assert_clean_error(proc, "--keep")


def test_a_number_beyond_float_range_is_refused_not_written_as_infinity(work, tiny_model):
    (work / "in.jsonl").write_text('{"text": "hi", "n": 1e999}\n')
    proc = run_cli("classify", "--model", str(tiny_model), "-i", "in.jsonl", "--keep", "n")
    assert_clean_error(proc, "in.jsonl:1", "too large")
    assert b"Infinity" not in proc.stdout


def test_threads_are_capped_at_the_usable_cpus(tiny_model):
    proc = run_cli("classify", "--model", str(tiny_model), "--threads", "100000", "i am thrilled")
    assert proc.returncode == 0, proc.stderr
    assert_clean_error(run_cli("classify", "--model", str(tiny_model), "--threads", "0", "x"), "at least 1")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-wait-ms", "nan"),
        ("--max-wait-ms", "inf"),
        ("--header-timeout", "inf"),
        ("--body-timeout", "-1"),
        ("--send-timeout", "nan"),
        ("--grace", "1e12"),
        ("--batch-tokens", "0"),
        ("--max-queue-tokens", "99999999999"),
        ("--threads", "0"),
        ("--max-inputs", "0"),
    ],
)
def test_serve_refuses_non_finite_and_absurd_settings(flag, value):
    assert_clean_error(run_cli("serve", "--port", "0", flag, value, timeout=60), "must be")


def test_limit_variables_are_checked_too():
    proc = run_cli("serve", "--port", "0", env={"EMOTION_ONNX_MAX_TEXT_CHARS": "99999999999"}, timeout=60)
    assert_clean_error(proc, "max_text_chars")
