"""The tests docs/reliability.md cites exist, so the page cannot claim a proof that is gone."""

from __future__ import annotations

import re

from support import REPO


def test_every_test_the_reliability_page_cites_exists():
    page = (REPO / "docs" / "reliability.md").read_text("utf-8")
    cited = sorted(set(re.findall(r"(tests/\w+\.py)::(\w+)", page)))
    assert len(cited) > 200
    missing = [
        f"{path}::{name}"
        for path, name in cited
        if not (REPO / path).is_file() or not re.search(rf"^def {name}\(", (REPO / path).read_text("utf-8"), re.M)
    ]
    assert missing == []
