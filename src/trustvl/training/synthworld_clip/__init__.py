"""Pretrain the SynthWorld CLIP from scratch (``trustvl train synthworld-clip``).

Recipe (the reproducible source of the embedded default checkpoint):

1. a CLIP-style BPE tokenizer (1,024 tokens) is trained with ``tokenizers`` on SynthWorld captions
   (context-only and appearance-naming templates of a few thousand scenes);
2. a :func:`~trustvl.modeling.synthworld_clip.build_synthworld_clip` model is trained with the symmetric
   CLIP loss through trustvl's shared training core (:func:`trustvl.training.train`), on scenes of the
   **biased train split** rendered on the fly (a scene is a pure function of its index, so data-loader
   workers render in parallel and a resumed run sees the same data);
3. each scene gets one caption: context-only with probability ``1 - appearance_caption_prob``, else one
   naming the person's appearance. The planted occupation ↔ appearance association of the train split
   is thereby learned, which the fairness audit then measures.

``world_preset="web"`` trains on the web-like mixture instead (SynthWorld-Web, docs/synthworld_web.md):
the world is :meth:`SynthWorldConfig.web` (unsafe elements, a watermark that co-occurs with one
occupation, skin tone planted harder) and the captions are alt-text-like
(:func:`~trustvl.data_builders.synthworld.web_captions.web_caption`: appearance named mostly when it is
atypical for the occupation, the unsafe element only part of the time); ``appearance_caption_prob`` is
then unused and ``web_captions`` sets the caption policy.

Evaluation is not this module's job (training sits below evaluation): ``trustvl train synthworld-clip``
passes the balanced-test-split evaluation (zero-shot occupation accuracy; MaxSkew, MinSkew and NDKL per
attribute over the occupation prompts) as ``evaluate`` and writes the model card.

Files: ``config.py`` (:class:`SynthWorldCLIPPretrainConfig`, the world presets), ``data.py`` (the captioned scene
dataset and the tokenizer's caption corpus), ``loss.py`` (the symmetric CLIP loss), ``train.py``
(:func:`pretrain_synthworld_clip`).
"""

from trustvl.training.core import WallClockLimit
from trustvl.training.synthworld_clip.config import WORLD_PRESETS, SynthWorldCLIPPretrainConfig
from trustvl.training.synthworld_clip.data import SynthWorldCaptionDataset, caption_corpus
from trustvl.training.synthworld_clip.loss import pretraining_loss
from trustvl.training.synthworld_clip.train import pretrain_synthworld_clip

__all__ = [
    "WORLD_PRESETS",
    "SynthWorldCLIPPretrainConfig",
    "SynthWorldCaptionDataset",
    "WallClockLimit",
    "caption_corpus",
    "pretrain_synthworld_clip",
    "pretraining_loss",
]
