"""The Fair Diffusion settings of a generation job (``trustvl generate``, ``trustvl eval fair-diffusion``):
which fairness instructions (``--fair``, ``--fair-file``), the guidance knobs of each and the SEGA momentum.

Every default is the field default of :class:`~trustvl.pipelines.fairness_instruction.FairnessInstruction`
(the paper's, SPEC §5) or :data:`~trustvl.pipelines.fairness_instruction.FAIR_DIFFUSION_MOMENTUM`; this module
restates none of them. A job configuration holds one as a nested field whose flags keep their names
(``--fair-scale``...)::

    guidance: FairGuidanceConfig = field(default_factory=FairGuidanceConfig, metadata={"flags": FAIR_FLAGS})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.pipelines.fairness_instruction import (
    FAIR_DIFFUSION_MOMENTUM,
    FairnessInstruction,
    instructions_from_file,
)

__all__ = ["FAIR_FLAGS", "FairGuidanceConfig"]

_INSTRUCTION = {f.name: f.default for f in dataclasses.fields(FairnessInstruction)}


@dataclass
class FairGuidanceConfig:
    """Fairness instructions from ``--fair`` strings and/or a ``--fair-file``, with the knobs every one of
    them gets (a file's own per-instruction values win over these), and the SEGA momentum of the plan."""

    fair: list[str] | None = field(
        default=None,
        metadata={
            "help": "'ATTRIBUTE=GROUP:SHARE,GROUP:SHARE,...' or a preset name ('gender', 'skin_tone'); repeat "
            "for several attributes. SynthWorld SD phrases: 'gender=female person:0.5,male person:0.5'",
            "action": "extend",
            "metavar": "SPEC",
        },
    )
    fair_file: str | None = field(
        default=None,
        metadata={
            "help": "YAML/JSON list of instructions (FairnessInstruction fields, or --fair strings)",
            "metavar": "FILE",
        },
    )
    fair_scale: float = field(
        default=_INSTRUCTION["guidance_scale"], metadata={"help": "edit guidance scale s_c"}
    )
    fair_warmup: int = field(
        default=_INSTRUCTION["warmup_steps"],
        metadata={"help": "steps before the edit applies", "min": 0, "max": None},
    )
    fair_cooldown: int | None = field(
        default=_INSTRUCTION["cooldown_steps"],
        metadata={"help": "step from which the edit stops (None: never)", "min": 0, "max": None},
    )
    fair_threshold: float = field(
        default=_INSTRUCTION["threshold"],
        metadata={"help": "SEGA quantile λ in [0, 1) (0.95: the top 5%% of each channel)"},
    )
    fair_context: bool = field(
        default=False,
        metadata={
            "help": "guide each group in the prompt's context ('a photo of a female {subject}') instead of the "
            "bare phrase (presets and SynthWorld phrases)"
        },
    )
    fair_momentum: float = field(
        default=FAIR_DIFFUSION_MOMENTUM[0], metadata={"help": "SEGA momentum scale s_m"}
    )
    fair_momentum_beta: float = field(
        default=FAIR_DIFFUSION_MOMENTUM[1], metadata={"help": "SEGA momentum β"}
    )

    @property
    def given(self) -> bool:
        """Whether any instruction is given (``--fair`` or ``--fair-file``)."""
        return bool(self.fair) or bool(self.fair_file)

    def knobs(self) -> dict[str, Any]:
        """The guidance knobs as :class:`FairnessInstruction` keyword arguments."""
        return dict(
            guidance_scale=self.fair_scale,
            warmup_steps=self.fair_warmup,
            cooldown_steps=self.fair_cooldown,
            threshold=self.fair_threshold,
        )

    def instructions(self) -> list[FairnessInstruction]:
        """The instructions of ``fair`` then ``fair_file`` (each checked here, before any model loads)."""
        fair = [self.fair] if isinstance(self.fair, str) else list(self.fair or ())
        found = [
            FairnessInstruction.from_string(t, contextual=self.fair_context, **self.knobs()) for t in fair
        ]
        if self.fair_file:
            found += instructions_from_file(self.fair_file, **self.knobs())
        return found

    def plan(self, prompts: Sequence[str] = (), subjects: Sequence[str] | None = None) -> Any:
        """The :class:`~trustvl.pipelines.fair_diffusion.FairGenerationPlan` of the instructions (None when
        none is given); ``subjects``: one per prompt, for guidance in context."""
        if not self.given:
            if self.fair_context or subjects is not None:
                raise TrustVLInputError(
                    "--fair-context and --fair-subject need a fairness instruction (--fair or --fair-file)"
                )
            return None
        return self.plan_of(self.instructions(), prompts, subjects)

    def plan_of(
        self,
        instructions: Sequence[FairnessInstruction],
        prompts: Sequence[str],
        subjects: Sequence[str] | None,
    ) -> Any:
        """A plan of ``instructions`` with this momentum and ``subjects`` paired with ``prompts``."""
        from trustvl.pipelines.fair_diffusion import FairGenerationPlan

        by_prompt = None
        if subjects is not None and prompts:
            if len(prompts) != len(subjects):
                raise TrustVLInputError(
                    f"--fair-subject gives {len(subjects)} subject(s) for {len(prompts)} prompt(s); give one "
                    "per prompt"
                )
            by_prompt = dict(zip(prompts, subjects))
        return FairGenerationPlan(tuple(instructions), self.fair_momentum, self.fair_momentum_beta, by_prompt)


#: the ``flags`` metadata of a job's nested :class:`FairGuidanceConfig` field: every field gets its own flag
FAIR_FLAGS: dict[str, dict] = {f.name: {} for f in dataclasses.fields(FairGuidanceConfig)}
