"""Fill every generated figure of README.md and docs/*.md from benchmarks/results/.

    python benchmarks/update_docs.py [--check]

A document marks each generated block with `<!-- results:NAME -->` ... `<!-- /results:NAME -->`.
NAME is a file benchmarks/results/NAME.md, or one of the tables computed here from the JSON
results (GENERATED). Nothing between markers is typed by hand. --check fails (exit 1) when a
document is not what this script would write, and when a table describes what has since changed:
its results file records (`provenance`) the model directories it measured and the code files it
times, by hash, and a model manifest or code file in this repository that no longer matches makes
the table stale. Tables measured before results recorded their provenance are listed as such.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PATTERN = re.compile(r"(<!-- results:(?P<name>[\w.-]+) -->\n)(.*?)(<!-- /results:(?P=name) -->)", re.S)


def summary_table() -> str:
    """The README's one table against the peers, from compare_systems.json."""
    from compare_systems import summary_markdown

    return summary_markdown(json.loads((RESULTS / "compare_systems.json").read_text()))


GENERATED = {"summary": summary_table}
SOURCES = {"summary": "compare_systems"}  # the results file behind a computed table


def _hash(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def changed_since(name: str) -> list[str] | None:
    """What a table's results file describes that has since changed (model manifests and code
    files in this repository, by hash); None when the file records no provenance."""
    path = RESULTS / f"{SOURCES.get(name, name)}.json"
    record = json.loads(path.read_text()).get("provenance") if path.is_file() else None
    if record is None:
        return None
    changed = []
    for model in record.get("models", []):
        manifest = REPO / model["path"] / "manifest.json"
        if manifest.is_file() and _hash(manifest) != model["manifest_sha256"]:
            changed.append(f"the model {model['path']}")
    for file, digest in record.get("code", {}).items():
        if not (REPO / file).is_file() or _hash(REPO / file) != digest:
            changed.append(file)
    return changed


def block(name: str) -> str | None:
    if name in GENERATED:
        return GENERATED[name]().rstrip() + "\n"
    path = RESULTS / f"{name}.md"
    return path.read_text().rstrip() + "\n" if path.is_file() else None


def render(text: str, missing: list[str]) -> str:
    def fill(m: re.Match) -> str:
        body = block(m.group("name"))
        if body is None:
            missing.append(m.group("name"))
            return m.group(0)
        return m.group(1) + body + m.group(4)

    return PATTERN.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only report documents that are out of date")
    args = p.parse_args(argv)
    missing: list[str] = []
    stale = []
    for doc in DOCUMENTS:
        text = doc.read_text()
        new = render(text, missing)
        if new != text:
            stale.append(doc.relative_to(REPO))
            if not args.check:
                doc.write_text(new)
    if missing:
        print(f"no results for: {', '.join(sorted(set(missing)))}", file=sys.stderr)
        return 1
    if args.check and stale:
        print(f"out of date: {', '.join(map(str, stale))}; run python benchmarks/update_docs.py", file=sys.stderr)
        return 1
    if args.check:
        names = sorted({m.group("name") for doc in DOCUMENTS for m in PATTERN.finditer(doc.read_text())})
        verdicts = {name: changed_since(name) for name in names}
        described = {name: what for name, what in verdicts.items() if what}
        unknown = [name for name, what in verdicts.items() if what is None]
        if unknown:
            print(f"measured before results recorded their provenance: {', '.join(unknown)}", file=sys.stderr)
        if described:
            for name, what in described.items():
                print(f"{name} describes what has since changed: {', '.join(what)}; re-run its benchmark",
                      file=sys.stderr)  # fmt: skip
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
