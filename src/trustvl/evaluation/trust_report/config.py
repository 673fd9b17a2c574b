"""Settings of ``trustvl audit``, the trust report: :class:`TrustReportConfig` (every
:class:`~trustvl.evaluation.audit.AuditConfig` field, plus the axes, the baseline, the safety probe and the
spurious-feature search; one field, one flag)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from trustvl.errors import TrustVLInputError
from trustvl.evaluation.audit import AuditConfig
from trustvl.evaluation.trust_report.schema import AXES

__all__ = ["TrustReportConfig"]


@dataclass(kw_only=True)
class TrustReportConfig(AuditConfig):
    """What ``trustvl audit`` measures (each field is a flag, its help below).

    ``axes`` None runs every axis whose data is there: bias and spurious features on ``dataset`` (the
    spurious axis needs ``label_column``), safety on ``safety_dataset`` or the SynthWorld probe. Without
    ``dataset``, the gallery is ``default_gallery_size`` SynthWorld-Web test scenes rendered on the fly (its
    attributes, ``occupation`` as the label). ``axes=["bias"]`` is the audit of before: the same files.
    """

    dataset: str | None = field(
        default=None,
        metadata={
            "help": "anything datasets.load_dataset accepts (Hub id, local dataset folder) or a .parquet file;"
            " None: SynthWorld-Web test scenes rendered on the fly"
        },
    )
    axes: list[str] | None = field(
        default=None,
        metadata={"help": f"axes to report, of {' '.join(AXES)}; None: every axis whose data is there"},
    )
    compare: str | None = field(
        default=None,
        metadata={
            "help": "baseline model (Hub id or folder): every axis side by side, verdicts of --model vs it",
            "aliases": ["--baseline"],
        },
    )
    default_gallery_size: int = field(
        default=800, metadata={"help": "SynthWorld-Web test scenes of the default gallery", "min": 8}
    )
    world_seed: int = field(
        default=0, metadata={"help": "seed of the default gallery and safety probe", "min": 0, "max": None}
    )
    safety_dataset: str | None = field(
        default=None,
        metadata={
            "help": "safety probe dataset with a safe/unsafe column; None: SynthWorld's, built on the fly"
        },
    )
    safety_split: str = field(default="test", metadata={"help": "split of the safety dataset"})
    safety_column: str = field(
        default="unsafe", metadata={"help": "safety dataset column: bool, 0/1 or 'safe'/'unsafe'"}
    )
    safety_text_column: str = field(default="caption", metadata={"help": "safety dataset caption column"})
    safety_image_column: str = field(default="image", metadata={"help": "safety dataset image column"})
    safety_category_column: str | None = field(
        default=None, metadata={"help": "safety dataset category column (e.g. the I2P category); None: one"}
    )
    safety_probe_size: int = field(
        default=200, metadata={"help": "default probe: safe scenes, and as many unsafe ones", "min": 4}
    )
    nsfw_k: int = field(default=10, metadata={"help": "cut-off of the NSFW rate", "min": 1})
    # 800 = the whole default gallery: on 400 images RaVL ranked the planted watermark first on 2 of 3 world
    # seeds, on 800 on all 3 (docs/trust_report.md, "Ground truth on SynthWorld")
    spurious_max_images: int = field(
        default=800,
        metadata={
            "help": "RaVL discovery on the first N gallery images (800: all of the default gallery)",
            "min": 4,
        },
    )
    spurious_grid: int = field(
        default=2, metadata={"help": "RaVL candidate regions: an N x N grid per image", "min": 1}
    )
    spurious_top: int = field(
        default=3, metadata={"help": "ranked clusters shown (with thumbnail strips)", "min": 1}
    )

    def validate(self) -> None:
        if self.dataset is not None:
            super().validate()
        else:  # the default gallery is filled in before the audit's own checks run
            AuditConfig.validate(_with_dataset(self))
        if self.axes is not None:
            bad = [a for a in self.axes if a not in AXES]
            if bad or not self.axes:
                raise TrustVLInputError(f"axes={self.axes!r}; expected one or more of {list(AXES)}")
            if self.streaming and not self.bias_only:
                raise TrustVLInputError(
                    f"axes={self.axes!r} with streaming=True; a streamed gallery is audited on the bias axis"
                    " only (the safety and spurious axes hold images in memory): pass --axes bias or drop"
                    " --streaming"
                )
        for name, low in (
            ("default_gallery_size", 8),
            ("safety_probe_size", 4),
            ("nsfw_k", 1),
            ("spurious_max_images", 4),
            ("spurious_grid", 1),
            ("spurious_top", 1),
            ("world_seed", 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise TrustVLInputError(f"{name}={value!r} is not valid; expected an integer >= {low}")

    def wants(self, axis: str) -> bool:
        return self.axes is None or axis in self.axes

    @property
    def bias_only(self) -> bool:
        return self.axes is not None and list(dict.fromkeys(self.axes)) == ["bias"]


def _with_dataset(cfg: TrustReportConfig) -> TrustReportConfig:
    return replace(cfg, dataset="<default gallery>")
