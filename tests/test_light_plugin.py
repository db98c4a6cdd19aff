"""vnllmtest is a pytest11 plugin, so every pytest run in its environment imports it: importing it, and a
pytest run of a project without suites, load none of the heavy stacks (they load when a suite is
collected or a model runs). Checked in fresh subprocesses, by the modules loaded; bench/import_cost.py
measures the time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "transformers", "numpy", "pydantic", "jinja2", "httpx", "datasets", "underthesea")
REPORT_HEAVY = f"import sys; print(sorted(h for h in {HEAVY!r} if h in sys.modules))"


def test_importing_the_plugin_loads_no_heavy_stack():
    done = subprocess.run(
        [sys.executable, "-c", f"import vnllmtest.plugin; {REPORT_HEAVY}"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_pytest_run_without_suites_loads_no_heavy_stack(tmp_path: Path):
    (tmp_path / "test_plain.py").write_text("def test_sum():\n    assert 1 + 1 == 2\n", "utf-8")
    (tmp_path / "conftest.py").write_text(f"def pytest_unconfigure(config):\n    {REPORT_HEAVY}\n", "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 passed" in done.stdout and done.stdout.rstrip().endswith("[]"), done.stdout[-2000:]
    assert not (tmp_path / "reports").exists() and not (tmp_path / ".vnllmtest-cache").exists()


def test_a_suite_run_still_loads_what_it_needs(tmp_path: Path):
    """The other side: collecting a suite brings in the schema (pydantic) and prompts (jinja2)."""
    script = (
        "import sys; from pathlib import Path; from vnllmtest.suite import load_suite; "
        f"load_suite(Path({str(Path(__file__).parents[1] / 'suites' / 'vmlu.yaml')!r})); {REPORT_HEAVY}"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "pydantic" in done.stdout and "jinja2" in done.stdout, done.stderr
