"""``trustvl build unsafe-captions``: safe captions converted into unsafe ones, checked, as a dataset folder.

Each safe caption goes through a converter (:class:`~.oracle_converter.UnsafeCaptionConverter`: SynthWorld's
oracle or a trained :class:`~trustvl.modeling.caption_converter.CaptionConverter`), and each output is
checked against SynthWorld's caption grammar (:func:`~.caption_grammar.check_conversion`): it must keep the
safe caption's occupation and setting and name exactly one unsafe element. Outputs that fail are counted
per reason in the summary (``summary.json`` and the card) and left out of the dataset, or kept with
``valid=False`` when ``keep_invalid`` is set -- never silently kept.

Safe captions come from a text file (one per line), a JSONL file (a ``safe_text`` or ``caption`` field per
line), or ``"synthworld"``: the safe caption (context-only or appearance, chosen per scene) of scenes
``0..n-1`` of a SynthWorld world with ``world_seed``. Input captions must be non-empty SynthWorld captions
that name no unsafe element.

Output (one split, ``train``): columns ``safe_text``, ``unsafe_text``, ``element``, ``category``,
``occupation``, ``setting``, ``valid``, ``reason``; ``datasets.load_dataset(out_dir)`` loads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trustvl.data_builders.parquet_shards import DATA_DIR
from trustvl.data_builders.safe_clip.caption_grammar import UNSAFE_ELEMENTS, check_conversion, parse_caption
from trustvl.data_builders.safe_clip.oracle_converter import (
    OracleCaptionConverter,
    UnsafeCaptionConverter,
    check_safe_captions,
)
from trustvl.data_builders.sharded_build import ShardedBuild
from trustvl.errors import TrustVLInputError
from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata
from trustvl.utils.checks import check_int

__all__ = [
    "UnsafeCaptionsSummary",
    "build_unsafe_captions",
    "load_converter",
    "read_safe_captions",
    "synthworld_safe_captions",
]

COLUMNS = ("safe_text", "unsafe_text", "element", "category", "occupation", "setting", "valid", "reason")


@dataclass
class UnsafeCaptionsSummary:
    """What :func:`build_unsafe_captions` did.

    Attributes:
        out_dir: the dataset folder.
        converter: what converted (``repr`` of the converter).
        n_input: safe captions converted.
        n_valid: outputs that keep the context and name one unsafe element.
        n_invalid: the others (``invalid_reasons``: count per reason).
        n_written: rows in the dataset (``n_valid``, or ``n_input`` with ``keep_invalid``).
        valid_share: ``n_valid / n_input``.
        per_element: valid outputs per unsafe element.
        n_distinct_outputs: distinct unsafe captions among the valid ones.
    """

    out_dir: str
    converter: str
    n_input: int
    n_valid: int
    n_invalid: int
    n_written: int
    valid_share: float
    keep_invalid: bool
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    per_element: dict[str, int] = field(default_factory=dict)
    n_distinct_outputs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


def synthworld_safe_captions(
    n: int, world_seed: int = 0, split: str = "test", context_only: bool = False
) -> list[str]:
    """The safe captions of SynthWorld scenes ``0..n-1`` of ``split`` (world seed ``world_seed``): one
    caption per scene, chosen from its variants by a hash of the scene (context-only and, unless
    ``context_only``, appearance captions)."""
    from trustvl.data_builders.synthworld import SynthWorldRenderer, caption_variants

    check_int("n", n, 1)
    renderer = SynthWorldRenderer(seed=world_seed)
    out = []
    for i in range(n):
        variants = caption_variants(
            renderer.sample_scene(split, i), context_only=context_only, include_unsafe=False
        )
        out.append(variants[_hash(world_seed, split, i) % len(variants)])
    return out


def read_safe_captions(path: str | os.PathLike) -> list[str]:
    """Safe captions from a text file (one per line; blank lines skipped) or a ``.jsonl`` file (field
    ``safe_text`` or ``caption``)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise TrustVLInputError(f"captions file {str(p)!r} does not exist; expected a .txt or .jsonl file")
    lines = [line for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if p.suffix != ".jsonl":
        return [line.strip() for line in lines]
    out = []
    for k, line in enumerate(lines):
        try:
            row = json.loads(line)
        except ValueError:
            raise TrustVLInputError(
                f"{str(p)!r} line {k + 1} is not JSON; expected one object per line"
            ) from None
        text = row.get("safe_text", row.get("caption")) if isinstance(row, dict) else None
        if text is None:
            raise TrustVLInputError(f"{str(p)!r} line {k + 1} has no 'safe_text' or 'caption' field")
        out.append(text)
    return out


def load_converter(converter: str | UnsafeCaptionConverter, **kwargs: Any) -> UnsafeCaptionConverter:
    """``"oracle"`` -> :class:`OracleCaptionConverter`; a path or id -> ``CaptionConverter.from_pretrained``
    (``kwargs`` go to it); a converter object is returned as is."""
    if not isinstance(converter, str):
        if not callable(converter):
            raise TrustVLInputError(
                f"converter={converter!r}; expected 'oracle', a path or a callable converter"
            )
        return converter
    if converter == "oracle":
        return OracleCaptionConverter()
    from trustvl.modeling.caption_converter import CaptionConverter

    return CaptionConverter.from_pretrained(converter, **kwargs)


def _check_inputs(captions: list[str]) -> None:
    for i, caption in enumerate(captions):
        parsed = parse_caption(caption)
        if parsed is None:
            raise TrustVLInputError(
                f"safe caption {i} {caption!r} is not a SynthWorld caption (no single occupation named)"
            )
        if parsed.elements:
            raise TrustVLInputError(
                f"safe caption {i} {caption!r} already names an unsafe element ({', '.join(parsed.elements)})"
            )


def build_unsafe_captions(
    out_dir: str | os.PathLike,
    converter: str | UnsafeCaptionConverter = "oracle",
    captions: str | os.PathLike | Sequence[str] = "synthworld",
    n: int | None = None,
    seed: int = 0,
    world_seed: int = 0,
    batch_size: int = 32,
    keep_invalid: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    converter_kwargs: dict[str, Any] | None = None,
) -> UnsafeCaptionsSummary:
    """Convert safe captions into unsafe ones and write the checked pairs as a dataset folder (module doc).

    Args:
        out_dir: the dataset folder (written atomically).
        converter: "oracle", a converter path/id, or a converter object.
        captions: "synthworld", a .txt/.jsonl file, or a list of captions.
        n: how many captions (the first ``n``; required for "synthworld"; None: all of a file or list).
        seed: the converter's seed.
        world_seed: SynthWorld's world seed for ``captions="synthworld"``.
        batch_size: captions per converter call (one progress-bar step each).
        keep_invalid: keep invalid outputs as rows with ``valid=False`` (default: left out, counted).
    """
    from tqdm.auto import tqdm

    check_int("batch_size", batch_size, 1)
    check_int("n", n, 1, allow_none=True)
    if isinstance(captions, str) and captions == "synthworld":
        if n is None:
            raise TrustVLInputError("captions='synthworld' needs n (how many scenes' captions)")
        safe = synthworld_safe_captions(n, world_seed=world_seed)
    elif isinstance(captions, (str, os.PathLike)):
        safe = read_safe_captions(captions)
    else:
        safe = list(captions)
    safe = check_safe_captions(safe)[: n if n is not None else None]
    if not safe:
        raise TrustVLInputError("no safe captions to convert; expected at least one")
    _check_inputs(safe)
    conv = load_converter(converter, **(converter_kwargs or {}))

    unsafe: list[str] = []
    for start in tqdm(range(0, len(safe), batch_size), desc="converting captions", disable=not progress):
        batch = safe[start : start + batch_size]
        # the seed varies per batch so an oracle does not repeat its element sequence in every batch
        outputs = conv(batch, seed=seed * 1_000_003 + start)
        if len(outputs) != len(batch):
            raise TrustVLInputError(
                f"the converter returned {len(outputs)} captions for {len(batch)}; expected one per caption"
            )
        unsafe += [str(o) for o in outputs]

    checks = [check_conversion(s, u) for s, u in zip(safe, unsafe)]
    columns: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for s, u, c in zip(safe, unsafe, checks):
        if c.valid or keep_invalid:
            row = (s, u, c.element, c.category, c.occupation, c.setting, c.valid, c.reason)
            for name, value in zip(COLUMNS, row):
                columns[name].append(value)
    n_valid = sum(c.valid for c in checks)
    reasons = Counter(c.reason for c in checks if not c.valid)
    per_element = Counter(c.element for c in checks if c.valid)
    out = Path(out_dir).expanduser().resolve()
    summary = UnsafeCaptionsSummary(
        out_dir=str(out),
        converter=repr(conv),
        n_input=len(safe),
        n_valid=n_valid,
        n_invalid=len(safe) - n_valid,
        n_written=len(columns["safe_text"]),
        valid_share=n_valid / len(safe),
        keep_invalid=keep_invalid,
        invalid_reasons=dict(reasons.most_common()),
        per_element={e: per_element.get(e, 0) for e in UNSAFE_ELEMENTS},
        n_distinct_outputs=len({u for u, c in zip(unsafe, checks) if c.valid}),
    )
    _write(out, columns, summary, overwrite)
    return summary


def _write(out: Path, columns: dict[str, list[Any]], summary: UnsafeCaptionsSummary, overwrite: bool) -> None:
    import datasets

    features = datasets.Features(
        {c: datasets.Value("bool") if c == "valid" else datasets.Value("string") for c in COLUMNS}
    )
    # one shard, written whole: the folder appears complete or not at all
    with ShardedBuild.staged(
        out, builder=f"{__name__}.build_unsafe_captions", kind="unsafe-captions build", overwrite=overwrite
    ) as build:
        build.write_shard(build.shard_path("train", 0, 1), columns, features)
        metadata = DatasetCardMetadata(
            pretty_name="Unsafe captions (Safe-CLIP)",
            features=features,
            splits=[SplitMetadata("train", summary.n_written, data_files=f"{DATA_DIR}/train-*.parquet")],
            tags=("trustvl", "safe-clip", "synthetic"),
        )
        build.finish(
            metadata,
            "dataset_unsafe_captions",
            {"summary": summary, "valid_share": f"{summary.valid_share:.1%}"},
            files={"summary.json": summary.to_dict()},
        )
