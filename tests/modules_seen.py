"""A conftest.py written into test projects (tests/test_warm_cache.py) and the bench's work folder
(bench/warm_cache.py): it records the heavy modules each pytest process held when it ended."""

import json
import sys
from pathlib import Path


def pytest_unconfigure(config):
    held = sorted(name for name in ("tokenizers", "torch", "transformers") if name in sys.modules)
    with Path(__file__).with_name("modules-seen.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(held) + "\n")
