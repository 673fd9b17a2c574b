"""Settings of ``trustvl eval fair-diffusion``: the prompts, the instructions (with the classifier values they
are read as) and every knob, checked before any model is loaded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.fair_diffusion import FairGenerationPlan
from trustvl.pipelines.fair_guidance_config import FAIR_FLAGS, FairGuidanceConfig
from trustvl.pipelines.fairness_instruction import (
    SYNTHWORLD_FAIRNESS_HEADS,
    FairnessInstruction,
    synthworld_outcome_value,
)
from trustvl.utils.options import (
    device_option,
    dtype_option,
    overwrite_option,
    progress_option,
    resamples_option,
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
    """Settings of ``trustvl eval fair-diffusion`` (defaults: SynthWorld SD, gender 50/50, the paper's guidance
    knobs); each field is a flag, its help below.

    ``fairness`` (Python only): :class:`FairnessInstruction` objects or ``--fair`` strings; when given they
    replace ``guidance``'s ``--fair``/``--fair-file`` instructions. With neither, SynthWorld gender 50/50 with
    ``guidance``'s knobs.
    """

    out_dir: str = field(metadata={"help": "output folder (written atomically)", "aliases": ["--out"]})
    fairness: Sequence[FairnessInstruction | str] | None = field(default=None, metadata={"cli": False})
    guidance: FairGuidanceConfig = field(default_factory=FairGuidanceConfig, metadata={"flags": FAIR_FLAGS})
    prompts: list[str] | None = field(
        default=None,
        metadata={"help": "prompts; None: 'a photo of a {occupation}' for the 8 SynthWorld occupations"},
    )
    occupations: list[str] | None = field(
        default=None,
        metadata={
            "help": "occupation each prompt shows, for the content check; None: the one the prompt names"
        },
    )
    subjects: list[str] | None = field(
        default=None,
        metadata={
            "help": "what each prompt shows, for guidance in context ({subject}); None: the occupations, else"
            " the SynthWorld occupation the prompt names",
            "aliases": ["--fair-subject"],
            "action": "extend",
            "metavar": "TEXT",
        },
    )
    model: str | None = field(
        default=None, metadata={"help": "SD pipeline Hub id or folder; None: the embedded SynthWorld SD"}
    )
    classifier: str | None = field(
        default=None, metadata={"help": "image-classification model; None: the embedded outcome classifier"}
    )
    n: int = field(
        default=64, metadata={"help": "images per prompt (each with and without guidance)", "min": 1}
    )
    seed: int = field(
        default=0, metadata={"help": "image i of a prompt uses seed SEED+i", "min": 0, "max": None}
    )
    num_inference_steps: int = field(
        default=20, metadata={"help": "inference steps", "aliases": ["--steps"], "min": 1, "max": 10_000}
    )
    guidance_scale: float = field(default=8.0, metadata={"help": "guidance scale", "aliases": ["--guidance"]})
    batch_size: int = field(
        default=512, metadata={"help": "images per pipeline call, prompts mixed", "min": 1}
    )
    tolerance: float = field(
        default=0.1,
        metadata={
            "help": "a prompt is within when every share is within ± this of its target",
            "min": 0.0,
            "max": 1.0,
        },
    )
    n_resamples: int = resamples_option(1000, what="image")
    grid_images: int = field(
        default=16, metadata={"help": "images per prompt in the report's grids", "min": 0}
    )
    device: str = device_option()
    dtype: str | None = dtype_option()
    overwrite: bool = overwrite_option("output folder")
    progress: bool = progress_option()

    def instructions(self) -> list[FairnessInstruction]:
        """``fairness``, else ``guidance``'s instructions, else SynthWorld gender 50/50 with its knobs."""
        items = self.fairness
        if not items:
            if self.guidance.given:
                return self.guidance.instructions()
            knobs = self.guidance.knobs()
            return [FairnessInstruction.synthworld("gender", contextual=self.guidance.fair_context, **knobs)]
        if isinstance(items, (str, FairnessInstruction)):
            items = [items]
        return [
            i if isinstance(i, FairnessInstruction) else FairnessInstruction.from_string(i) for i in items
        ]

    def plan(self, prompts: Sequence[str] = ()) -> FairGenerationPlan:
        """The instructions as a plan; ``prompts`` pair with ``subjects`` (or ``occupations``)."""
        given = self.subjects if self.subjects is not None else self.occupations
        return self.guidance.plan_of(self.instructions(), prompts, given if prompts else None)

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
