"""Where the time goes: onnxruntime's profiler per op type, for variants of one model.

    python benchmarks/profile_int8.py MODEL_DIR int8 int8-per-tensor

Prints each op type's share of kernel time over 1000 emotion test texts.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import kernel_profile, read_split  # noqa: E402

from emotion_onnx import EmotionClassifier

texts, _ = read_split("test", 1000)
for variant in sys.argv[2:]:
    clf = EmotionClassifier(sys.argv[1], variant=variant)

    def classify_all(session, clf=clf) -> None:
        clf.session = session
        clf.logits(texts)

    by, _ = kernel_profile(clf, classify_all)
    tot = sum(by.values())
    print(
        variant,
        "total kernel ms %.0f" % (tot / 1e3),
        ", ".join(f"{k} {v / tot:.0%}" for k, v in sorted(by.items(), key=lambda x: -x[1])[:9]),
    )
