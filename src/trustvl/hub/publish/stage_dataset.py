"""Staging a ``dataset``: Parquet shards plus a ``DatasetCard`` whose ``configs`` match them (made from the
shards' schema when the folder has none); loading scripts and Arrow files are refused."""

from __future__ import annotations

import fnmatch
import re
import shutil
from pathlib import Path
from typing import Any

from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata, dataset_card
from trustvl.hub.publish.config import PublishConfig
from trustvl.hub.publish.folders import copy_files, front_matter
from trustvl.hub.publish.safety import refuse_pickles, stageable_files
from trustvl.utils.io import write_text

__all__ = ["stage_dataset"]


def _split_of(shard: Path, root: Path) -> str:
    stem = shard.stem
    match = re.match(r"^([A-Za-z][\w]*?)(-\d+(-of-\d+)?|-[0-9a-f]{6,})?$", stem)
    if match is None:
        raise TrustVLInputError(
            f"cannot tell the split of shard {str(shard.relative_to(root))!r}; expected <split>.parquet or"
            " <split>-00000-of-00001.parquet (or a README.md with configs)"
        )
    return match.group(1)


def _make_dataset_card(root: Path, shards: list[Path], license: str) -> Any:
    import pyarrow.parquet as pq
    from datasets import Features

    splits: dict[str, list[Path]] = {}
    for shard in shards:
        splits.setdefault(_split_of(shard, root), []).append(shard)
    features = None
    metas = []
    for name, files in splits.items():
        feats = Features.from_arrow_schema(pq.read_schema(files[0]))
        if features is not None and feats != features:
            raise TrustVLInputError(
                f"split {name!r} has other columns than the first split; expected one schema"
            )
        features = feats
        rel = sorted({str(f.parent.relative_to(root)) for f in files})
        pattern = f"{rel[0]}/{name}*.parquet" if rel != ["."] else f"{name}*.parquet"
        if len(rel) > 1:
            raise TrustVLInputError(
                f"split {name!r} has shards in several folders {rel}; expected one folder"
            )
        metas.append(
            SplitMetadata(
                name,
                num_examples=sum(pq.read_metadata(f).num_rows for f in files),
                num_bytes=sum(f.stat().st_size for f in files),
                data_files=pattern,
            )
        )
    metadata = DatasetCardMetadata(
        pretty_name=root.name,
        features=features,
        splits=metas,
        license=license,
        tags=["trustvl"],
        download_size=sum(f.stat().st_size for f in shards),
    )
    return dataset_card(metadata, template="dataset_published", name=root.name)


def _check_dataset_configs(root: Path, meta: dict[str, Any], shards: list[Path]) -> None:
    rel = {str(s.relative_to(root)) for s in shards}
    for config in meta["configs"]:
        if not isinstance(config, dict) or "config_name" not in config:
            raise TrustVLInputError(f"{str(root / 'README.md')!r}: a configs entry lacks config_name")
        data_files = config.get("data_files") or []
        entries = [data_files] if isinstance(data_files, (str, dict)) else data_files
        for entry in entries:
            patterns = entry.get("path") if isinstance(entry, dict) else entry
            for pattern in [patterns] if isinstance(patterns, str) else patterns or []:
                if not any(Path(r).match(pattern) or fnmatch.fnmatch(r, pattern) for r in rel):
                    raise TrustVLInputError(
                        f"{str(root / 'README.md')!r}: config {config['config_name']!r} names data_files"
                        f" {pattern!r}, which matches no Parquet shard in the folder"
                    )


def stage_dataset(cfg: PublishConfig, path: Path, dest: Path) -> None:
    files = stageable_files(path)
    refuse_pickles(path, files)
    scripts = [str(f.relative_to(path)) for f in files if f.suffix == ".py"]
    if scripts:
        raise TrustVLInputError(
            f"{str(path)!r} holds Python files {scripts[:3]}; a dataset is Parquet + a card (datasets ≥ 4 does not"
            " run loading scripts)"
        )
    shards = [f for f in files if f.suffix == ".parquet"]
    if not shards:
        raise TrustVLInputError(
            f"{str(path)!r} holds no .parquet shards; expected a dataset folder of Parquet files"
        )
    unexpected = [str(f.relative_to(path)) for f in files if f.suffix in (".arrow",)]
    if unexpected:
        raise TrustVLInputError(
            f"{str(path)!r} holds Arrow files {unexpected[:3]} (save_to_disk); write Parquet shards instead"
        )
    meta = front_matter(path / "README.md")
    copy_files(path, [f for f in files if f.name != "README.md" or f.parent != path], dest)
    if meta.get("configs"):
        _check_dataset_configs(path, meta, shards)
        shutil.copy2(path / "README.md", dest / "README.md")
    else:
        write_text(dest / "README.md", str(_make_dataset_card(path, shards, cfg.license)))
