"""Settings of ``trustvl eval fair-diffusion``: the prompts, the instructions (with the classifier values they
are read as) and every knob, checked before any model is loaded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.fairness_instruction import (
    SYNTHWORLD_FAIRNESS_HEADS,
    FairnessInstruction,
    synthworld_outcome_value,
)

__all__ = ["DEFAULT_PROMPT_TEMPLATE", "FairDiffusionEvalConfig", "default_prompts", "resolve_outcomes"]

DEFAULT_PROMPT_TEMPLATE = "a photo of a {occupation}"


def default_prompts(template: str = DEFAULT_PROMPT_TEMPLATE) -> list[str]:
    """``template`` for each of SynthWorld's 8 occupations."""
    from trustvl.data_builders.synthworld import OCCUPATIONS

    return [template.format(occupation=o) for o in OCCUPATIONS]


def resolve_outcomes(
    instructions: Sequence[FairnessInstruction], heads: Mapping[str, Sequence[str]]
) -> list[FairnessInstruction]:
    """Each instruction with the classifier head and value of every group set, or one clear error.

    The head is the instruction's ``outcome_head``, else its attribute when the classifier has a head of that
    name, else SynthWorld's name for it (``gender`` -> ``gender_presentation``). A group's value is its
    ``outcome_values`` entry, else the group's name when it is a value of the head, else the value that
    SynthWorld's caption grammar gives the phrase (:func:`synthworld_outcome_value`).
    """
    out = []
    for ins in instructions:
        head = ins.outcome_head or (
            ins.attribute if ins.attribute in heads else SYNTHWORLD_FAIRNESS_HEADS.get(ins.attribute)
        )
        if head not in heads:
            raise TrustVLInputError(
                f"unknown attribute {ins.attribute!r}: the outcome classifier reads {sorted(heads)}; name one of"
                " them (or set outcome_head)"
            )
        values = {}
        for group in ins.group_names:
            given = (ins.outcome_values or {}).get(group)
            value = given or (group if group in heads[head] else synthworld_outcome_value(head, group))
            if value not in heads[head]:
                raise TrustVLInputError(
                    f"unknown concept {group!r} of attribute {ins.attribute!r}: the classifier's {head!r} values"
                    f" are {list(heads[head])}; name one, a SynthWorld phrase for one, or set outcome_values"
                )
            values[group] = value
        out.append(ins.with_outcomes(head, values))  # raises when two groups share a value
    return out


@dataclass
class FairDiffusionEvalConfig:
    """Settings of ``trustvl eval fair-diffusion`` (defaults: SynthWorld SD, the paper's guidance knobs).

    Args:
        out_dir: output folder (written atomically).
        fairness: :class:`FairnessInstruction` objects or ``--fair`` strings; default SynthWorld gender 50/50.
        prompts: default :func:`default_prompts` (8 occupations).
        occupations: the occupation each prompt should show (content check); default found in the prompt.
        subjects: what each prompt shows, for guidance texts in context (``{subject}``); default
            ``occupations``, else the SynthWorld occupation the prompt names.
        model / classifier: SD pipeline and image-classification model (default: the embedded SynthWorld ones).
        n: images per prompt (each with and without the instruction).
        momentum_scale / momentum_beta: SEGA momentum (paper 0.5 / 0.6).
        batch_size: images per pipeline call, prompts mixed.
        tolerance: a prompt is "within" when every group's share is within ± this of its target.
        n_resamples: bootstrap resamples of the intervals (0: none).
        grid_images: images per prompt shown in the report's grids.
    """

    out_dir: str
    fairness: Sequence[FairnessInstruction | str] | None = None
    prompts: Sequence[str] | None = None
    occupations: Sequence[str] | None = None
    subjects: Sequence[str] | None = None
    model: str | None = None
    classifier: str | None = None
    n: int = 64
    seed: int = 0
    num_inference_steps: int = 20
    guidance_scale: float = 8.0
    momentum_scale: float = 0.5
    momentum_beta: float = 0.6
    batch_size: int = 512
    tolerance: float = 0.1
    n_resamples: int = 1000
    grid_images: int = 16
    device: str = "auto"
    dtype: Any = None
    overwrite: bool = False
    progress: bool = True

    def plan(self, prompts: Sequence[str] = ()) -> FairGenerationPlan:
        """The instructions as a plan; ``prompts`` pair with ``subjects`` (or ``occupations``)."""
        items = self.fairness if self.fairness else [FairnessInstruction.synthworld("gender")]
        if isinstance(items, (str, FairnessInstruction)):
            items = [items]
        instructions = tuple(
            i if isinstance(i, FairnessInstruction) else FairnessInstruction.from_string(i) for i in items
        )
        given = self.subjects if self.subjects is not None else self.occupations
        subjects = dict(zip(prompts, given)) if given is not None and prompts else None
        return FairGenerationPlan(instructions, self.momentum_scale, self.momentum_beta, subjects)

    def check(self) -> tuple[FairGenerationPlan, list[str]]:
        """Every setting checked (before any model is loaded); returns the plan and the prompts."""
        prompts = list(default_prompts() if self.prompts is None else self.prompts)
        if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise TrustVLInputError(f"prompts={self.prompts!r}; expected a non-empty list of non-empty texts")
        for name in ("occupations", "subjects"):
            value = getattr(self, name)
            if value is not None and len(value) != len(prompts):
                raise TrustVLInputError(f"{len(value)} {name} for {len(prompts)} prompts; expected one each")
        plan = self.plan(prompts)
        for name in ("n", "batch_size", "num_inference_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TrustVLInputError(f"{name}={value!r} must be a positive whole number")
        plan.check(self.n, prompts)
        if not 0.0 < float(self.tolerance) < 1.0:
            raise TrustVLInputError(f"tolerance={self.tolerance!r} is outside (0, 1)")
        if not float(self.guidance_scale) > 1.0:
            raise TrustVLInputError(
                f"guidance_scale={self.guidance_scale!r} must be > 1 for semantic guidance"
            )
        if self.n_resamples != 0 and (
            isinstance(self.n_resamples, bool)
            or not isinstance(self.n_resamples, int)
            or self.n_resamples < 2
        ):
            raise TrustVLInputError(f"n_resamples={self.n_resamples!r}; expected 0 (off) or an integer >= 2")
        return plan, prompts
