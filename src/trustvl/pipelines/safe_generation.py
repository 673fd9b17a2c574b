"""Safe text-to-image generation with Safe-CLIP (SPEC §4, "Use"): swap a Stable Diffusion pipeline's text
encoder for the text tower of a Safe-CLIP model.

:func:`make_safe_pipeline` returns a pipeline of the same class whose ``text_encoder`` is the Safe-CLIP text
tower; every other component (UNet, VAE, scheduler, tokenizer, ...) is the *same object* as in the input
pipeline (diffusers' ``from_pipe``: nothing is copied, the original pipeline keeps working).

Safe-CLIP can be given as
* a ``CLIPModel`` (or a ``CLIPTextModel``) object;
* a folder or Hub id of a merged Safe-CLIP (a plain ``CLIPModel``, as ``trustvl train safe-clip`` writes it),
  or of a ``CLIPTextModel``;
* a peft adapter folder (``adapter_config.json``) over a base CLIP: the base named in the adapter config
  (``base_model_name_or_path``, or ``base=``) is loaded and the adapter merged.

Compatibility checks (a clear :class:`~trustvl.errors.TrustVLInputError` before anything is swapped): the
new tower's hidden size must equal the old encoder's (the UNet's cross-attention width); it must read the
pipeline tokenizer's ids (vocabulary size, end-of-text id, enough positions for the tokenizer's
``model_max_length``), and, when the Safe-CLIP folder ships a tokenizer, that tokenizer's vocabulary must be
the pipeline tokenizer's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from trustvl.errors import TrustVLInputError

__all__ = ["load_safe_text_encoder", "make_safe_pipeline"]


def _text_tower(model: Any) -> Any:
    """A ``CLIPTextModel`` holding the text tower of a ``CLIPModel`` (or the ``CLIPTextModel`` itself)."""
    from transformers import CLIPModel, CLIPTextModel

    if isinstance(model, CLIPTextModel):
        return model
    if isinstance(model, CLIPModel):
        encoder = CLIPTextModel(model.config.text_config)
        # transformers 5 flattened CLIPTextModel (no ``text_model`` child); older versions wrap the transformer
        getattr(encoder, "text_model", encoder).load_state_dict(model.text_model.state_dict())
        return encoder.to(model.dtype).eval()
    raise TrustVLInputError(
        f"safe_clip is a {type(model).__name__}; expected a CLIPModel, a CLIPTextModel, or a folder / Hub id of"
        " one (or of a peft adapter over a CLIP)"
    )


def _load_from_path(name: str, base: str | os.PathLike | None) -> Any:
    from transformers import AutoConfig, CLIPModel, CLIPTextModel

    from trustvl.hub.loading import load_pretrained

    path = Path(name).expanduser()
    adapter_config = path / "adapter_config.json"
    if adapter_config.is_file():
        from trustvl.modeling.lora import load_adapter, merge_lora

        base_name = base or json.loads(adapter_config.read_text(encoding="utf-8")).get(
            "base_model_name_or_path"
        )
        if not base_name:
            raise TrustVLInputError(
                f"the peft adapter {name!r} names no base model (base_model_name_or_path is empty); pass base="
            )
        base_model = load_pretrained(CLIPModel, str(base_name))
        return merge_lora(load_adapter(base_model, path))
    config = load_pretrained(AutoConfig, name)
    if getattr(config, "model_type", None) == "clip_text_model":
        return load_pretrained(CLIPTextModel, name)
    if getattr(config, "model_type", None) != "clip":
        raise TrustVLInputError(
            f"safe_clip={name!r} is a {getattr(config, 'model_type', '?')!r} model; expected a CLIP model"
            " (model_type 'clip' or 'clip_text_model') or a peft adapter folder"
        )
    return load_pretrained(CLIPModel, name)


def _tokenizer_of(name: str) -> Any:
    """The tokenizer shipped with a Safe-CLIP folder, or None."""
    path = Path(name).expanduser()
    if not path.is_dir() or not any((path / f).is_file() for f in ("tokenizer.json", "vocab.json")):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def load_safe_text_encoder(safe_clip: Any, base: str | os.PathLike | None = None) -> tuple[Any, Any]:
    """``(CLIPTextModel, tokenizer or None)`` of ``safe_clip`` (object, folder/Hub id, or peft adapter folder;
    ``base`` overrides an adapter's base model). The tokenizer is the one shipped with a folder, if any."""
    if isinstance(safe_clip, (str, os.PathLike)):
        name = os.fspath(safe_clip)
        tokenizer = _tokenizer_of(name)
        if tokenizer is None and (Path(name).expanduser() / "adapter_config.json").is_file():
            base_name = base or json.loads(
                (Path(name).expanduser() / "adapter_config.json").read_text(encoding="utf-8")
            ).get("base_model_name_or_path")
            tokenizer = _tokenizer_of(str(base_name)) if base_name else None
        return _text_tower(_load_from_path(name, base)), tokenizer
    return _text_tower(safe_clip), None


def _check_compatible(pipe: Any, encoder: Any, tokenizer: Any) -> None:
    old = getattr(pipe, "text_encoder", None)
    pipe_tok = getattr(pipe, "tokenizer", None)
    if old is None or pipe_tok is None:
        raise TrustVLInputError(
            f"{type(pipe).__name__} has no text_encoder/tokenizer; expected a Stable Diffusion-style pipeline"
        )
    new_cfg, old_cfg = encoder.config, old.config
    if new_cfg.hidden_size != old_cfg.hidden_size:
        raise TrustVLInputError(
            f"the Safe-CLIP text tower has hidden size {new_cfg.hidden_size} but the pipeline's text encoder has"
            f" {old_cfg.hidden_size} (the UNet's cross-attention width); expected the same CLIP text architecture"
        )
    cross = getattr(getattr(getattr(pipe, "unet", None), "config", None), "cross_attention_dim", None)
    if isinstance(cross, int) and cross != new_cfg.hidden_size:
        raise TrustVLInputError(
            f"the Safe-CLIP text tower has hidden size {new_cfg.hidden_size} but the UNet's cross_attention_dim"
            f" is {cross}; expected them equal"
        )
    if new_cfg.vocab_size != len(pipe_tok):
        raise TrustVLInputError(
            f"the Safe-CLIP text tower has a vocabulary of {new_cfg.vocab_size} tokens but the pipeline's"
            f" tokenizer has {len(pipe_tok)}; expected a text tower trained with the pipeline's tokenizer"
        )
    if getattr(new_cfg, "eos_token_id", None) != getattr(old_cfg, "eos_token_id", None):
        raise TrustVLInputError(
            f"the Safe-CLIP text tower's eos_token_id is {getattr(new_cfg, 'eos_token_id', None)} but the"
            f" pipeline's text encoder uses {getattr(old_cfg, 'eos_token_id', None)}; expected the same tokenizer"
        )
    max_length = getattr(pipe_tok, "model_max_length", None)
    if isinstance(max_length, int) and max_length < 10**6 and new_cfg.max_position_embeddings < max_length:
        raise TrustVLInputError(
            f"the Safe-CLIP text tower has {new_cfg.max_position_embeddings} positions but the pipeline's"
            f" tokenizer pads to {max_length}; expected at least as many positions"
        )
    if tokenizer is not None and tokenizer.get_vocab() != pipe_tok.get_vocab():
        raise TrustVLInputError(
            "the tokenizer shipped with Safe-CLIP differs from the pipeline's tokenizer (other vocabulary);"
            " expected Safe-CLIP fine-tuned from the pipeline's text encoder"
        )


def make_safe_pipeline(pipe: Any, safe_clip: Any, *, base: str | os.PathLike | None = None) -> Any:
    """``pipe`` with its text encoder replaced by Safe-CLIP's text tower (a new pipeline of the same class
    sharing every other component; see the module doc for what ``safe_clip`` may be).

    The new encoder is put on the old encoder's device and dtype.

    Raises:
        TrustVLInputError: ``pipe`` has no text encoder / tokenizer, or the tower is incompatible.
    """
    encoder, tokenizer = load_safe_text_encoder(safe_clip, base=base)
    _check_compatible(pipe, encoder, tokenizer)
    old = pipe.text_encoder
    param = next(old.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    encoder = encoder.to(device=device, dtype=dtype).eval()
    encoder.requires_grad_(False)
    new = type(pipe).from_pipe(pipe, text_encoder=encoder)
    if hasattr(new, "set_progress_bar_config") and getattr(pipe, "_progress_bar_config", None) is not None:
        new.set_progress_bar_config(**pipe._progress_bar_config)
    return new
