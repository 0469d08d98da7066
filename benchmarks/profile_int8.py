"""Where the time goes: onnxruntime's profiler per op type, for variants of one model.

    python benchmarks/profile_int8.py MODEL_DIR int8 int8-per-tensor

Prints each op type's share of kernel time over 1000 emotion test texts.
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import read_split  # noqa: E402

from emotion_onnx import EmotionClassifier
from emotion_onnx.session import session_options

texts, _ = read_split("test", 1000)
for variant in sys.argv[2:]:
    clf = EmotionClassifier(sys.argv[1], variant=variant)
    opts = session_options(optimized=clf.variant.optimized)
    opts.enable_profiling = True
    opts.profile_file_prefix = f"/tmp/emotion_onnx_profile_{variant}"
    clf.session = ort.InferenceSession(
        str(clf.manifest.directory / clf.variant.ref.file), opts, providers=["CPUExecutionProvider"]
    )
    clf.logits(texts)
    path = clf.session.end_profiling()
    ev = json.loads(Path(path).read_text())
    Path(path).unlink()
    by = defaultdict(float)
    for e in ev:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by[e["args"]["op_name"]] += e["dur"]
    tot = sum(by.values())
    print(
        variant,
        "total kernel ms %.0f" % (tot / 1e3),
        ", ".join(f"{k} {v / tot:.0%}" for k, v in sorted(by.items(), key=lambda x: -x[1])[:9]),
    )
