"""Dataset cards for trustvl's dataset folders, as ``huggingface_hub.DatasetCard``.

A dataset folder is Parquet shards plus a ``README.md`` whose YAML front matter tells ``datasets`` how to
load it: ``configs`` (a ``config_name`` and the ``data_files`` of each split) and ``dataset_info`` (the
features, including ``Image()`` and ``ClassLabel``, and the split sizes). Builders describe their dataset
with :class:`DatasetCardMetadata` and write the card with :func:`write_dataset_card`; the prose is a
template file ``templates/dataset_<name>.md`` (Jinja, rendered by ``DatasetCard.from_template`` with the
values the builder passes), so no builder writes card markdown by hand.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.utils.io import write_text

__all__ = [
    "CARD_FILE",
    "TEMPLATES",
    "DatasetCardMetadata",
    "SplitMetadata",
    "dataset_card",
    "write_dataset_card",
]

#: the card's file name in a dataset folder
CARD_FILE = "README.md"
#: the folder of the card templates (``dataset_<name>.md`` for dataset cards)
TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class SplitMetadata:
    """One split of a dataset folder.

    Attributes:
        name: the split name (``"train"``, ``"test"``).
        num_examples: rows in the split.
        num_bytes: size of the split's data (reported in ``dataset_info``; None: not reported).
        data_files: glob of the split's shards, relative to the folder (default ``data/<name>-*``).
    """

    name: str
    num_examples: int
    num_bytes: int | None = None
    data_files: str | None = None

    @property
    def path_pattern(self) -> str:
        return self.data_files if self.data_files is not None else f"data/{self.name}-*"


@dataclass(frozen=True)
class DatasetCardMetadata:
    """What a dataset card's YAML says about a dataset folder.

    Attributes:
        pretty_name: the dataset's display name.
        features: the ``datasets.Features`` of every split.
        splits: the splits, in the order ``datasets`` should list them.
        license: an SPDX-style license id known to the Hub (``"apache-2.0"``, ``"cc-by-4.0"``).
        tags: free tags; task_categories: Hub task categories.
        config_name: the name of the (single) config.
        download_size: total size of the shard files in bytes (None: not reported).
    """

    pretty_name: str
    features: Any
    splits: Sequence[SplitMetadata]
    license: str | None = None
    tags: Sequence[str] = field(default_factory=tuple)
    task_categories: Sequence[str] = field(default_factory=tuple)
    config_name: str = "default"
    download_size: int | None = None


def dataset_card(metadata: DatasetCardMetadata, *, template: str, **values: Any) -> Any:
    """A ``huggingface_hub.DatasetCard``: ``metadata`` as YAML front matter, then the markdown body.

    Args:
        metadata: the YAML part.
        template: the name of a template in :data:`TEMPLATES` (``"dataset_synthworld"``), rendered with
            ``values``: every dataset card trustvl writes comes from one.
    """
    from datasets import DatasetInfo
    from datasets.info import DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from huggingface_hub import DatasetCard, DatasetCardData

    if not metadata.splits:
        raise TrustVLInputError(f"{metadata.pretty_name!r} has no splits; expected at least one split")
    card_data = DatasetCardData(
        license=metadata.license,
        pretty_name=metadata.pretty_name,
        task_categories=list(metadata.task_categories) or None,
        tags=list(metadata.tags) or None,
        configs=[
            {
                "config_name": metadata.config_name,
                "data_files": [{"split": s.name, "path": s.path_pattern} for s in metadata.splits],
            }
        ],
    )
    split_dict = SplitDict()
    for split in metadata.splits:
        split_dict.add(SplitInfo(split.name, num_bytes=split.num_bytes or 0, num_examples=split.num_examples))
    info = DatasetInfo(features=metadata.features, splits=split_dict, download_size=metadata.download_size)
    # datasets' own serialisation of features and splits, the one push_to_hub writes
    DatasetInfosDict({metadata.config_name: info}).to_dataset_card_data(card_data)
    path = TEMPLATES / f"{template}.md"
    if not path.is_file():
        known = sorted(p.stem for p in TEMPLATES.glob("dataset_*.md"))
        raise TrustVLInputError(f"template={template!r} has no file {str(path)!r}; expected one of {known}")
    card = DatasetCard.from_template(card_data, template_path=str(path), **values)
    # Jinja drops the template's final newline; a markdown file ends with one
    return DatasetCard(card.content.rstrip("\n") + "\n")


def write_dataset_card(
    folder: str | os.PathLike,
    metadata: DatasetCardMetadata,
    *,
    template: str,
    **values: Any,
) -> Path:
    """Write :func:`dataset_card` to ``folder/README.md`` atomically and return its path."""
    path = Path(folder) / CARD_FILE
    write_text(path, str(dataset_card(metadata, template=template, **values)))
    return path
