"""A pool of everyday-style labelled sentences, generated from hand-written fragments (our own text).

    python models/realworld/everyday_pool.py --per-label 500 --seed 0 --out build/everyday.jsonl
    python models/realworld/everyday_pool.py --sayings 0.4 --out build/everyday2.jsonl  # 40 % whole sayings

The emotion dataset's texts nearly all follow one template ("i feel ..."), so a model trained on
it alone learns the word after "feel" and little about how people write. This pool describes
situations and reactions, and whole sayings (addressed to someone, questions, product reviews), in
chat, review, post and message styles, one clear emotion each, for training and for the
domain-adaptation curves. It was written apart from the evaluation set (eval.jsonl, dev.jsonl beside
this script), which shares no sentence with it (tests/models/test_everyday_pool.py); only the
evaluation set measures the model.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")

# The hand-written fragments, in fragments.json beside this script: situations (events) and
# reactions per label, whole sayings per label, and the forms that put them together.
FRAGMENTS = json.loads((Path(__file__).resolve().parent / "fragments.json").read_text(encoding="utf-8"))
EVENTS = FRAGMENTS["events"]
REACTIONS = FRAGMENTS["reactions"]
SAYINGS = FRAGMENTS["sayings"]
SAYING_FORMS = FRAGMENTS["saying_forms"]
FORMS = FRAGMENTS["forms"]


# Whole sentences as people say them to someone or about something: addressed to a partner, a
# friend or a company, questions, commands and product reviews, with no event/reaction split.

# (style, template); {s} is a saying, used whole: an event in front of it rarely reads as one text

# (style, template); {e} is the event, {r} the reaction
REVIEW_LABELS = {"anger", "joy", "surprise"}  # review templates read naturally for these


def generate(per_label: int, seed: int = 0, sayings: float = 0.0) -> list[dict]:
    """`per_label` distinct texts per label; a share `sayings` of them a whole saying, the rest an
    event and a reaction. With sayings=0 the random stream, and so the pool, is the one the shipped
    model was trained on."""
    rng = random.Random(seed)
    rows = []
    for label in LABELS:
        forms = [f for f in FORMS if f[0] != "review" or label in REVIEW_LABELS]
        seen: set[str] = set()
        count = 0
        while count < per_label:
            saying = bool(sayings) and rng.random() < sayings
            style, form = rng.choice(SAYING_FORMS if saying else forms)
            parts = {"e": rng.choice(EVENTS[label]), "r": rng.choice(REACTIONS[label])}
            if sayings:  # drawn for every text once sayings are on: the stream the --sayings runs used
                parts["s"] = rng.choice(SAYINGS[label])
            text = form.format(**parts)
            if rng.random() < 0.3:
                text = text[0].upper() + text[1:]
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label, "style": style})
                count += 1
    rng.shuffle(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-label", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sayings", type=float, default=0.0, help="share of texts that are a whole saying (default 0)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in generate(args.per_label, args.seed, args.sayings):
            fh.write(json.dumps(row) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
