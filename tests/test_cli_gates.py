"""`vnllmtest compare --gate`: two stored runs of a small project, made by real pytest runs with replayed
answers, gated afterwards without models, as `pytest --baseline` would have gated the newer one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import RunFolder, read_run, write_suite

from vnllmtest.cli import main
from vnllmtest.metrics import mcnemar_exact

RECORDS = [
    {"id": f"q{n:02d}", "question": f"Câu hỏi số {n}?", "choices": ["A. Một", "B. Hai"], "answer": "A"}
    for n in range(40)
]
# The baseline answers 30 of 40 (75.0); the checkpoint loses q00-q03 and gains q30-q31: 28 of 40, a drop of
# 5 points that McNemar does not find significant (4 against 2 discordant items).
BASELINE_RIGHT = {f"q{n:02d}" for n in range(30)}
CHECKPOINT_RIGHT = (BASELINE_RIGHT - {"q00", "q01", "q02", "q03"}) | {"q30", "q31"}
MIN_GATE = {"metric": "accuracy", "min": 25}
DROP_GATE = {"metric": "accuracy", "max_drop": 4}


def suite(*gates: dict) -> dict:
    return {"task": "multiple_choice", "scoring": {"mode": "generate"}, "gates": list(gates)}


pytestmark = pytest.mark.project(suites={"mc": suite(MIN_GATE, DROP_GATE)}, records={"mc.jsonl": RECORDS})


def answers(right: set[str]) -> dict[str, str]:
    return {record["id"]: "A" if record["id"] in right else "B" for record in RECORDS}


def stored_run(project: pytest.Pytester, model: str, report_dir: str, *options: str) -> RunFolder:
    result = project.runpytest("suites", "--model", model, "--report-dir", report_dir, *options)
    assert result.ret == 0, result.stdout.str()[-2000:]
    return read_run(project.path, report_dir)


@pytest.fixture
def runs(project: pytest.Pytester, replay) -> tuple[RunFolder, RunFolder]:
    """(baseline, checkpoint): two runs without --baseline, so their max_drop gates were skipped."""
    base = stored_run(project, replay(answers(BASELINE_RIGHT), "base"), "baseline")
    ckpt = stored_run(project, replay(answers(CHECKPOINT_RIGHT), "ckpt"), "checkpoint")
    return base, ckpt


def gate(capsys: pytest.CaptureFixture, baseline: RunFolder | Path, run: RunFolder | Path, *options: str):
    """`vnllmtest compare BASELINE RUN --gate ...`: (exit status, stdout, stderr)."""
    paths = [str(getattr(folder, "path", folder)) for folder in (baseline, run)]
    status = main(["compare", *paths, "--gate", *options])
    out, err = capsys.readouterr()
    return status, out, err


def gates_section(markdown: str) -> list[str]:
    """The verdict and rows of a Markdown gates table (summary.md's or compare's)."""
    lines = markdown[markdown.rindex("## Gates") :].split("\n## ")[0].splitlines()
    return [line for line in lines if line.startswith(("**", "| mc |"))]


def test_summary_json_stores_each_gate_with_its_declared_spec_beside_the_existing_keys(runs):
    _, ckpt = runs
    minimum, drop = ckpt.gates
    declared = {
        "metric": "accuracy",
        "min": None,
        "max": None,
        "max_drop": None,
        "significance": None,
        "bound": "value",
    }
    assert [minimum["spec"], drop["spec"]] == [{**declared, "min": 25}, {**declared, "max_drop": 4}]
    assert {"suite", "model", "metric", "gate", "value", "state", "reason", "detail", "passed"} <= drop.keys()
    assert [drop[key] for key in ("gate", "state", "reason", "rule")] == [
        "accuracy drop <= 4 vs baseline",
        "skipped",
        "no --baseline given",
        "",  # no rule of the run's own decided it
    ]


def test_a_drop_beyond_max_drop_exits_1_and_decides_as_pytest_with_the_baseline_would(project, runs, capsys):
    base, ckpt = runs
    status, out, err = gate(capsys, base, ckpt)
    assert (status, err) == (1, "")
    assert f"## Gates of {ckpt.path.name} against baseline {base.path.name}" in out
    assert "| mc | ckpt | accuracy drop <= 4 vs baseline | -5.0 |" in out
    assert f"p={mcnemar_exact(4, 2):.3g} (mcnemar), 40 items | **FAIL** (dropped 5.0 > 4 against base) |" in out
    assert "| mc | ckpt | accuracy >= 25 | 70.0 | 70.0 [" in out
    with_baseline = project.runpytest("suites", "--model", "replay:ckpt.jsonl", "--baseline", str(base.path))
    assert with_baseline.ret == 1
    assert gates_section(out) == gates_section(read_run(project.path).markdown)
    assert gates_section(out)[0] == "**Gates not passed: 1 of 2 gates failed.**"


def test_gates_that_pass_exit_0(runs, capsys):
    base, ckpt = runs
    status, out, _ = gate(capsys, ckpt, base)  # the base run against the checkpoint: 5 points better
    assert status == 0
    assert "**All gates passed.**" in out
    assert "| mc | base | accuracy drop <= 4 vs baseline | 5.0 | +5.0 [" in out


def test_the_console_script_prints_the_failed_gate_and_exits_1(runs):
    base, ckpt = runs
    script = Path(sys.executable).parent / "vnllmtest"
    done = subprocess.run(
        [script, "compare", base.path, ckpt.path, "--gate"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "**FAIL** (dropped 5.0 > 4 against base)" in done.stdout
    assert "### Flipped items (4 regressions, 2 fixes)" in done.stdout  # the comparison comes first


def test_significance_in_the_recorded_spec_is_honoured(project, runs, capsys):
    base, _ = runs
    write_suite(project.path, "mc", suite(MIN_GATE, {**DROP_GATE, "significance": 0.05}))
    ckpt = stored_run(project, "replay:ckpt.jsonl", "significance")
    status, out, _ = gate(capsys, base, ckpt)
    assert status == 0
    p = f"{mcnemar_exact(4, 2):.3g}"
    assert "| accuracy drop <= 4 vs baseline, p < 0.05 | -5.0 |" in out
    assert f"| pass (drop of 5.0 is not significant (p={p})) |" in out


def test_a_partial_run_keeps_its_max_drop_gate_not_evaluated_and_require_gates_fails_it(project, runs, capsys):
    base, _ = runs
    part = stored_run(project, "replay:ckpt.jsonl", "part", "--limit", "10")
    status, out, _ = gate(capsys, base, part)
    assert status == 0
    assert "| not evaluated (10 of 40 items ran; --limit 10) |" in out
    status, out, _ = gate(capsys, base, part, "--require-gates")
    assert status == 1
    assert "2 of 2 gates not evaluated, which --require-gates forbids" in out


def without_specs(document: dict) -> str:
    for result in document["results"]:
        for found in result["gates"]:
            del found["spec"], found["rule"]
    return "results[0].gates[0]: no 'spec': the run was made before vnllmtest stored each gate's declared spec"


def with_a_bad_spec(document: dict) -> str:
    document["results"][0]["gates"][1]["spec"]["max_drop"] = "four"
    return "gate 'accuracy drop <= 4 vs baseline' of mc [ckpt]: spec.max_drop: Input should be a valid number"


def with_results_not_a_list(document: dict) -> str:
    document["results"] = {}
    return "field 'results': expected a list, got an object"


@pytest.mark.parametrize("damage", [without_specs, with_a_bad_spec, with_results_not_a_list])
def test_a_run_whose_gates_cannot_be_read_is_a_clear_error_with_exit_2(runs, capsys, damage):
    base, ckpt = runs
    summary = ckpt.path / "summary.json"
    document = json.loads(summary.read_text("utf-8"))
    expected = damage(document)
    summary.write_text(json.dumps(document), "utf-8")
    status, out, err = gate(capsys, base, ckpt)
    assert (status, out) == (2, "")
    assert err.startswith(f"vnllmtest compare: {summary}: ") and expected in err
    assert main(["compare", str(base.path), str(ckpt.path)]) == 0  # without --gate, the comparison still reads it


def test_a_run_without_max_drop_gates_or_without_summary_json_cannot_be_gated(project, runs, capsys):
    base, ckpt = runs
    write_suite(project.path, "mc", suite(MIN_GATE))
    absolute = stored_run(project, "replay:ckpt.jsonl", "absolute")
    status, _, err = gate(capsys, base, absolute)
    assert status == 2
    assert f"{absolute.path / 'summary.json'}: the run records no max_drop gate" in err
    (ckpt.path / "summary.json").unlink()
    status, _, err = gate(capsys, base, ckpt.path / "items.jsonl")
    assert status == 2
    assert f"{ckpt.path / 'summary.json'}: not found; a run's gates are recorded there" in err


def test_require_gates_without_gate_is_a_usage_error(runs, capsys):
    base, ckpt = runs
    with pytest.raises(SystemExit) as stopped:
        main(["compare", str(base.path), str(ckpt.path), "--require-gates"])
    assert stopped.value.code == 2
    assert "--require-gates needs --gate" in capsys.readouterr().err
