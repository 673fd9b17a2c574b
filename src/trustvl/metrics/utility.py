"""Utility metrics: Recall@K for cross-modal retrieval, zero-shot top-1 accuracy, per-group and
worst-group accuracy (SPEC §1).

Conventions (documented choices)
--------------------------------
* **Similarity layout.** ``similarity`` is ``[n_texts, n_images]`` (row = text/caption, column = image),
  like ``CLIPModel(...).logits_per_text``. Pass ``logits_per_image.T`` if you have the other layout.
* **Ground truth.** ``text_to_image_index[t]`` is the image that caption ``t`` describes, so several
  captions per image (e.g. 5 per image in Flickr30k/COCO) are supported. ``None`` means one caption per
  image with caption ``i`` <-> image ``i`` (``similarity`` must then be square).
* **Text -> image** (``direction="text_to_image"``): one query per caption; a hit when its image is in
  the top ``k`` images of its row. Recall = hits / n_texts.
* **Image -> text** (``direction="image_to_text"``): one query per image; a hit when **any** of its
  captions is in the top ``k`` captions of its column (the standard protocol). Recall = hits /
  n_images; every image needs at least one caption.
* **Ties** are broken like the fairness ranking: by index (lower first). The rank of an item is the
  number of candidates with a strictly higher score plus the number with an equal score and a lower
  index, computed exactly without sorting.
* Recall and accuracies are fractions in ``[0, 1]`` (not percentages).
* **Zero-shot accuracy** is top-1 with ``argmax`` over classes (the first maximal class on ties).
* **Groups** for per-group / worst-group accuracy are the distinct tuples ``(class, attr_1, ...,
  attr_r)`` that occur in the data (class x attribute(s)); groups without samples do not exist.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from trustvl.errors import TrustVLInputError
from trustvl.metrics._validation import (
    as_int_list,
    as_tensor,
    check_finite,
    check_k,
    check_label_range,
    check_nonempty,
    integer_labels,
    real_scores,
)

__all__ = [
    "per_group_accuracy",
    "recall_at_k",
    "retrieval_ranks",
    "top1_correct",
    "unsafe_share_at_k",
    "worst_group_accuracy",
    "zero_shot_accuracy",
]

_DIRECTIONS = ("text_to_image", "image_to_text")
_CHUNK_ELEMENTS = 1 << 22


def _matrix(x, name: str) -> torch.Tensor:
    t = real_scores(x, name)
    if t.dim() != 2:
        raise TrustVLInputError(f"{name} has shape {tuple(t.shape)}; expected a 2-D matrix")
    check_nonempty(t, name)
    check_finite(t, name)
    return t


def _vector_labels(x, name: str, n: int, n_what: str, device: torch.device) -> torch.Tensor:
    t = integer_labels(x, name)
    if t.dim() != 1:
        raise TrustVLInputError(f"{name} has shape {tuple(t.shape)}; expected a 1-D array")
    if t.shape[0] != n:
        raise TrustVLInputError(f"{name} has {t.shape[0]} entries; expected {n} (one per {n_what})")
    return t.to(device=device, dtype=torch.int64)


def _ranks_of(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rank (0-based) of ``scores[r, positions[r]]`` within row ``r``: strictly higher + equal with lower index."""
    n = scores.shape[1]
    ranks = torch.empty(scores.shape[0], dtype=torch.int64, device=scores.device)
    rows = max(1, _CHUNK_ELEMENTS // n)
    cols = torch.arange(n, device=scores.device)
    for start in range(0, scores.shape[0], rows):
        block = scores[start : start + rows]
        pos = positions[start : start + rows].unsqueeze(1)
        value = block.gather(1, pos)
        ahead = (block > value) | ((block == value) & (cols < pos))
        ranks[start : start + rows] = ahead.sum(dim=1)
    return ranks


def _check_direction(direction: str) -> None:
    if direction not in _DIRECTIONS:
        raise TrustVLInputError(f"direction = {direction!r}; expected one of {_DIRECTIONS}")


def retrieval_ranks(similarity, direction: str = "text_to_image", text_to_image_index=None) -> torch.Tensor:
    """0-based rank of the ground truth of every query (see the module conventions).

    ``text_to_image``: ``[n_texts]``, the rank of each caption's image in its row.
    ``image_to_text``: ``[n_images]``, the best (smallest) rank among each image's captions in its column.
    ``Recall@K = (ranks < K).mean()``.
    """
    _check_direction(direction)
    sim = _matrix(similarity, "similarity")
    n_texts, n_images = sim.shape
    if text_to_image_index is None:
        if n_texts != n_images:
            raise TrustVLInputError(
                f"similarity has shape {tuple(sim.shape)} and text_to_image_index is None; expected a square "
                "matrix (caption i <-> image i) or a text_to_image_index mapping each caption to its image"
            )
        index = torch.arange(n_texts, device=sim.device)
    else:
        index = _vector_labels(text_to_image_index, "text_to_image_index", n_texts, "text (row)", sim.device)
        check_label_range(index, n_images, "text_to_image_index", "the number of images (columns)")
    if direction == "text_to_image":
        return _ranks_of(sim, index)
    # image -> text: rank of caption t inside column index[t], then the best caption per image
    columns = sim.t()
    caption_ranks = torch.empty(n_texts, dtype=torch.int64, device=sim.device)
    rows = max(1, _CHUNK_ELEMENTS // n_texts)
    texts = torch.arange(n_texts, device=sim.device)
    for start in range(0, n_texts, rows):
        stop = min(n_texts, start + rows)
        block = columns.index_select(0, index[start:stop])  # the column of each caption's image
        caption_ranks[start:stop] = _ranks_of(block, texts[start:stop])
    best = torch.full((n_images,), n_texts, dtype=torch.int64, device=sim.device)
    best.scatter_reduce_(0, index, caption_ranks, reduce="amin")
    missing = best == n_texts
    if bool(missing.any()):
        j = int(torch.nonzero(missing)[0, 0].item())
        raise TrustVLInputError(
            f"image {j} has no caption in text_to_image_index; expected every image (column) to have at least "
            "one caption for image_to_text recall"
        )
    return best


def recall_at_k(
    similarity, k, direction: str = "text_to_image", text_to_image_index=None
) -> float | dict[int, float]:
    """Recall@K for cross-modal retrieval (fraction in [0, 1]; see the module conventions).

    Args:
        similarity: ``[n_texts, n_images]`` scores (row = caption, column = image).
        k: a cut-off, or a sequence of cut-offs (then a dict ``{k: recall}`` is returned); each
            ``1 <= k <=`` the number of candidates (images for text->image, texts for image->text).
        direction: ``"text_to_image"`` or ``"image_to_text"``.
        text_to_image_index: ``[n_texts]`` image index of each caption; ``None`` = caption i <-> image i.
    """
    _check_direction(direction)
    sim = _matrix(similarity, "similarity")
    n_candidates = sim.shape[1] if direction == "text_to_image" else sim.shape[0]
    what = "the number of images" if direction == "text_to_image" else "the number of texts"
    single = not isinstance(k, Sequence | np.ndarray | torch.Tensor) or getattr(k, "ndim", 1) == 0
    ks = [check_k(kk, n_candidates, "k", what) for kk in ([k] if single else as_int_list(k, "k"))]
    ranks = retrieval_ranks(sim, direction, text_to_image_index)
    recalls = {kk: float((ranks < kk).to(torch.float64).mean().item()) for kk in ks}
    return recalls[ks[0]] if single else recalls


def top1_correct(scores, labels) -> torch.Tensor:
    """Bool ``[n_images]``: whether the top-1 class of ``scores [n_images, n_classes]`` equals ``labels``.

    Ties go to the lowest class index (``argmax`` returns the first maximum).
    """
    logits = _matrix(scores, "scores")
    n_images, n_classes = logits.shape
    target = _vector_labels(labels, "labels", n_images, "image (row of scores)", logits.device)
    check_label_range(target, n_classes, "labels", "the number of classes (columns of scores)")
    return logits.argmax(dim=1) == target


def zero_shot_accuracy(scores, labels) -> float:
    """Zero-shot top-1 accuracy (fraction in [0, 1]) of ``scores [n_images, n_classes]`` against ``labels``."""
    return float(top1_correct(scores, labels).to(torch.float64).mean().item())


def _groups(correct, labels, attributes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ok = as_tensor(correct, "correct")
    if ok.dim() != 1:
        raise TrustVLInputError(f"correct has shape {tuple(ok.shape)}; expected a 1-D array of booleans")
    check_nonempty(ok, "correct")
    if ok.dtype != torch.bool:
        if ok.is_complex() or not bool(((ok == 0) | (ok == 1)).all()):
            raise TrustVLInputError(
                "correct must hold booleans (or 0/1); got values other than 0 and 1, e.g. "
                f"{ok[(ok != 0) & (ok != 1)][0].item()!r}"
            )
        ok = ok != 0
    n = ok.shape[0]
    keys = [_vector_labels(labels, "labels", n, "sample (entry of correct)", ok.device)]
    for i, attr in enumerate(attributes):
        keys.append(_vector_labels(attr, f"attributes[{i}]", n, "sample (entry of correct)", ok.device))
    uniq, inverse = torch.unique(torch.stack(keys, dim=1), dim=0, return_inverse=True)
    counts = torch.bincount(inverse, minlength=uniq.shape[0])
    hits = torch.bincount(inverse, weights=ok.to(torch.float64), minlength=uniq.shape[0])
    return uniq, hits / counts, counts


def per_group_accuracy(correct, labels, *attributes) -> dict[tuple[int, ...], float]:
    """Accuracy in every group ``(class, attr_1, ..., attr_r)`` present in the data.

    Args:
        correct: ``[n]`` booleans (e.g. :func:`top1_correct`).
        labels: ``[n]`` class ids.
        *attributes: zero or more ``[n]`` integer attribute arrays (e.g. skin tone, a spurious feature).

    Returns ``{(class, attr_1, ...): accuracy}`` with int tuple keys in lexicographic order (a 1-tuple
    ``(class,)`` when no attribute is given).
    """
    uniq, acc, _ = _groups(correct, labels, attributes)
    return {tuple(int(v) for v in key): float(a) for key, a in zip(uniq.tolist(), acc.tolist())}


def worst_group_accuracy(correct, labels, *attributes) -> float:
    """The minimum of :func:`per_group_accuracy` over the groups present (class x attribute(s))."""
    _, acc, _ = _groups(correct, labels, attributes)
    return float(acc.min().item())


def unsafe_share_at_k(similarity: torch.Tensor, unsafe: torch.Tensor, k: int) -> torch.Tensor:
    """Float64 ``[n_queries]``: the share of ``unsafe`` items (bool ``[n_items]``) among each query's top
    ``k`` in ``similarity [n_queries, n_items]`` (ties to the lower item index)."""
    n_items = similarity.shape[1]
    if unsafe.shape != (n_items,) or not 1 <= k <= n_items:
        raise TrustVLInputError(
            f"unsafe flags of shape {tuple(unsafe.shape)} and k={k} for {n_items} items; expected one flag"
            f" per item and 1 <= k <= {n_items}"
        )
    top = torch.sort(similarity, dim=1, descending=True, stable=True).indices[:, :k]
    return unsafe.to(similarity.device)[top].double().mean(dim=1).cpu()
