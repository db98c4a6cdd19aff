"""Each item's exact prompt, rendered through the backend or read back from the prediction cache.

A backend whose rendering is costly (a tokenizer to load: it declares a `prompt_identity`) has its prompts
cached, with what a token budget cut from them, under a digest of everything they are rendered from: its
prompt identity (tokenizer files, chat template), the thinking switch and the chat messages the suite's
templates make of the record (cut first to the budget's character bound); under a budget also the prompt
spec, the record fields the templates read, the suite's constants, and the characters and words that bound
cut (the budget's Truncation record counts them). That digest (`Request.source`) keys
the predictions too, so a run the cache answers renders no chat template and counts no token.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

from vnllmtest.backends.base import Backend, ModelError
from vnllmtest.budget import BudgetError, Truncation, bounded, fit
from vnllmtest.cache import PredictionCache, cache_key
from vnllmtest.loaders import Item
from vnllmtest.messages import Message
from vnllmtest.prompts import PromptBuilder, PromptError, template_variables
from vnllmtest.suite import SuiteSpec

PROMPTS = "prompts"  # the cache's table of rendered prompts, and the kind of their keys
_TEXT_FIELDS = ("field", "policy")  # of a Truncation record; the others are whole numbers


@dataclass(frozen=True)
class Rendered:
    """One item's prompt, what its budget cut, and the digest that keys it in the cache (None: its text)."""

    prompt: str
    truncation: Truncation | None
    source: str | None = None


@dataclass(frozen=True)
class NotRendered:
    """Why an item has no prompt: `failure_class` is "bad_prompt" (template, budget) or "model_error"."""

    failure_class: str
    message: str


def render_prompts(
    spec: SuiteSpec,
    backend: Backend,
    builder: PromptBuilder,
    constants: Mapping[str, Any],
    items: Sequence[Item],
    thinking: bool,
    cache: PredictionCache | None,
    refresh: bool = False,
) -> list[Rendered | NotRendered]:
    """The items' prompts, in order. Prompts of a backend with a `prompt_identity` are taken from `cache`
    where it holds them (unless `refresh`), and stored there once rendered."""
    if backend.prompt_identity is None or cache is None:
        return [_render(spec, backend, builder, item, thinking) for item in items]
    sources: list[str | NotRendered] = []
    for item in items:
        try:
            sources.append(_source(spec, backend.prompt_identity, builder, constants, item, thinking))
        except PromptError as exc:
            sources.append(NotRendered("bad_prompt", str(exc)))
    keys = {s: cache_key(PROMPTS, PROMPTS, source=s) for s in sources if isinstance(s, str)}
    stored = {} if refresh else cache.get_many(keys.values(), PROMPTS)
    results: list[Rendered | NotRendered] = []
    fresh: dict[str, dict[str, Any]] = {}
    for item, source in zip(items, sources):
        if isinstance(source, NotRendered):
            results.append(source)
            continue
        found = _from_entry(stored[keys[source]], source, cache) if keys[source] in stored else None
        if found is None:
            found = _render(spec, backend, builder, item, thinking, source)
            if isinstance(found, Rendered):
                truncation = asdict(found.truncation) if found.truncation else None
                fresh[keys[source]] = {"prompt": found.prompt, "truncation": truncation}
        results.append(found)
    if fresh:
        cache.put_many(fresh, PROMPTS)
    return results


def _source(
    spec: SuiteSpec, identity: str, builder: PromptBuilder, constants: Mapping[str, Any], item: Item, thinking: bool
) -> str:
    """The digest of what the item's prompt is rendered from (the module's docstring); raises PromptError."""
    budget = spec.prompt.budget
    fields, chars_cut, words_cut = bounded(item.fields, budget) if budget is not None else (item.fields, 0, 0)
    material: dict[str, Any] = {"identity": identity, "thinking": thinking, "messages": builder.messages(item, fields)}
    if budget is not None:
        read = template_variables(spec.prompt)
        material["cut"] = [chars_cut, words_cut]  # the Truncation record counts the text beyond the bound too
        material["prompt"] = spec.prompt.model_dump(mode="json")
        material["fields"] = {name: value for name, value in fields.items() if name in read}
        material["constants"] = {name: value for name, value in constants.items() if name in read}
    text = json.dumps(material, ensure_ascii=False, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _render(
    spec: SuiteSpec, backend: Backend, builder: PromptBuilder, item: Item, thinking: bool, source: str | None = None
) -> Rendered | NotRendered:
    """The exact prompt text for `item` through the backend, shortened to the suite's token budget when it
    has one; or what stopped it: a template or budget problem, or a tokenizer that cannot load."""
    try:
        return _rendered(spec, backend, builder, item, thinking, source)
    except (PromptError, BudgetError) as exc:
        return NotRendered("bad_prompt", str(exc))
    except ModelError as exc:
        return NotRendered("model_error", str(exc))


def _rendered(
    spec: SuiteSpec, backend: Backend, builder: PromptBuilder, item: Item, thinking: bool, source: str | None
) -> Rendered:
    fields, truncation = item.fields, None

    def prompt(messages: list[Message]) -> str:
        return backend.format_prompt(messages, thinking)

    if spec.prompt.budget is not None:

        def measure(candidate: Any) -> int:
            return backend.prompt_length(prompt(builder.messages(item, candidate)))

        fields, truncation = fit(item.fields, spec.prompt.budget, measure)
    return Rendered(prompt(builder.messages(item, fields)), truncation, source)


def _from_entry(entry: dict[str, Any], source: str, cache: PredictionCache) -> Rendered | None:
    """A cached prompt, or None (rendered again, and counted) when the entry is malformed."""
    prompt, truncation = entry.get("prompt"), entry.get("truncation")
    if isinstance(prompt, str) and (truncation is None or _is_truncation(truncation)):
        return Rendered(prompt, Truncation(**truncation) if truncation is not None else None, source)
    cache.malformed += 1
    return None


def _is_truncation(value: Any) -> bool:
    """Whether a cached value is a Truncation record as stored: every field, texts and whole numbers."""
    names = {field.name for field in dataclass_fields(Truncation)}
    return (
        isinstance(value, dict)
        and value.keys() == names
        and all(isinstance(v, str) if k in _TEXT_FIELDS else type(v) is int for k, v in value.items())
    )
