"""Copy the benchmark tables from benchmarks/results/*.md into README.md.

    python benchmarks/update_readme.py

README.md marks each table with `<!-- results:NAME -->` ... `<!-- /results:NAME -->`; the
text between the markers is replaced by benchmarks/results/NAME.md.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"


def main() -> int:
    text = README.read_text()
    pattern = re.compile(r"(<!-- results:(?P<name>[\w.-]+) -->\n)(.*?)(<!-- /results:(?P=name) -->)", re.S)
    missing = []

    def fill(m: re.Match) -> str:
        path = HERE / "results" / f"{m.group('name')}.md"
        if not path.is_file():
            missing.append(path.name)
            return m.group(0)
        return m.group(1) + path.read_text().rstrip() + "\n" + m.group(4)

    README.write_text(pattern.sub(fill, text))
    if missing:
        print(f"no results for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
