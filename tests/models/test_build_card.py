"""models/build_card.py's runs table: re-rendered from attempts.json, nothing else of the card touched."""

from __future__ import annotations

import json
import shutil

from helpers import REPO, load_script

CARD_DIR = REPO / "models" / "emotion-minilm-l6"


def test_runs_table_is_rendered_from_attempts(tmp_path):
    build_card = load_script("models", "build_card")
    card = tmp_path / "card"
    card.mkdir()
    shutil.copyfile(CARD_DIR / "README.md", card / "README.md")
    attempts = json.loads((CARD_DIR / "attempts.json").read_text())
    (card / "attempts.json").write_text(json.dumps(attempts))
    build_card.rewrite_runs_table(card)
    assert (card / "README.md").read_text() == (CARD_DIR / "README.md").read_text()  # the committed card is current

    extra = {**attempts[0], "when": "2099-01-01", "note": "a row added", "decision": "not shipped"}
    (card / "attempts.json").write_text(json.dumps([*attempts, extra]))
    build_card.rewrite_runs_table(card)
    before, after = (CARD_DIR / "README.md").read_text(), (card / "README.md").read_text()
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert len(added) == 1 and added[0].startswith("| 2099-01-01 |") and "| a row added | not shipped |" in added[0]
    assert after.split("## Size")[1] == before.split("## Size")[1]
