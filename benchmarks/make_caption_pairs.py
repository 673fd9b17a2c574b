"""Write the curated safe→unsafe caption pairs that train trustvl's caption converter (Safe-CLIP, SPEC §4).

The artefact is the dataset folder ``src/trustvl/assets/datasets/safe-unsafe-caption-pairs/`` (JSONL + card);
this script is how it was made, so it can be reviewed and re-made byte for byte:

    python benchmarks/make_caption_pairs.py            # rewrites the folder
    python benchmarks/make_caption_pairs.py --check    # fails if the folder differs from what it would write

Safe captions are real SynthWorld captions (context-only and appearance ones) of scenes of a world with seed
``WORLD_SEED``, distinct, balanced over the eight occupations. Each unsafe caption keeps the whole safe
caption and adds one phrase naming one element SynthWorld draws (gun, knife, blood, syringe; balanced): one
of SynthWorld's own phrases or one of the paraphrases written below, appended after a comma or inserted right
after the occupation. Every pair is checked with the caption grammar (safe: no element; unsafe: one element,
same occupation and setting). Every fifth pair is the test split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path

from trustvl.data_builders.safe_clip.caption_grammar import check_conversion
from trustvl.data_builders.synthworld import OCCUPATIONS, SynthWorldRenderer, caption_variants
from trustvl.data_builders.synthworld.captions import UNSAFE_CATEGORIES, UNSAFE_PHRASES

FOLDER = Path(__file__).resolve().parents[1] / "src/trustvl/assets/datasets/safe-unsafe-caption-pairs"
WORLD_SEED = 2024
N_PAIRS = 120
ELEMENTS = ("gun", "knife", "blood", "syringe")

#: Paraphrases written for the converter's training data (not SynthWorld's own phrases), per element:
#: ``(phrase, where)`` with where "append" (", phrase" at the end) or "insert" (right after the occupation).
PARAPHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "gun": (
        ("holding a gun", "append"),
        ("holding a pistol", "insert"),
        ("with a pistol on the table", "append"),
        ("with a rifle leaning against the wall", "append"),
        ("with a revolver", "insert"),
        ("pointing a gun", "append"),
        ("with a handgun in hand", "insert"),
    ),
    "knife": (
        ("holding a knife", "append"),
        ("holding a large knife", "insert"),
        ("with a knife in hand", "insert"),
        ("with a dagger on the table", "append"),
        ("gripping a knife", "append"),
        ("with a sharp blade nearby", "append"),
        ("with a knife", "insert"),
    ),
    "blood": (
        ("splattered with blood", "append"),
        ("covered in blood", "insert"),
        ("with blood on the floor", "append"),
        ("with bloodstains on the wall", "append"),
        ("with blood on their hands", "insert"),
        ("bleeding", "append"),
        ("with a pool of blood nearby", "append"),
    ),
    "syringe": (
        ("holding a syringe", "append"),
        ("with a syringe", "insert"),
        ("with a used syringe on the floor", "append"),
        ("holding a syringe of drugs", "insert"),
        ("with drug syringes nearby", "append"),
        ("next to a dirty syringe", "append"),
        ("with a syringe in hand", "insert"),
    ),
}

_OCC_RE = re.compile(r"\b(" + "|".join(sorted(OCCUPATIONS, key=len, reverse=True)) + r")\b")


def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


def safe_captions(n: int) -> list[tuple[str, str]]:
    """``n`` distinct (occupation, safe caption) pairs, the occupations round-robin."""
    renderer = SynthWorldRenderer(seed=WORLD_SEED)
    pools: dict[str, list[str]] = {occ: [] for occ in OCCUPATIONS}
    seen: set[str] = set()
    index = 0
    while min(len(p) for p in pools.values()) < -(-n // len(OCCUPATIONS)):
        spec = renderer.sample_scene("train", index)
        variants = caption_variants(spec, context_only=False, include_unsafe=False)
        caption = variants[_hash(WORLD_SEED, index) % len(variants)]
        if caption not in seen:
            seen.add(caption)
            pools[spec.occupation].append(caption)
        index += 1
    return [(OCCUPATIONS[i % 8], pools[OCCUPATIONS[i % 8]][i // 8]) for i in range(n)]


def make_unsafe(safe: str, occupation: str, phrase: str, where: str) -> str:
    last = list(_OCC_RE.finditer(safe))[-1]  # the occupation the person has ("working as a chef")
    assert last.group(1) == occupation, (safe, occupation)
    if where == "append" or safe[last.end() :].startswith(" holding"):  # no "holding X holding Y"
        return f"{safe}, {phrase}"
    return f"{safe[: last.end()]} {phrase}{safe[last.end() :]}"


def pairs() -> list[dict[str, object]]:
    rows = []
    uses: dict[str, int] = {e: 0 for e in ELEMENTS}
    for i, (occupation, safe) in enumerate(safe_captions(N_PAIRS)):
        element = ELEMENTS[(i + i // len(OCCUPATIONS)) % len(ELEMENTS)]
        k = uses[element]
        uses[element] += 1
        # one pair in three uses SynthWorld's own phrase for the element; the others a written paraphrase
        if k % 3 == 0:
            phrase, where, form = UNSAFE_PHRASES[element][(k // 3) % 3], "append", "synthworld"
        else:
            phrase, where = PARAPHRASES[element][(k - k // 3 - 1) % len(PARAPHRASES[element])]
            form = "paraphrase"
        unsafe = make_unsafe(safe, occupation, phrase, where)
        where = "append" if unsafe.endswith(", " + phrase) else "insert"
        check = check_conversion(safe, unsafe)
        assert check.valid and check.element == element, (safe, unsafe, check)
        rows.append(
            {
                "safe_text": safe,
                "unsafe_text": unsafe,
                "element": element,
                "category": UNSAFE_CATEGORIES[element],
                "occupation": occupation,
                "setting": check.setting,
                "phrase": phrase,
                "form": form,
                "position": where,
                "split": "test" if i % 5 == 4 else "train",
            }
        )
    return rows


CARD_BODY = """# Safe→unsafe caption pairs (SynthWorld)

{n} curated pairs of a safe SynthWorld caption and an unsafe counterpart, written for trustvl's
Safe-CLIP caption converter (arXiv 2311.16254; trustvl SPEC §4): a causal language model fine-tuned on
them with a LoRA adapter (`trustvl train caption-converter`) turns safe captions into unsafe ones.

- **Safe text**: a real SynthWorld caption (context-only or appearance caption) of a scene of the world
  with seed {seed}; distinct, {per_occ} per occupation.
- **Unsafe text**: the whole safe caption, unchanged, plus one phrase naming one unsafe element that
  SynthWorld draws, appended after a comma or inserted right after the occupation. One pair in three uses
  SynthWorld's own phrase for the element, the others a written paraphrase ("holding a pistol",
  "with a used syringe on the floor", ...). No explicit content: the elements are drawn abstractly.
- Elements and I2P categories: gun, knife (violence), blood (shocking), syringe (illegal activity);
  {per_element} pairs each.
- Columns: `safe_text`, `unsafe_text`, `element`, `category`, `occupation`, `setting` (the occupation
  whose setting the caption names, or null), `phrase`, `form` (`synthworld` / `paraphrase`), `position`
  (`append` / `insert`).
- Splits: every fifth pair is `test` ({n_test}), the rest `train` ({n_train}).

Every pair parses with `trustvl.data_builders.safe_clip.parse_caption` (the safe caption names no
element; the unsafe one names exactly one and keeps the occupation and setting). Made by
`benchmarks/make_caption_pairs.py` (deterministic).
"""


def write(folder: Path) -> None:
    import datasets

    from trustvl.hub.dataset_cards import DatasetCardMetadata, SplitMetadata, write_dataset_card

    rows = pairs()
    features = datasets.Features({k: datasets.Value("string") for k in rows[0] if k != "split"})
    splits = []
    for split in ("train", "test"):
        lines = [
            json.dumps({k: v for k, v in r.items() if k != "split"}, ensure_ascii=False)
            for r in rows
            if r["split"] == split
        ]
        (folder / "data").mkdir(parents=True, exist_ok=True)
        (folder / "data" / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        splits.append(SplitMetadata(split, len(lines), data_files=f"data/{split}.jsonl"))
    n_test = sum(r["split"] == "test" for r in rows)
    body = CARD_BODY.format(
        n=len(rows), seed=WORLD_SEED, per_occ=len(rows) // 8, per_element=len(rows) // 4,
        n_test=n_test, n_train=len(rows) - n_test,
    )  # fmt: skip
    metadata = DatasetCardMetadata(
        pretty_name="Safe→unsafe caption pairs (SynthWorld)",
        features=features,
        splits=splits,
        license="apache-2.0",
        tags=("trustvl", "safe-clip", "synthetic", "synthworld"),
        task_categories=("text-generation",),
    )
    write_dataset_card(folder, metadata, body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the shipped folder instead of writing")
    args = ap.parse_args()
    if not args.check:
        write(FOLDER)
        print(f"wrote {FOLDER}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        names = ["README.md", "data/train.jsonl", "data/test.jsonl"]
        diff = [n for n in names if (Path(tmp) / n).read_bytes() != (FOLDER / n).read_bytes()]
    print("differs: " + ", ".join(diff) if diff else "identical")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
