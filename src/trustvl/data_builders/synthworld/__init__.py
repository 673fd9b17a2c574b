"""SynthWorld: trustvl's procedurally rendered offline world in which the truth is known (SPEC §6).

Each scene shows a person at work. The occupation is recognisable from context only (setting, attire,
held object); the person's appearance (skin tone, gender presentation, age, body type) is labelled,
with the exact person mask, and can be changed without touching a single context pixel. The train
split plants an occupation <-> appearance association (default: each occupation prefers one skin tone
with probability 0.85); the test split is balanced. Optional: a spurious artefact (RaVL) and unsafe
elements (Safe-CLIP).

Quick start::

    from trustvl.data_builders.synthworld import SynthWorldConfig, SynthWorldRenderer, build_synthworld_dataset

    r = SynthWorldRenderer(SynthWorldConfig(resolution=64), seed=0)
    scene = r.scene("train", 0)                    # image, person_mask, boxes, spec
    cf = r.rerender_person(scene.spec, skin_tone="very dark")   # counterfactual
    build_synthworld_dataset("synthworld", n_train=8000, n_test=2000)   # HF dataset folder
"""

from trustvl.data_builders.synthworld.captions import (
    appearance_caption,
    appearance_phrase,
    caption_variants,
    occupation_prompt,
    parse_appearance,
    sample_caption,
)
from trustvl.data_builders.synthworld.config import (
    ATTRIBUTE_NAMES,
    ATTRIBUTES,
    DEFAULT_STRENGTH,
    DEFAULT_UNSAFE_KINDS,
    HELD_OBJECTS,
    KNOWN_LEVELS,
    OCCUPATIONS,
    SETTINGS,
    UNSAFE_KINDS,
    SpuriousConfig,
    SynthWorldConfig,
    UnsafeConfig,
    spurious_cramers_v,
)
from trustvl.data_builders.synthworld.dataset import build_synthworld_dataset, synthworld_features
from trustvl.data_builders.synthworld.oracle import (
    OracleInpainter,
    OracleSegmenter,
    OracleTextToImage,
    spec_for,
)
from trustvl.data_builders.synthworld.render import (
    SKIN_TONES,
    ArtefactSpec,
    PersonSpec,
    RenderedBatch,
    RenderedScene,
    SceneSpec,
    SynthWorldRenderer,
    person_envelope,
    render_spec,
    unsafe_subtype,
    with_attributes,
)
from trustvl.data_builders.synthworld.web_captions import WebCaptionPolicy, web_caption

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_NAMES",
    "ArtefactSpec",
    "DEFAULT_STRENGTH",
    "HELD_OBJECTS",
    "KNOWN_LEVELS",
    "OCCUPATIONS",
    "OracleInpainter",
    "OracleSegmenter",
    "OracleTextToImage",
    "PersonSpec",
    "RenderedBatch",
    "RenderedScene",
    "SETTINGS",
    "SKIN_TONES",
    "SceneSpec",
    "SpuriousConfig",
    "SynthWorldConfig",
    "SynthWorldRenderer",
    "DEFAULT_UNSAFE_KINDS",
    "UNSAFE_KINDS",
    "UnsafeConfig",
    "WebCaptionPolicy",
    "appearance_caption",
    "appearance_phrase",
    "build_synthworld_dataset",
    "caption_variants",
    "occupation_prompt",
    "parse_appearance",
    "person_envelope",
    "render_spec",
    "sample_caption",
    "spec_for",
    "spurious_cramers_v",
    "synthworld_features",
    "unsafe_subtype",
    "web_caption",
    "with_attributes",
]
