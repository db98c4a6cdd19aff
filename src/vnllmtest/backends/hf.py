"""Transformers causal LMs: batched greedy generation and next-token scoring of option labels.

Nothing heavy happens at construction: the tokenizer and config are read (importing transformers) when a
prompt must be rendered or a token counted, the weights when the model must answer. A run answered
entirely from the cache imports neither torch nor transformers.
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import vnllmtest.backends.bundled as bundled
import vnllmtest.backends.placement as placement
import vnllmtest.hub as hub
from vnllmtest.backends.digests import folder_digest, prompt_identity
from vnllmtest.backends.base import (
    Backend,
    Generation,
    HFSettings,
    ModelError,
    Request,
    record_load,
)
from vnllmtest.backends.registry import ModelSpec
from vnllmtest.messages import Message, plain_prompt
from vnllmtest.thinking import cut_at_stop, opens_thinking

if TYPE_CHECKING:
    import torch

_HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
# Below this many shared tokens a second forward pass costs more than it saves.
MIN_SHARED_PREFIX = 8
# Layers whose cache can hold a shared prefix followed by padding (not recurrent or linear ones).
_SHARABLE_LAYERS = {"full_attention", "sliding_attention"}
# What `_read` sets, on first use of any of them (see `__getattr__`).
_READ_ATTRIBUTES = frozenset(
    {"tokenizer", "vision_language", "prefix_sharing", "sliding_window", "generation_defaults", "chat_template",
     "end_token_ids", "_row_end_ids"}
)


class HFBackend(Backend):
    """Fingerprint and prompt identity at construction (file digests, no transformers); tokenizer and
    config on first use, weights when the model must answer (see the module's docstring)."""

    supports_loglikelihood = True

    def __init__(self, spec: ModelSpec, settings: HFSettings):
        self._read_error: ModelError | None = None
        self.label = spec.label
        self.spec = spec
        self.folder, source_id = _resolve_folder(spec)
        self.placement = placement.plan(settings)
        self.device = self.placement.device
        self.device_name = placement.describe_device(self.device)
        self.trust_remote_code = bool(spec.alias and spec.alias.trust_remote_code) or settings.trust_remote_code
        adapter = f"|adapter=folder:{folder_digest(Path(spec.adapter))}" if spec.adapter else ""
        ends = spec.alias.end_tokens if spec.alias else ()  # where generation stops
        end_tokens = f"|end_tokens={json.dumps(list(ends), ensure_ascii=False)}" if ends else ""
        self.fingerprint = f"{source_id}|{self.placement.summary}{adapter}{end_tokens}"
        self.prompt_identity = prompt_identity(self.folder, self._template_choice(), self.trust_remote_code)
        self._label_token_ids: dict[tuple[tuple[str, ...], str], list[list[int]]] = {}
        self._model = None
        self._load_error: ModelError | None = None
        if _needs_transformers_to_check(self.folder):
            self._read()  # an unreadable config, or one that names code of its own, fails here, as it always did

    def __getattr__(self, name: str) -> Any:
        """The tokenizer and what is read with it (`_READ_ATTRIBUTES`), read on first use."""
        if name not in _READ_ATTRIBUTES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self._read()
        return object.__getattribute__(self, name)

    @property
    def plain_prompts(self) -> bool:  # type: ignore[override]
        return self._template_choice() == "plain" or self.chat_template is None

    def _read(self) -> None:
        """Read config, tokenizer and generation defaults (importing transformers), once; any failure is kept
        as a ModelError (an item's error, never an escape from `__getattr__` or the run)."""
        if self._read_error is not None:
            raise self._read_error
        if "tokenizer" in self.__dict__:
            return
        try:
            self._read_files()
        except ModelError as exc:
            self._read_error = exc
            raise
        except Exception as exc:  # config, tokenizer and template files come in many formats, each with its own errors
            self._read_error = ModelError(f"model '{self.spec.text}': cannot read {self.folder}: {_explain(exc)}")
            raise self._read_error from None

    def _read_files(self) -> None:
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig

        config = AutoConfig.from_pretrained(self.folder, trust_remote_code=self.trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(self.folder, trust_remote_code=self.trust_remote_code)
        self.vision_language = _is_vision_language(self.spec, config)
        self.prefix_sharing = (
            not self.vision_language
            and set(getattr(config, "layer_types", None) or ["full_attention"]) <= _SHARABLE_LAYERS
        )
        self.sliding_window = getattr(config, "sliding_window", None)
        try:
            self.generation_defaults = GenerationConfig.from_pretrained(self.folder)
        except OSError:
            self.generation_defaults = GenerationConfig()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.chat_template = self._chat_template(tokenizer)
        self.end_token_ids = self._end_token_ids(tokenizer)
        # A row that stops early (end of turn, or a stop string) is padded after it.
        self._row_end_ids = {*self.end_token_ids, tokenizer.pad_token_id}
        self.tokenizer = tokenizer

    def _template_choice(self) -> str:
        """The alias's chat_template: "model" (the model's own), "plain", or an inline Jinja template."""
        return self.spec.alias.chat_template if self.spec.alias else "model"

    def _chat_template(self, tokenizer: Any) -> str | None:
        """The alias's choice: the model's own template (the tokenizer's, else the processor's), none
        (plain completion prompts), or an inline Jinja template."""
        choice = self._template_choice()
        if choice == "plain":
            return None
        if choice != "model":
            return choice
        own = getattr(tokenizer, "chat_template", None)
        if own is None and (self.folder / "chat_template.jinja").is_file():  # a processor's template
            own = (self.folder / "chat_template.jinja").read_text(encoding="utf-8")
        if own is None and (self.folder / "chat_template.json").is_file():  # the older processor format
            own = self._processor_template(self.folder / "chat_template.json")
        return own

    def _processor_template(self, path: Path) -> str | None:
        """The `chat_template` of a processor's chat_template.json; a ModelError naming the file when it
        is not a JSON object whose chat_template is a text."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"model '{self.spec.text}': cannot read {path}: {type(exc).__name__}: {exc}") from None
        template = document.get("chat_template") if isinstance(document, dict) else None
        if not isinstance(document, dict) or not isinstance(template, str | None):
            raise ModelError(
                f"model '{self.spec.text}': {path}: expected a JSON object with a text 'chat_template', "
                f"got {type(template if isinstance(document, dict) else document).__name__}"
            )
        return template

    @property
    def model(self):
        """The weights, loaded (and logged in LOAD_LOG) on first use; a failed load is not retried."""
        if self._load_error is not None:
            raise self._load_error
        if self._model is None:
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # our own progress bar is on screen
            started = time.perf_counter()
            try:
                model = self._load()
            except Exception as exc:  # safetensors, torch, bitsandbytes and peft raise many types here
                self._load_error = ModelError(f"model '{self.spec.text}': cannot load {self.folder}: {_explain(exc)}")
                raise self._load_error from None
            self._model = model.eval()
            record_load(self, time.perf_counter() - started)
        return self._model

    def _load(self):
        from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

        auto_class = AutoModelForImageTextToText if self.vision_language else AutoModelForCausalLM
        model = auto_class.from_pretrained(
            self.folder, trust_remote_code=self.trust_remote_code, **self.placement.load_kwargs()
        )
        if not self.placement.placed_by_loader:
            model = model.to(self.device)
        if self.spec.adapter:
            try:
                from peft import PeftModel
            except ImportError:
                raise ModelError("LoRA adapters need peft: pip install 'vnllmtest[lora]'") from None
            model = PeftModel.from_pretrained(model, self.spec.adapter)
        return model

    def _end_token_ids(self, tokenizer: Any) -> list[int]:
        ids = {tokenizer.eos_token_id}
        configured = self.generation_defaults.eos_token_id
        ids.update(configured if isinstance(configured, list) else [configured])
        for token in self.spec.alias.end_tokens if self.spec.alias else ():
            token_id = tokenizer.convert_tokens_to_ids(token)
            if token_id is not None and token_id != tokenizer.unk_token_id:
                ids.add(token_id)
        return sorted(i for i in ids if i is not None)

    def format_prompt(self, messages: Sequence[Message], thinking: bool = False) -> str:
        if self.chat_template is None:
            return plain_prompt(messages)
        return self.tokenizer.apply_chat_template(
            list(messages),
            chat_template=self.chat_template,
            tokenize=False,
            add_generation_prompt=True,
            enable_thinking=thinking,
        )

    def prompt_length(self, prompt: str) -> int:
        return len(self.tokenizer(prompt, add_special_tokens=False).input_ids)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        import torch

        with torch.inference_mode():
            return self._generate(requests)

    def _generate(self, requests: Sequence[Request]) -> list[Generation]:
        from transformers import GenerationConfig

        input_ids, attention_mask = self._left_padded(self._token_rows([request.prompt for request in requests]))
        # A thinking model must not stop at a stop string inside its thinking: the answer is cut afterwards.
        thinking = any(request.thinking for request in requests)
        stops = [] if thinking else sorted({stop for request in requests for stop in request.stop})
        config = GenerationConfig(
            max_new_tokens=max(request.max_new_tokens for request in requests),
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.end_token_ids,
            stop_strings=stops or None,
        )
        output = self.model.generate(
            input_ids=input_ids, attention_mask=attention_mask, generation_config=config, tokenizer=self.tokenizer
        )
        new_tokens = output[:, input_ids.shape[1] :].tolist()
        return [self._decode(tokens, request) for tokens, request in zip(new_tokens, requests)]

    def _decode(self, tokens: list[int], request: Request) -> Generation:
        """Text up to the end of the turn or the first stop string."""
        end = next((i for i, token in enumerate(tokens) if token in self._row_end_ids), None)
        finish = "stop" if end is not None and end < request.max_new_tokens else "length"
        kept = tokens[: min(end if end is not None else len(tokens), request.max_new_tokens)]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        text, stopped = cut_at_stop(text, request.stop, opens_thinking(request.prompt))
        if stopped:
            finish = "stop"
        return Generation(text=text, finish_reason=finish, new_tokens=len(kept))

    def score_choices(self, requests: Sequence[Request]) -> list[dict[str, float]]:
        """Next-token log-probabilities of each label, from one forward pass per batch. The prompts'
        common token prefix (instruction, few-shot examples) is run once and its cache shared."""
        import torch

        with torch.inference_mode():
            return self._score_choices(requests)

    def _score_choices(self, requests: Sequence[Request]) -> list[dict[str, float]]:
        import torch

        rows = self._token_rows([request.prompt for request in requests])
        shared = self._shareable_prefix(rows)
        input_ids, attention_mask = self._left_padded([row[shared:] for row in rows])
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if shared:
            prefix = torch.tensor([rows[0][:shared]], device=self.device)
            output = self.model(input_ids=prefix, use_cache=True, logits_to_keep=1)
            cache = output.cache if hasattr(output, "cache") else output.past_key_values
            cache.batch_repeat_interleave(len(rows))
            inputs[_cache_keyword(self.model)] = cache
            inputs["attention_mask"] = torch.cat([attention_mask.new_ones(len(rows), shared), attention_mask], dim=1)
        if not self.vision_language:  # vision-language models derive their (multi-axis) positions themselves
            inputs["position_ids"] = shared + (attention_mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(**inputs, logits_to_keep=1).logits[:, -1, :]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        scores = []
        for row, request in enumerate(requests):
            variants = self._label_ids(request)
            scores.append(
                {
                    label: torch.logsumexp(logprobs[row, ids], dim=0).item()
                    for label, ids in zip(request.labels, variants)
                }
            )
        return scores

    def _token_rows(self, prompts: Sequence[str]) -> list[list[int]]:
        bos = self.tokenizer.bos_token
        has_bos = bool(bos) and prompts[0].startswith(bos)
        return self.tokenizer(list(prompts), add_special_tokens=not has_bos).input_ids

    def _shareable_prefix(self, rows: list[list[int]]) -> int:
        """How many leading tokens all rows share and can take from one cached run (0: none). Each
        row keeps at least one token of its own; the padding that then sits between prefix and
        suffix must stay inside a sliding attention window."""
        if not self.prefix_sharing or len(rows) < 2:
            return 0
        shared = min(len(os.path.commonprefix(rows)), min(map(len, rows)) - 1)
        longest = max(map(len, rows))
        if shared < MIN_SHARED_PREFIX or (self.sliding_window and longest >= self.sliding_window - 1):
            return 0
        return shared

    def _left_padded(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        width = max(map(len, rows))
        input_ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for index, row in enumerate(rows):
            input_ids[index, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[index, width - len(row) :] = 1
        return input_ids.to(self.device), attention_mask.to(self.device)

    def _label_ids(self, request: Request) -> list[list[int]]:
        """For each option label, the first tokens of its spellings ("A", " A": scoring.label_tokens)."""
        key = (request.labels, request.label_tokens)
        if key not in self._label_token_ids:
            first = [
                {self.tokenizer(text, add_special_tokens=False).input_ids[0] for text in request.label_spellings(label)}
                for label in request.labels
            ]
            self._label_token_ids[key] = [sorted(ids) for ids in first]
        return self._label_token_ids[key]

    def close(self) -> None:
        if self._model is None:
            return
        self._model = None
        gc.collect()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def _cache_keyword(model: Any) -> str:
    """transformers 5.2x names the forward pass's cache argument `cache`; earlier releases `past_key_values`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _is_vision_language(spec: ModelSpec, config: Any) -> bool:
    """Image-text-to-text checkpoints (Qwen3.5, Qwen3-VL) load through their own auto class and
    run text-only; the alias can say so, otherwise the config's vision tower tells."""
    declared = spec.alias.model_class if spec.alias else "auto"
    if declared != "auto":
        return declared == "image_text_to_text"
    return getattr(config, "vision_config", None) is not None


def _explain(exc: Exception) -> str:
    """The error, with the risk spelled out when a checkpoint wants to run its own code."""
    message = f"{type(exc).__name__}: {exc}"
    if "trust_remote_code" in str(exc):
        return (
            f"{message}. This checkpoint ships its own Python code, which would run on this machine with "
            "your permissions; vnllmtest runs it only when you allow it: --trust-remote-code, or "
            "trust_remote_code: true in the model's alias"
        )
    return message


def _resolve_folder(spec: ModelSpec) -> tuple[Path, str]:
    """A local folder holding the model, and a source id for its fingerprint."""
    if spec.alias and spec.alias.bundled:
        folder, digest = bundled.materialize(spec.alias.bundled)
        return folder, f"bundled:{spec.alias.bundled}:{digest}"
    path = Path(spec.target)
    if path.is_dir():
        return path, f"folder:{folder_digest(path)}"
    try:
        folder = hub.fetch_model(spec.target, _HUB_FILES)
    except LookupError as exc:
        raise ModelError(f"model '{spec.text}': {exc}") from None
    return folder, f"hub:{spec.target}@{folder.name}"


def _needs_transformers_to_check(folder: Path) -> bool:
    """Whether only transformers can tell if the folder loads: its config.json is missing or not a JSON
    object, or its config or tokenizer config maps classes to code of their own (`auto_map`)."""
    configs = []
    for name in ("config.json", "tokenizer_config.json"):
        try:
            configs.append(json.loads((folder / name).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            configs.append(None if name == "config.json" else {})
    return not all(isinstance(config, dict) and "auto_map" not in config for config in configs)
