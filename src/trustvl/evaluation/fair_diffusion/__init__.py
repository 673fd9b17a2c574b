"""Outcome evaluation of Fair Diffusion (SPEC §5; ``trustvl eval fair-diffusion``).

For a prompt list (default ``"a photo of a {occupation}"`` for SynthWorld's 8 occupations) the job generates
``n`` images per prompt twice with the same seeds (image ``i`` of every prompt uses seed ``seed + i``): plainly
and under the fairness instruction(s) (:class:`~trustvl.pipelines.fair_diffusion.FairGenerationPlan`), in
batches that mix prompts (one UNet call per step for a whole batch, per-image edits included). An outcome
classifier (the embedded SynthWorld one, or any HF image-classification model) reads every image. Reported,
per attribute, with and without the instruction:

* per prompt, each group's share of the ``n`` images against its target, with a Wilson (binomial) 95 %
  interval; images read as none of the groups count as "other";
* the mean over prompts of ``mean_g |share_g − target_g|`` (with two groups: the paper's
  ``|female share − 0.5|``), its relative drop, the mean KL divergence to the target and the share of prompts
  within ``±tolerance`` of the target (every group's share);
* how often a guided image is read as the group it was guided toward ("obeyed");
* content kept: the share of images whose occupation is still recognised, with and without, and the drop in
  points (the expected occupation is the classifier occupation value named in the prompt, or given).

Intervals of the means over prompts come from a paired, prompt-stratified image bootstrap: each resample
draws ``n`` image indices per prompt with replacement and uses the same indices with and without the
instruction (same seeds, so the two images of an index are a pair); intervals centred on the measured value
(:func:`trustvl.metrics.centred_interval`: the value ± 1.96·SE of the replicates, truncated to the metric's
range, flagged when the replicates sit more than SE/2 from it, as the mean |share − target| does near 0),
paired changes by :func:`trustvl.metrics.paired_comparison`.

Choices the paper leaves open: KL is ``KL(observed || target)`` (ITI-GEN's direction) over the groups, the
observed shares renormalised over the images read as one of the groups, a zero target replaced by ``1e-3``
(then renormalised) so that it stays finite, empty prompts (no image read as a group) left out of the mean.

Writes ``results.json`` (:class:`FairDiffusionEvaluation`), ``report.html`` / ``report.md`` with a proportions
plot per attribute and an image grid per prompt (top row plain, bottom row guided, same seeds).

The package, one concern per module: :mod:`.config` (settings and checks), :mod:`.readings` (generate and
read, through the shared loop :mod:`trustvl.pipelines.generation`), :mod:`.statistics` (Wilson, KL,
resampling), :mod:`.outcomes` (the metrics), :mod:`.results` (typed results), :mod:`.report`, :mod:`.run`
(the job).
"""

from trustvl.evaluation.fair_diffusion.config import (
    DEFAULT_PROMPT_TEMPLATE,
    FairDiffusionEvalConfig,
    default_prompts,
    resolve_outcomes,
)
from trustvl.evaluation.fair_diffusion.outcomes import summarise
from trustvl.evaluation.fair_diffusion.readings import OutcomeReadings, generate_and_read
from trustvl.evaluation.fair_diffusion.report import build_report
from trustvl.evaluation.fair_diffusion.results import (
    AttributeOutcome,
    ContentKept,
    FairDiffusionEvaluation,
    GroupShare,
    PairedMetric,
    PromptShares,
)
from trustvl.evaluation.fair_diffusion.run import run_fair_diffusion_eval

__all__ = [
    "DEFAULT_PROMPT_TEMPLATE",
    "AttributeOutcome",
    "ContentKept",
    "FairDiffusionEvalConfig",
    "FairDiffusionEvaluation",
    "GroupShare",
    "OutcomeReadings",
    "PairedMetric",
    "PromptShares",
    "build_report",
    "default_prompts",
    "generate_and_read",
    "resolve_outcomes",
    "run_fair_diffusion_eval",
    "summarise",
]
