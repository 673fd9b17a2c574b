"""Fairness instructions: target group proportions for generated images, and their exact, seeded assignment.

A :class:`FairnessInstruction` names an attribute, its groups and the share of images each group should get,
e.g. ``FairnessInstruction("gender", {"female person": 0.5, "male person": 0.5})`` (Fair Diffusion's setting,
arXiv 2302.10893). For ``N`` images of one prompt, :func:`assign_groups` gives each image one group per
instruction:

* the number of images per group is exact: ``N·share`` rounded by the largest-remainder method (ties go to
  the group listed first);
* several instructions at once (gender × skin tone) are assigned jointly: the counts of every attribute are
  exact as above, and the joint counts follow the product of the targets as closely as those marginals allow
  (a greedy fill of the joint cells, largest deficit first);
* which image gets which group is a seeded shuffle: the same ``(instructions, N, seed)`` always gives the same
  assignment, on any machine.

Each image is then guided toward its group and away from each other group of the attribute
(:meth:`FairnessInstruction.edit_concepts`): with two groups this is the paper's one concept toward and one,
reversed, away; with ``k`` groups the ``k − 1`` "away" concepts share a total weight of 1 by default, so the
push away from the others does not grow with ``k``.

**Guidance in context (an extension; documented choice).** The paper guides with bare phrases ("female
person"). A guidance text may instead name the group in the prompt's own context, with a ``{subject}`` field
filled per prompt: ``"a photo of a female {subject}"`` with subject ``"firefighter"``. Since the toward and
away concepts then share everything but the group's words, their SEGA directions differ mainly in the
attribute, not in the subject. ``contextual=True`` (``preset``/``synthworld``; ``--fair-context``) uses
:data:`FAIRNESS_CONTEXT_TEMPLATE`. On the SynthWorld SD it is what makes a 4-level skin-tone target reachable
(docs/results.md, "Fair Diffusion"); the subject of a prompt is given explicitly or, by default, the SynthWorld
occupation the prompt names (:func:`subject_in_prompt`).

Reading the outcome: an instruction can say which head of an outcome classifier reads its attribute
(``outcome_head``) and which of that head's values each group is (``outcome_values``), so an evaluation can
compare the shares per group with the targets. :meth:`FairnessInstruction.synthworld` gives instructions
ready for the embedded SynthWorld text-to-image model and outcome classifier:

=============  ==============================================  ========================================
attribute      concept phrase (guidance text)                  outcome classifier head = value
=============  ==============================================  ========================================
``gender``     ``"female person"`` / ``"male person"``         ``gender_presentation`` = ``feminine`` /
                                                               ``masculine``
``skin_tone``  ``"person with very light skin"`` ...            ``skin_tone`` = ``very light``, ``light``,
               ``"person with very dark skin"``                ``medium``, ``dark``, ``very dark``
=============  ==============================================  ========================================

The phrases are built from SynthWorld's caption grammar (``GENDER_ADJ``: "a photo of a female nurse";
``SKIN_NOUN_PHRASES``: "a person with very dark skin working as a chef"), so every word is one the SynthWorld
text encoder was trained on; the gender phrase follows the paper's ``"female person"``. The default skin-tone
instruction uses 4 of SynthWorld's 5 levels (very light, light, dark, very dark; ``medium`` left out because
it sits between its neighbours and is the level the classifier confuses most), as the issue's 4-level test
asks; pass ``levels=`` for others. :func:`synthworld_outcome_value` maps other phrasings ("woman",
"dark-skinned", "a person with dark skin") to the classifier's values.

The package, one concern per module: :mod:`.presets` (known attributes, SynthWorld phrases and outcome
values, the paper's momentum), :mod:`.context` (guidance-in-context templates), :mod:`.counts` (largest
remainder), :mod:`.instruction` (the :class:`FairnessInstruction` dataclass and its constructors from
presets and strings), :mod:`.subjects` (each prompt's subject), :mod:`.assignment` (group assignment),
:mod:`.files` (instructions from YAML/JSON files). Nothing here imports diffusers.
"""

from trustvl.pipelines.fairness_instruction.assignment import (
    GroupAssignment,
    assign_groups,
    given_assignments,
)
from trustvl.pipelines.fairness_instruction.context import (
    FAIRNESS_CONTEXT_TEMPLATE,
    SUBJECT_FIELD,
    context_texts,
    template_fields,
)
from trustvl.pipelines.fairness_instruction.counts import largest_remainder_counts
from trustvl.pipelines.fairness_instruction.files import instructions_from_file
from trustvl.pipelines.fairness_instruction.instruction import FairnessInstruction, check_instructions
from trustvl.pipelines.fairness_instruction.presets import (
    FAIR_DIFFUSION_MOMENTUM,
    FAIRNESS_PRESETS,
    SYNTHWORLD_FAIRNESS_HEADS,
    SYNTHWORLD_SKIN_LEVELS,
    synthworld_outcome_value,
    synthworld_phrases,
)
from trustvl.pipelines.fairness_instruction.subjects import resolve_subjects, subject_in_prompt

__all__ = [
    "FAIRNESS_CONTEXT_TEMPLATE",
    "FAIRNESS_PRESETS",
    "FAIR_DIFFUSION_MOMENTUM",
    "SUBJECT_FIELD",
    "SYNTHWORLD_FAIRNESS_HEADS",
    "SYNTHWORLD_SKIN_LEVELS",
    "FairnessInstruction",
    "GroupAssignment",
    "assign_groups",
    "check_instructions",
    "context_texts",
    "given_assignments",
    "instructions_from_file",
    "largest_remainder_counts",
    "resolve_subjects",
    "subject_in_prompt",
    "synthworld_outcome_value",
    "synthworld_phrases",
    "template_fields",
]
