"""CLIP-compatible byte-level BPE tokenizers built offline, with no download.

Two ways to get a tokenizer that behaves exactly like OpenAI's CLIP tokenizer (lower-casing, CLIP's
word splitting, byte-level symbols, a ``</w>`` end-of-word suffix, ``<|startoftext|>`` /
``<|endoftext|>`` around every caption and padding with ``<|endoftext|>``):

* :func:`build_byte_level_bpe` learns a small merge table in pure Python from a built-in English
  caption corpus (or the texts given). It is instant and deterministic: use it for tiny test models.
* :func:`train_clip_tokenizer` trains the merges with the ``tokenizers`` library on a caption corpus:
  use it for the tokenizer of a small CLIP trained on synthetic captions.

Both return a :class:`transformers.CLIPTokenizer` (in transformers 5 ``CLIPTokenizerFast`` is the same
class) built from ``vocab=`` / ``merges=``, never from ``vocab_file=`` (silently ignored by transformers 5).
Its vocabulary is laid out as CLIP's: the 256 byte symbols, their ``</w>`` variants, one token per merge,
then ``<|startoftext|>`` and ``<|endoftext|>`` last. ``<|endoftext|>`` therefore has the largest id and is
never 2, so ``CLIPTextTransformer`` pools at the first ``<|endoftext|>`` of each caption (and the legacy
arg-max rule would pick the same position). Put :func:`clip_special_token_ids` into the
``CLIPTextConfig``.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer
from transformers import CLIPTokenizer

from trustvl.errors import TrustVLInputError

__all__ = [
    "BOS_TOKEN",
    "EOS_TOKEN",
    "END_OF_WORD",
    "bytes_to_unicode",
    "build_byte_level_bpe",
    "clip_special_token_ids",
    "default_caption_corpus",
    "train_clip_tokenizer",
]

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"

#: CLIP's word-splitting pattern (the same as transformers' CLIPTokenizer uses).
_CLIP_SPLIT_PATTERN = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)

#: 512 byte symbols (bare and with ``</w>``) plus the two special tokens.
N_BASE_TOKENS = 2 * 256 + 2


def bytes_to_unicode() -> dict[int, str]:
    """Map each of the 256 byte values to a printable unicode character, as CLIP and GPT-2 do.

    Bytes that are already visible, non-space Latin-1 characters (``!``..``~``, ``¡``..``¬``,
    ``®``..``ÿ``) map to themselves; the remaining 68 bytes (control characters, space, soft hyphen...)
    map, in increasing byte order, to the characters from U+0100 onwards. The dict's insertion order is
    CLIP's vocabulary order: the visible bytes first, then the shifted ones.
    """
    visible = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\N{INVERTED EXCLAMATION MARK}"), ord("\N{NOT SIGN}") + 1),
        *range(ord("\N{REGISTERED SIGN}"), ord("\N{LATIN SMALL LETTER Y WITH DIAERESIS}") + 1),
    ]
    mapping = {b: chr(b) for b in visible}
    shifted = (b for b in range(256) if b not in mapping)
    for offset, b in enumerate(shifted):
        mapping[b] = chr(256 + offset)
    return mapping


def _base_vocab() -> dict[str, int]:
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + END_OF_WORD for s in symbols]
    return {tok: i for i, tok in enumerate(tokens)}


def _clip_normalizer() -> normalizers.Normalizer:
    return normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )


def _clip_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )


def _split_words(texts: Iterable[str]) -> Counter[str]:
    """Count CLIP's byte-level pre-tokens (words) over ``texts``."""
    norm, pre = _clip_normalizer(), _clip_pre_tokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        if not isinstance(text, str):
            raise TrustVLInputError(
                f"tokenizer corpus items must be str, got {type(text).__name__}: {text!r:.80}"
            )
        counts.update(piece for piece, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    return counts


def _check_vocab_size(vocab_size: int) -> None:
    if not isinstance(vocab_size, int) or vocab_size < N_BASE_TOKENS:
        raise TrustVLInputError(
            f"vocab_size={vocab_size!r} is too small: a CLIP byte-level vocabulary needs at least "
            f"{N_BASE_TOKENS} tokens (256 bytes, 256 bytes + '</w>', bos and eos)"
        )


def _learn_merges(word_counts: Counter[str], n_merges: int, min_frequency: int = 2) -> list[tuple[str, str]]:
    """Greedy BPE in pure Python: repeatedly merge the most frequent adjacent pair.

    Ties go to the lexicographically smallest pair, so the result depends only on the word counts.
    """
    words = [
        ([*w[:-1], w[-1] + END_OF_WORD], c) for w, c in sorted(word_counts.items()) if w
    ]  # symbols, frequency
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for symbols, count in words:
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best, best_count = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if best_count < min_frequency:
            break
        merges.append(best)
        joined = best[0] + best[1]
        for symbols, _ in words:
            i = 0
            while i < len(symbols) - 1:
                if symbols[i] == best[0] and symbols[i + 1] == best[1]:
                    symbols[i : i + 2] = [joined]
                i += 1
    return merges


def _assemble(
    merges: Sequence[tuple[str, str]], vocab_size: int, model_max_length: int, **tokenizer_kwargs: Any
) -> CLIPTokenizer:
    """CLIP-ordered vocab (bytes, bytes+</w>, merges, bos, eos) and the tokenizer built from it."""
    vocab = _base_vocab()
    kept: list[tuple[str, str]] = []
    for a, b in merges:
        if len(vocab) >= vocab_size - 2:
            break
        if a not in vocab or b not in vocab:  # cannot happen for a consistent merge table
            continue
        kept.append((a, b))
        vocab.setdefault(a + b, len(vocab))
    vocab[BOS_TOKEN] = len(vocab)
    vocab[EOS_TOKEN] = len(vocab)
    tokenizer_kwargs.setdefault("padding_side", "right")
    return CLIPTokenizer(
        vocab=vocab,
        merges=kept,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=model_max_length,
        **tokenizer_kwargs,
    )


# A small built-in English caption corpus: enough to learn useful merges for tiny test models.
_SUBJECTS = (
    "person man woman boy girl child people doctor nurse teacher engineer scientist lawyer chef farmer pilot "
    "firefighter police officer artist musician athlete student worker builder cashier programmer dancer "
    "secretary mechanic surgeon professor"
).split()
_ADJECTIVES = (
    "young old smiling happy serious tall short male female black white asian brown red blue green "
    "yellow dark bright small large"
).split()
_PLACES = (
    "in a hospital|in a classroom|in a kitchen|in an office|on a farm|on the street|at the beach|in a park|"
    "in a laboratory|at a construction site|on a stage|in the city|at home|in a forest|near the water"
).split("|")
_TEMPLATES = (
    "a photo of a {adj} {subj}",
    "a picture of the {subj} {place}",
    "an image of a {adj} {subj} {place}",
    "a {subj} standing {place}",
    "the {adj} {subj} is working {place}.",
    "there is a {subj} with a {adj} shirt, 2 dogs and 1 cat!",
)


def default_caption_corpus() -> list[str]:
    """A deterministic list of short English captions (a few thousand) used when no texts are given."""
    out = []
    combos = itertools.product(_TEMPLATES, _SUBJECTS, _ADJECTIVES[::3], _PLACES[::2])
    for template, subj, adj, place in combos:
        out.append(template.format(subj=subj, adj=adj, place=place))
    return out


def build_byte_level_bpe(
    texts: Iterable[str] | None = None,
    vocab_size: int = 1000,
    *,
    model_max_length: int = 77,
    min_frequency: int = 2,
    **tokenizer_kwargs: Any,
) -> CLIPTokenizer:
    """A CLIP-compatible byte-level BPE tokenizer whose merges are learned in pure Python.

    Args:
        texts: corpus to learn merges from; defaults to :func:`default_caption_corpus`.
        vocab_size: total vocabulary size including the 514 base tokens (fewer if the corpus runs out of
            pairs seen at least ``min_frequency`` times).
        model_max_length: length used for ``padding="max_length"`` / truncation (CLIP uses 77).
        tokenizer_kwargs: passed on to :class:`~transformers.CLIPTokenizer`.

    Returns:
        A :class:`~transformers.CLIPTokenizer`; ``save_pretrained`` / ``from_pretrained`` round-trip it.
    """
    _check_vocab_size(vocab_size)
    counts = _split_words(default_caption_corpus() if texts is None else texts)
    merges = _learn_merges(counts, vocab_size - N_BASE_TOKENS, min_frequency=min_frequency)
    return _assemble(merges, vocab_size, model_max_length, **tokenizer_kwargs)


def train_clip_tokenizer(
    corpus: Iterable[str],
    vocab_size: int = 1024,
    *,
    model_max_length: int = 77,
    min_frequency: int = 2,
    **tokenizer_kwargs: Any,
) -> CLIPTokenizer:
    """Train a CLIP-style byte-level BPE tokenizer on a caption corpus with the ``tokenizers`` library.

    Text is normalised (NFC, whitespace collapsed, lower-cased) and split into words exactly as CLIP does;
    merges are learned with a ``</w>`` end-of-word suffix. The result has all 512 byte symbols, so any
    text encodes without unknown tokens, ``<|startoftext|>``/``<|endoftext|>`` around each caption and
    ``<|endoftext|>`` as padding. It saves with ``save_pretrained`` and reloads identically with
    ``CLIPTokenizer.from_pretrained`` / ``AutoTokenizer.from_pretrained``.

    Args:
        corpus: the captions (any iterable of str, consumed once).
        vocab_size: total vocabulary size including the 514 base tokens.
        model_max_length: length used for ``padding="max_length"`` / truncation, e.g. 32 for short captions.
        min_frequency: a pair must occur this many times to be merged.
        tokenizer_kwargs: passed on to :class:`~transformers.CLIPTokenizer`.
    """
    _check_vocab_size(vocab_size)
    if isinstance(corpus, str):
        raise TrustVLInputError("corpus must be an iterable of captions, not a single str")

    def checked(texts: Iterable[str]) -> Iterable[str]:
        for t in texts:
            if not isinstance(t, str):
                raise TrustVLInputError(f"corpus items must be str, got {type(t).__name__}: {t!r:.80}")
            yield t

    tok = Tokenizer(BPE(continuing_subword_prefix="", end_of_word_suffix=END_OF_WORD, fuse_unk=False))
    tok.normalizer = _clip_normalizer()
    tok.pre_tokenizer = _clip_pre_tokenizer()
    trainer = BpeTrainer(
        # headroom: the trainer's own alphabet is smaller than our 512 base symbols; extra merges are cut
        vocab_size=vocab_size + N_BASE_TOKENS,
        min_frequency=min_frequency,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=list(bytes_to_unicode().values()),
        continuing_subword_prefix="",
        end_of_word_suffix=END_OF_WORD,
    )
    tok.train_from_iterator(checked(corpus), trainer=trainer)
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in _model_merges(tok)]
    return _assemble(merges, vocab_size, model_max_length, **tokenizer_kwargs)


def _model_merges(tok: Tokenizer) -> list[Any]:
    """The trained merges, in rank order (``[a, b]`` pairs, or ``"a b"`` strings in old tokenizers)."""
    return json.loads(tok.to_str())["model"]["merges"]


def clip_special_token_ids(tokenizer: Any) -> dict[str, int]:
    """``bos_token_id`` / ``eos_token_id`` / ``pad_token_id`` of a CLIP tokenizer, for a ``CLIPTextConfig``.

    Raises :class:`~trustvl.errors.TrustVLInputError` if the tokenizer lacks them or if its eos id is 2,
    which would make ``CLIPTextTransformer`` pool at the arg-max token id (legacy rule) instead of eos.
    """
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    missing = [k for k, v in ids.items() if v is None]
    if missing:
        raise TrustVLInputError(f"tokenizer {type(tokenizer).__name__} has no {', '.join(missing)}")
    if ids["eos_token_id"] == 2 and len(tokenizer) - 1 != 2:
        raise TrustVLInputError(
            "tokenizer eos_token_id is 2: CLIPTextTransformer would pool at the largest token id instead of "
            "at <|endoftext|>; put <|endoftext|> at the end of the vocabulary"
        )
    return ids
