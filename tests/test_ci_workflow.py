"""docs/ci.md's GitHub Actions workflows: valid against GitHub's workflow schema (check-jsonschema's bundled copy,
no network) and written to our rules: inputs reach the shell only through `env:`, every job has a time limit, a
model-running job has a concurrency group, the Hugging Face cache, `HF_TOKEN` from secrets, `--require-gates` and
JUnit, and a models-free gate uses `vnllmtest compare --gate --require-gates`; a `run:` with a pipe has `shell: bash`
(pipefail), each job sets its own `permissions`, and `HF_TOKEN` is given to steps, never to a whole job. Broken
workflows fail both checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from support import REPO

FENCED_YAML = re.compile(r"^```yaml\n(.*?)^```$", re.S | re.M)
EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)")
EVALUATES = re.compile(r"^\s*pytest\b(?!.*--collect-only)", re.M)  # a pytest run that loads models
PIPE = re.compile(r"(?<!\|)\|(?!\|)")  # `a | b` or `a |& b`, not `a || b`
CLOSED_PORT = "http://127.0.0.1:9"  # as proxy: any download the linter tried would fail at once

BROKEN = """\
name: broken
on: workflow_dispatch
jobs:
  evaluate:
    runs-on: [self-hosted, gpu]
    timeout-minute: 30
    steps:
      - run: pytest suites/ --model "${{ inputs.checkpoint }}"
      - run: vnllmtest compare base run --gate
"""

UNPIPED = """\
name: unpiped
on: workflow_dispatch
env:
  HF_TOKEN: ${{ secrets.HF_TOKEN }}
jobs:
  gate:
    runs-on: ubuntu-latest
    timeout-minutes: 10
    permissions:
      actions: read
    steps:
      - run: vnllmtest compare base run --gate --require-gates | tee -a "$GITHUB_STEP_SUMMARY"
      - run: test -s base || echo "no base"
      - name: Piped, but in bash
        shell: bash
        run: vnllmtest compare base run --gate --require-gates | tee summary.md
"""


def workflows(markdown: str) -> list[str]:
    """The fenced YAML blocks that are workflows (they have `jobs`); suite snippets are left out."""
    blocks = [(block, yaml.safe_load(block)) for block in FENCED_YAML.findall(markdown)]
    return [block for block, document in blocks if isinstance(document, dict) and "jobs" in document]


def schema_check(folder: Path, texts: list[str]) -> subprocess.CompletedProcess:
    """check-jsonschema with its bundled GitHub-workflow schema on each text, the network closed."""
    paths = []
    for number, text in enumerate(texts):
        paths.append(folder / f"workflow-{number}.yml")
        paths[-1].write_text(text, encoding="utf-8")
    proxies = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    env = {**os.environ, **dict.fromkeys(proxies, CLOSED_PORT), "NO_PROXY": "", "no_proxy": ""}
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *paths]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def rule_breaks(text: str) -> list[str]:
    """What in one workflow breaks our rules, each naming its job and step."""
    workflow = yaml.safe_load(text)
    breaks = []
    for job_id, job in workflow["jobs"].items():
        steps = job.get("steps", [])
        if "timeout-minutes" not in job:
            breaks.append(f"{job_id}: no timeout-minutes")
        if "permissions" not in job:
            breaks.append(f"{job_id}: no permissions (grant each job only what it uses)")
        if "HF_TOKEN" in {**workflow.get("env", {}), **job.get("env", {})}:
            breaks.append(f"{job_id}: HF_TOKEN in a workflow or job env: (give it only to the steps that use it)")
        default_shell = job.get("defaults", workflow.get("defaults", {})).get("run", {}).get("shell")
        for number, step in enumerate(steps, 1):
            name = step.get("name", f"step {number}")
            for context in EXPRESSION.findall(step.get("run", "")):
                breaks.append(f"{job_id}/{name}: ${{{{ {context} }}}} in run: (pass it through env: and quote it)")
            if PIPE.search(step.get("run", "")) and step.get("shell", default_shell) != "bash":
                breaks.append(f"{job_id}/{name}: a pipe in run: without shell: bash (bash -e {{0}} has no pipefail)")
        scripts = "\n".join(step.get("run", "") for step in steps)
        if EVALUATES.search(scripts):
            breaks += _model_job_breaks(job_id, job, workflow, scripts)
        if "vnllmtest compare" in scripts and not {"--gate", "--require-gates"} <= set(scripts.split()):
            breaks.append(f"{job_id}: vnllmtest compare without --gate --require-gates")
    return breaks


def _model_job_breaks(job_id: str, job: dict, workflow: dict, scripts: str) -> list[str]:
    """A job that evaluates models: it queues on its runner, caches the hub, gates whole suites, writes JUnit."""
    env = {**workflow.get("env", {}), **job.get("env", {})}
    evaluating = [step for step in job["steps"] if EVALUATES.search(step.get("run", ""))]
    tokens = [step.get("env", {}).get("HF_TOKEN", "").replace(" ", "") for step in evaluating]
    caches = [step for step in job["steps"] if "actions/cache" in step.get("uses", "")]
    cached = [str(step.get("with", {}).get("path", "")) for step in caches]
    wanted = {
        "concurrency": "concurrency" in job or "concurrency" in workflow,
        "HF_HOME": "HF_HOME" in env,
        "HF_TOKEN from secrets": bool(tokens) and set(tokens) == {"${{secrets.HF_TOKEN}}"},
        "actions/cache on HF_HOME": any("env.HF_HOME" in path for path in cached),
        "--require-gates": "--require-gates" in scripts,
        "--junitxml": re.search(r"--junit-?xml", scripts) is not None,
    }
    return [f"{job_id}: runs pytest without {what}" for what, present in wanted.items() if not present]


def test_the_docs_workflows_pass_githubs_workflow_schema(tmp_path):
    texts = workflows((REPO / "docs" / "ci.md").read_text(encoding="utf-8"))
    assert len(texts) == 2  # gate-checkpoint (models) and gate-stored-run (compare --gate)
    result = schema_check(tmp_path, texts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_the_docs_workflows_follow_our_rules():
    texts = workflows((REPO / "docs" / "ci.md").read_text(encoding="utf-8"))
    assert {text: rule_breaks(text) for text in texts} == dict.fromkeys(texts, [])
    scripts = "\n".join(texts)
    assert '--model="$CHECKPOINT"' in scripts and "CHECKPOINT: ${{ inputs.checkpoint }}" in scripts
    assert "vnllmtest compare" in scripts and "gh run download" in scripts and "HF_DATASETS_OFFLINE" in scripts


def test_a_broken_workflow_fails_the_schema_and_our_rules(tmp_path):
    result = schema_check(tmp_path, [BROKEN])
    assert result.returncode == 1 and "'timeout-minute' was unexpected" in result.stdout
    assert rule_breaks(BROKEN) == [
        "evaluate: no timeout-minutes",
        "evaluate: no permissions (grant each job only what it uses)",
        "evaluate/step 1: ${{ inputs.checkpoint }} in run: (pass it through env: and quote it)",
        "evaluate: runs pytest without concurrency",
        "evaluate: runs pytest without HF_HOME",
        "evaluate: runs pytest without HF_TOKEN from secrets",
        "evaluate: runs pytest without actions/cache on HF_HOME",
        "evaluate: runs pytest without --require-gates",
        "evaluate: runs pytest without --junitxml",
        "evaluate: vnllmtest compare without --gate --require-gates",
    ]


def test_the_rules_catch_an_injection_the_schema_lets_through(tmp_path):
    """The docs' own workflow with the checkpoint pasted into the shell and --require-gates dropped: still valid
    for GitHub, so only our rules stand between it and a pipeline."""
    text = workflows((REPO / "docs" / "ci.md").read_text(encoding="utf-8"))[0]
    broken = text.replace('--model="$CHECKPOINT"', '--model="${{ github.event.inputs.checkpoint }}"')
    broken = broken.replace("gating=(--baseline \"$summary\" --require-gates)", 'gating=(--baseline "$summary")')
    assert broken.count("--require-gates") == text.count("--require-gates") - 1
    assert schema_check(tmp_path, [broken]).returncode == 0
    assert rule_breaks(broken) == [
        "evaluate/Evaluate the checkpoint: ${{ github.event.inputs.checkpoint }} in run: (pass it through env: and "
        "quote it)",
        "evaluate: runs pytest without --require-gates",
    ]


def test_a_pipe_needs_bash_and_hf_token_stays_out_of_job_env(tmp_path):
    """A step without `shell:` runs as `bash -e {0}`: `compare --gate | tee` then passes a failed gate. `||` is no
    pipe, and `shell: bash` (bash -eo pipefail) makes a pipe safe; HF_TOKEN in a workflow's env reaches every step."""
    assert schema_check(tmp_path, [UNPIPED]).returncode == 0
    assert rule_breaks(UNPIPED) == [
        "gate: HF_TOKEN in a workflow or job env: (give it only to the steps that use it)",
        "gate/step 1: a pipe in run: without shell: bash (bash -e {0} has no pipefail)",
    ]
    fixed = yaml.safe_load(UNPIPED)
    fixed["defaults"] = {"run": {"shell": "bash"}}
    fixed["jobs"]["gate"]["steps"][0]["env"] = fixed.pop("env")
    assert rule_breaks(yaml.safe_dump(fixed)) == []


def test_the_docs_workflows_exclude_the_candidate_from_its_baseline():
    """gate-stored-run's baseline is the newest passing run on main other than RUN_ID, which comes through env."""
    stored = yaml.safe_load(workflows((REPO / "docs" / "ci.md").read_text(encoding="utf-8"))[1])
    download = next(step for step in stored["jobs"]["gate"]["steps"] if "gh run download" in step.get("run", ""))
    assert download["env"] == {"RUN_ID": "${{ inputs.run_id }}"}
    assert "--limit 2" in download["run"] and "select(.databaseId != (env.RUN_ID | tonumber))" in download["run"]
