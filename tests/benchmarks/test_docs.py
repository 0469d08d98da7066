"""The README and docs/: every generated figure is what benchmarks/update_docs.py writes from
benchmarks/results/, every relative link resolves, and the README stays a front page."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md"]


def test_generated_figures_are_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "update_docs.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_relative_links_resolve():
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if not target.startswith(("http://", "https://", "mailto:")) and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(REPO)} -> {target}")
    assert not broken, broken


def test_the_readme_is_a_front_page():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for fragment in ("neutral on\nrequest", "English only", "calibrated probabilities"):
        assert fragment in text
