"""A desktop app frozen with PyInstaller: its size, its start-up time and its peak memory.

    python benchmarks/frozen_app.py [--repeats 5]

Builds docs/desktop.md's three-line app with `pyinstaller --onefile` and with `--onedir` in a
temporary folder, then runs each on one text, `--repeats` times: the wall time from exec to the
answer (median; the first run of a --onefile app also unpacks it) and the peak RSS of the app's
process tree (GNU time's maximum resident set size of the last process, the unpacked app).
Results go to benchmarks/results/frozen_app.{json,md}.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, RUNTIME_HOT_PATH, arguments, machine, median, model_or_default, write_results

HOOKS = REPO / "runtime" / "emotion_onnx" / "__pyinstaller"  # what PyInstaller learns about the package

APP = """\
import sys
from emotion_onnx import EmotionClassifier

clf = EmotionClassifier(intra_op_threads=1)
print(clf(sys.argv[1:]))
"""


def build(work: Path, mode: str) -> tuple[Path, float]:
    import emotion_onnx
    from emotion_onnx.__pyinstaller import BUILD_SIDE_EXCLUDES

    (work / "app.py").write_text(APP)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", f"--{mode}", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(work / "dist"), "--workpath", str(work / "build"), "--specpath", str(work),
         "--paths", str(Path(emotion_onnx.__file__).resolve().parent.parent), *BUILD_SIDE_EXCLUDES,
         str(work / "app.py")],
        check=True, capture_output=True, cwd=work,
    )  # fmt: skip
    exe = work / "dist" / ("app" if mode == "onefile" else "app/app")
    return exe, time.perf_counter() - t0


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_once(exe: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", str(exe), "i feel wonderful today"], capture_output=True, text=True, check=True
    )
    return time.perf_counter() - t0, int(proc.stderr.strip().splitlines()[-1]) * 1024


def markdown(data: dict) -> str:
    lines = [
        f"2 cores of an {data['machine'].get('cpu', 'unknown CPU')}: PyInstaller {data['pyinstaller']}, the app "
        f"above with the embedded model, one thread, one text; median of {data['repeats']} runs "
        "(`python benchmarks/frozen_app.py`).",
        "",
        "| build | size | start to answer (median; first run) | peak memory |",
        "|---|---|---|---|",
    ]
    for mode, r in data["results"].items():
        lines.append(
            f"| `--{mode}` | {r['bytes'] / 1e6:.0f} MB | {r['start_to_answer_median_s']:.2f} s; "
            f"{r['start_to_answer_s'][0]:.2f} s | {r['peak_rss_bytes'] / 1e6:.0f} MB |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, repeats=5)
    args = p.parse_args(argv)
    import PyInstaller

    results = {}
    with tempfile.TemporaryDirectory(prefix="frozen_app_") as tmp:
        for mode in ("onefile", "onedir"):
            work = Path(tmp) / mode
            work.mkdir()
            exe, seconds = build(work, mode)
            runs = [run_once(exe) for _ in range(args.repeats)]
            results[mode] = {
                "build_seconds": seconds,
                "bytes": _size(exe if mode == "onefile" else exe.parent),
                "start_to_answer_s": [r[0] for r in runs],
                "start_to_answer_median_s": median([r[0] for r in runs]),
                "peak_rss_bytes": max(r[1] for r in runs),
            }
    data = {"pyinstaller": PyInstaller.__version__, "repeats": args.repeats, "results": results}
    md = markdown({**data, "machine": machine()})
    write_results("frozen_app", data, md, models=[model_or_default(None)],
                  code=[*RUNTIME_HOT_PATH, *sorted(str(p.relative_to(REPO)) for p in HOOKS.glob("*.py"))])  # fmt: skip
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
