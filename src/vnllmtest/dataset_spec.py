"""Where a suite's records come from: the dataset (source, local copy, bundled sample, adapter and its
options), its deterministic sampling, and the leaderboard submission's hidden-answer split."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from vnllmtest.clipping import described
from vnllmtest.extensions import ADAPTERS, ExtensionError
from vnllmtest.prompt_spec import Strict


def _known_adapter(name: str) -> str:
    """A registered dataset adapter; the error (placed at the key by pydantic) lists the known ones."""
    try:
        ADAPTERS.get(name)
    except ExtensionError as exc:
        raise ValueError(str(exc)) from None
    return name


AdapterName = Annotated[str, AfterValidator(_known_adapter)]


class Sampling(Strict):
    """Deterministic subset of the records: a fraction or a count, per stratum if stratified."""

    fraction: float | None = Field(default=None, gt=0, le=1)
    count: int | None = Field(default=None, ge=1)
    seed: int = 0
    stratify: str | None = None
    proportions: dict[str, float] | None = None

    @model_validator(mode="after")
    def _one_size(self) -> Sampling:
        if (self.fraction is None) == (self.count is None):
            raise ValueError("give exactly one of 'fraction' or 'count'")
        if self.proportions is not None:
            if self.stratify is None:
                raise ValueError("'proportions' needs 'stratify' (the tag or field whose values they name)")
            if any(not 0 < share <= 1 for share in self.proportions.values()):
                raise ValueError("every proportion must lie in (0, 1]")
            if abs(sum(self.proportions.values()) - 1) > 1e-6:
                raise ValueError(f"proportions must add up to 1, got {sum(self.proportions.values()):g}")
        return self


class DatasetSpec(Strict):
    adapter: AdapterName
    source: str | None = None
    split: str | None = None
    revision: str | None = None
    local: str | None = None
    sample: str | None = None
    sampling: Sampling | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_origin(self) -> DatasetSpec:
        if not (self.source or self.local or self.sample):
            raise ValueError("give at least one of 'source', 'local' or 'sample'")
        allowed = ADAPTERS.get(self.adapter).options
        for key, value in self.options.items():
            if key not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise ValueError(f"adapter '{self.adapter}' has no option '{key}' (options: {known})")
            if value not in allowed[key]:
                raise ValueError(f"options.{key} must be one of {', '.join(allowed[key])}, got {described(value)}")
        return self


class SubmissionSpec(Strict):
    """A leaderboard's answer file for the split whose answers are not public (VMLU's test split), made by
    `pytest --submission`: where that split is (`split` of a hub dataset.source, `local` under --data-dir, a
    bundled `sample`), which scoring mode chooses the letters (`generate`, the published protocol, or
    `loglikelihood`), and what is written for a question without a readable answer ("": left blank, or "A" or
    "B", the letters every question has)."""

    split: str | None = None
    local: str | None = None
    sample: str | None = None
    letters: Literal["generate", "loglikelihood"] = "generate"
    unanswered: str = Field(default="", pattern=r"^[AB]?$")  # every question has options A and B

    @model_validator(mode="after")
    def _has_data(self) -> SubmissionSpec:
        if not (self.split or self.local or self.sample):
            raise ValueError("give at least one of 'split', 'local' or 'sample': where the questions to answer are")
        return self


HIDDEN_ANSWERS = "hidden"  # dataset.options.answers of a submission run: the records carry no answers
