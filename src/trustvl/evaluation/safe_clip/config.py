"""Settings of ``trustvl eval safe-clip``: :class:`SafeCLIPEvalConfig` (one field per flag)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trustvl.utils.options import device_option, overwrite_option, progress_option, resamples_option

__all__ = ["SafeCLIPEvalConfig"]


@dataclass
class SafeCLIPEvalConfig:
    """Settings of ``trustvl eval safe-clip`` (each field is a flag, its help below). ``n_resamples`` and
    ``seed`` drive the query bootstrap (0 resamples: no intervals, no verdicts). ``pool_size`` and
    ``pool_seed`` choose the NSFW rates' non-twin pool
    (:func:`~trustvl.data_builders.safe_clip.split_non_twin_pool`): the split's scenes are dealt, stratified
    by unsafe kind, into a query side and an equally large pool of unsafe images of other scenes."""

    model: str = field(
        metadata={
            "help": "the Safe-CLIP model (a plain CLIPModel folder, e.g. trustvl train safe-clip's model/) or Hub id"
        }
    )
    dataset: str = field(metadata={"help": "the quadruplet dataset (folder or Hub id)"})
    out_dir: str = field(
        metadata={
            "help": "the report folder (written atomically; empty unless --overwrite)",
            "aliases": ["--out"],
        }
    )
    base_model: str | None = field(
        default=None,
        metadata={"help": "compare with this model (usually the base CLIP); default: no comparison"},
    )
    split: str = field(default="test", metadata={"help": "the held-out split"})
    ks: list[int] = field(
        default_factory=lambda: [1, 5, 10], metadata={"help": "R@K cut-offs", "aliases": ["--k"], "min": 1}
    )
    nsfw_k: int = field(default=10, metadata={"help": "cut-off of the NSFW rates", "min": 1})
    pool_size: int | None = field(
        default=None,
        metadata={
            "help": "NSFW rates: rows per side (unsafe captions that query; non-twin unsafe images in the"
            " pool); None: as many as the smaller side holds, about half the split",
            "min": 1,
        },
    )
    pool_seed: int = field(
        default=0,
        metadata={
            "help": "seed that deals the split's scenes into NSFW queries and pool",
            "min": 0,
            "max": None,
        },
    )
    n_resamples: int = resamples_option(what="query")
    seed: int = field(default=0, metadata={"help": "seed of the bootstrap", "min": 0, "max": None})
    device: str = device_option()
    batch_size: int = field(default=256, metadata={"help": "inputs per forward", "min": 1})
    max_rows: int | None = field(
        default=None, metadata={"help": "evaluate the first this many quadruplets only", "min": 1}
    )
    overwrite: bool = overwrite_option("report folder")
    progress: bool = progress_option()
