"""vnllmtest's command-line options, read and checked once (at pytest_configure) into `Settings`: every
other module of the plugin reads the options from there, never from the pytest config."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from vnllmtest.backends import HFSettings, ModelError, ModelSpec, ServerSettings, parse_model_specs
from vnllmtest.backends.registry import Alias, aliases_from_file, load_aliases
from vnllmtest.extensions import METRICS, ExtensionError
from vnllmtest.loaders import DataOptions
from vnllmtest.plugin.options import DEFAULT_JUDGE, DEFAULT_MODEL

if TYPE_CHECKING:
    from vnllmtest.grading import MetricScorer

AT_LEAST = {"limit": 1, "max_new_tokens": 1, "bootstrap_iterations": 1, "concurrency": 1, "shard_size": 1}
AT_LEAST |= {"show_misses": 0, "show_flips": 0}


@dataclass(frozen=True)
class Settings:
    """One session's options, checked: the models, how data is read and models run, where results go."""

    argv: tuple[str, ...]  # the invocation's arguments, for the manifest
    specs: tuple[ModelSpec, ...]  # the models under test (--model)
    judge_specs: tuple[ModelSpec, ...]  # the judges (--judge), labelled "judge:<label>"
    scorer_models: Mapping[str, str]  # --scorer-model METRIC=SPEC, by metric
    aliases: Mapping[str, Alias]
    data: DataOptions
    hf: HFSettings
    server: ServerSettings
    thinking: bool | None  # --thinking; None: each suite's own setting
    max_new_tokens: int | None
    batch_size: int | str  # a number, or "auto"
    cache_dir: Path | None  # None under --no-cache
    refresh_cache: bool
    report_dir: str  # as given: usage errors name it so
    baseline: Path | None
    baseline_model: str | None
    bootstrap_iterations: int
    strict_items: bool
    require_gates: bool
    submission: bool  # --submission: answer the suites' hidden-answer splits for a leaderboard
    show_misses: int
    show_flips: int
    shard_size: int | None

    def metric_scorer(self, name: str) -> MetricScorer:
        """The scorer of model-graded metric `name`; ModelError when its model spec cannot be read."""
        from vnllmtest.grading import metric_scorer

        return metric_scorer(name, self.scorer_models.get(name), self.aliases)

    def manifest_options(self) -> dict[str, Any]:
        """The options as the manifest records them."""
        return {
            "argv": list(self.argv),
            "data": self.data.mode,
            "data_dir": str(self.data.data_dir) if self.data.data_dir else None,
            "allow_outside_data": self.data.allow_outside,
            "limit": self.data.limit,
            "batch_size": self.batch_size,
            "concurrency": self.server.concurrency,
            "request_timeout": self.server.timeout,
            "max_reply_bytes": self.server.max_reply_bytes,
            "max_new_tokens": self.max_new_tokens,
            "device": self.hf.device,
            "dtype": self.hf.dtype,
            "cache": self.cache_dir is not None,
            "refresh_cache": self.refresh_cache,
            "quant": self.hf.quant,
            "max_memory": self.hf.max_memory,
            "thinking": None if self.thinking is None else ("on" if self.thinking else "off"),
            "trust_remote_code": self.hf.trust_remote_code,
            "strict_items": self.strict_items,
            "require_gates": self.require_gates,
            "submission": self.submission,
            "bootstrap_iterations": self.bootstrap_iterations,
            "bootstrap_seed": 0,
        }


def read_settings(config: pytest.Config) -> Settings:
    """The session's settings; pytest.UsageError for values that cannot work."""
    option = config.getoption
    for name, least in AT_LEAST.items():
        value = option(name)
        if value is not None and value < least:
            raise pytest.UsageError(f"--{name.replace('_', '-')} must be at least {least}, got {value}")
    try:
        aliases = model_aliases(config.rootpath, option("aliases"))
        specs = parse_model_specs(option("model") or [DEFAULT_MODEL], aliases)
        judges = parse_model_specs(option("judge") or [DEFAULT_JUDGE], aliases)
        scorer_models = _scorer_models(option("scorer_model"), aliases)
    except ModelError as exc:
        raise pytest.UsageError(str(exc)) from None
    baseline = option("baseline")
    if option("submission") and baseline:
        raise pytest.UsageError("--submission answers questions whose answers are hidden: there is nothing to "
                                "compare with --baseline")
    return Settings(
        argv=tuple(config.invocation_params.args),
        specs=tuple(specs),
        judge_specs=tuple(dataclasses.replace(judge, label=f"judge:{judge.label}") for judge in judges),
        scorer_models=scorer_models,
        aliases=aliases,
        data=DataOptions.from_environment(
            option("data"), option("data_dir"), option("limit"), option("allow_outside_data")
        ),
        hf=HFSettings(
            device=option("device"),
            dtype=option("dtype"),
            quant=option("quant"),
            max_memory=option("max_memory"),
            trust_remote_code=option("trust_remote_code"),
        ),
        server=ServerSettings(
            api_key_env=option("api_key_env"),
            concurrency=option("concurrency"),
            timeout=option("request_timeout"),
            retries=max(0, option("retries")),
            max_reply_bytes=option("max_reply_bytes"),
        ),
        thinking=None if option("thinking") is None else option("thinking") == "on",
        max_new_tokens=option("max_new_tokens"),
        batch_size=option("batch_size"),
        cache_dir=None if option("no_cache") else Path(option("cache_dir") or config.rootpath / ".vnllmtest-cache"),
        refresh_cache=option("refresh_cache"),
        report_dir=option("report_dir"),
        baseline=Path(baseline) if baseline else None,
        baseline_model=option("baseline_model"),
        bootstrap_iterations=option("bootstrap_iterations"),
        strict_items=option("strict_items"),
        require_gates=option("require_gates"),
        submission=option("submission"),
        show_misses=option("show_misses"),
        show_flips=option("show_flips"),
        shard_size=option("shard_size"),
    )


def _scorer_models(values: list[str], aliases: dict[str, Alias]) -> dict[str, str]:
    """--scorer-model METRIC=SPEC values by metric, each naming a model-graded metric and a readable spec."""
    found: dict[str, str] = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not text:
            raise ModelError(f"--scorer-model {value!r}: expected METRIC=SPEC")
        try:
            grader = METRICS.get(name).grader
        except ExtensionError as exc:
            raise ModelError(f"--scorer-model {value!r}: {exc}") from None
        if grader is None:
            raise ModelError(f"--scorer-model {value!r}: metric '{name}' is not model-graded")
        parse_model_specs([text], aliases)
        found[name] = text
    return found


def model_aliases(root: Path, aliases_file: str | None) -> dict[str, Alias]:
    """Packaged aliases, then [tool.vnllmtest.aliases] of the rootdir's pyproject.toml, then --aliases."""
    overrides = []
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("vnllmtest", {})
        except tomllib.TOMLDecodeError as exc:
            raise pytest.UsageError(f"{pyproject}: {exc}") from None
        if "aliases" in table:
            overrides.append((f"{pyproject} [tool.vnllmtest.aliases]", table["aliases"]))
    if aliases_file:
        overrides.append(aliases_from_file(Path(aliases_file)))
    return load_aliases(overrides)
