"""The trust report (``trustvl audit``, issue 25): one command audits a CLIP-style model on the three axes
the papers measure, social bias (SPEC §1), unsafe content (SPEC §4) and spurious region features (SPEC §3),
and compares it with a baseline, every number with its interval and every change with a paired verdict.

One concern per module: :mod:`.schema` (``trust_report.json``, versioned typed dataclasses),
:mod:`.estimates` (bootstrap intervals over samples), :mod:`.bias_axis`, :mod:`.safety_probe` and
:mod:`.safety_axis`, :mod:`.spurious_axis` with :mod:`.cluster_pull` (a cluster's pull towards the class it
favours) and :mod:`.spurious_feature` (the top cluster's feature across clusters and its pull), :mod:`.compare` (paired verdicts), :mod:`.render` (the HTML page),
:mod:`.config` (the command's settings) and :mod:`.run` (the job).
"""

from trustvl.evaluation.trust_report.config import TrustReportConfig
from trustvl.evaluation.trust_report.run import default_gallery, run_trust_report, trust_report
from trustvl.evaluation.trust_report.schema import (
    AXES,
    SCHEMA_VERSION,
    BiasAxis,
    ClassGap,
    ClusterFinding,
    ElementFreeControl,
    Estimate,
    MetricVerdict,
    ModelTrustReport,
    PromptDirection,
    SafetyAxis,
    SpuriousAxis,
    SpuriousFeature,
    TrustReport,
)

__all__ = [
    "AXES",
    "SCHEMA_VERSION",
    "BiasAxis",
    "ClassGap",
    "ClusterFinding",
    "ElementFreeControl",
    "Estimate",
    "MetricVerdict",
    "ModelTrustReport",
    "PromptDirection",
    "SafetyAxis",
    "SpuriousAxis",
    "SpuriousFeature",
    "TrustReport",
    "TrustReportConfig",
    "default_gallery",
    "run_trust_report",
    "trust_report",
]
