"""Loss functions shared by every trustvl training method.

All functions here are pure functions on tensors: they take embeddings (and ids or masks) and return a
scalar loss tensor that carries gradients. They do not call models, so they compose freely inside the
method-specific loss callables that :func:`trustvl.training.train` runs (see :mod:`trustvl.training.core`).

Conventions
-----------
* Embeddings are ``(N, D)`` tensors, one row per example. Unless a function says otherwise it L2-normalises
  rows first, so similarities are cosine similarities in ``[-1, 1]``.
* Losses are computed in float32 even when the embeddings are bf16/fp16 (mixed-precision training), for
  numerically stable ``logsumexp``.
* ``logit_scale`` is the *multiplier* applied to cosine similarities (CLIP's exponentiated temperature
  parameter: pass ``model.logit_scale.exp()``, or a constant such as ``100.0``), not its logarithm.

Multi-GPU
---------
Each process computes the loss on its own per-device batch; DDP averages the gradients. For contrastive
losses whose negatives should span the *global* batch, pass the embeddings through
:func:`gather_with_grad` first: every process then computes the same global loss, the gather's backward
returns each process the gradient of its own rows, and DDP's averaging yields exactly the gradient of the
single-process loss on the global batch. A term that is a mean of per-row values over a number of rows
that differs between processes (RaVL's spurious regions) needs no gather: :func:`mean_over_processes`
turns each process's rows into its share of the global mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trustvl.errors import TrustVLInputError

__all__ = [
    "clip_contrastive_loss",
    "cosine_distance",
    "gather_with_grad",
    "several_processes",
    "group_mean_cohesion_loss",
    "group_offsets",
    "mean_over_processes",
    "multi_positive_info_nce",
]


def _check_2d(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise TrustVLInputError(f"{name} must be a 2-D tensor of shape (N, D); got {shape}")


def _as_scale(value: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    scale = torch.as_tensor(value, dtype=torch.float32, device=like.device)
    if scale.numel() != 1:
        raise TrustVLInputError(
            f"a logit scale / temperature must be a scalar; got shape {tuple(scale.shape)}"
        )
    return scale.reshape(())


def _normalize(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    x = x.float()
    return F.normalize(x, dim=-1) if normalize else x


def clip_contrastive_loss(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    logit_scale: float | torch.Tensor,
    *,
    normalize: bool = True,
) -> torch.Tensor:
    """Symmetric InfoNCE of CLIP (Radford et al. 2021).

    With ``x_i`` the image and ``y_i`` the text embeddings of pair ``i`` (L2-normalised when
    ``normalize``) and ``s`` the logit scale, ``l_ij = s · <x_i, y_j>`` and::

        L = ½ · [ CE(l, diag) + CE(lᵀ, diag) ]
          = -½ · mean_i [ log softmax_j(l_ij)[i] + log softmax_j(l_ji)[i] ]

    i.e. the mean of the image→text and text→image cross-entropies whose targets are the diagonal.

    Args:
        image_embeds (`torch.Tensor` of shape `(N, D)`):
            Image embeddings; row ``i`` is paired with row ``i`` of ``text_embeds``.
        text_embeds (`torch.Tensor` of shape `(N, D)`):
            Text embeddings.
        logit_scale (`float` or scalar `torch.Tensor`):
            Multiplier of the cosine similarities (``model.logit_scale.exp()``; 100 in Safe-CLIP).
        normalize (`bool`, *optional*, defaults to `True`):
            L2-normalise the rows first. Pass `False` only for already-normalised embeddings.

    Returns:
        `torch.Tensor`: a float32 scalar. ``≈ 0`` when every pair is far more similar than any non-pair
        (e.g. identical orthogonal embeddings with a huge scale); ``ln N`` when all similarities are equal.
    """
    _check_2d("image_embeds", image_embeds)
    _check_2d("text_embeds", text_embeds)
    if image_embeds.shape != text_embeds.shape:
        raise TrustVLInputError(
            f"image_embeds and text_embeds must have the same shape (N pairs, D); "
            f"got {tuple(image_embeds.shape)} and {tuple(text_embeds.shape)}"
        )
    img = _normalize(image_embeds, normalize)
    txt = _normalize(text_embeds, normalize)
    logits = _as_scale(logit_scale, img) * img @ txt.t()
    targets = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))


def multi_positive_info_nce(
    queries: torch.Tensor,
    keys: torch.Tensor | None,
    positive_mask: torch.Tensor,
    temperature_or_scale: float | torch.Tensor,
    *,
    exclude_self: bool | None = None,
    normalize: bool = True,
    positives: str = "in",
) -> torch.Tensor:
    """InfoNCE with several positives per row (supervised-contrastive style, "positives in the numerator").

    With ``q_i`` the queries, ``k_j`` the keys (both L2-normalised when ``normalize``), logits
    ``l_ij = <q_i, k_j> / τ`` (or ``s · <q_i, k_j>``, see ``temperature_or_scale``), ``P(i)`` the positives
    of row ``i`` and ``A(i)`` the keys row ``i`` is compared against (all keys, minus ``j = i`` when self-pairs
    are excluded)::

        L = -mean_{i : P(i) ≠ ∅} log( Σ_{j∈P(i)} exp(l_ij) / Σ_{j∈A(i)} exp(l_ij) )

    Rows without any positive (after excluding self-pairs) are left out of the mean; if no row has a
    positive the loss is ``0`` (still connected to the graph). With exactly one positive per row this is the
    standard one-directional InfoNCE ``CE(l, target)``.

    ``positives="out"`` takes the log outside the sum instead (Khosla et al. 2020's ``L_out``)::

        L = -mean_{i : P(i) ≠ ∅} mean_{j∈P(i)} log( exp(l_ij) / Σ_{j'∈A(i)} exp(l_ij') )

    The two differ in which positives the gradient raises: ``"in"`` weights positive ``j`` by its share
    ``exp(l_ij) / Σ_{P(i)} exp``, so the best-matching positive is pulled hardest; ``"out"`` gives every
    positive the same pull, so the weakest-matching one gains the most relative to the others. Both are
    equal with one positive per row.

    trustvl uses it for counterfactual cohesion (CF_α): ``queries = keys = `` the image embeddings of the
    batch and ``positive_mask[i, j] = base_id[i] == base_id[j]``, so the variants of one base image are
    positives of each other; self-pairs are excluded automatically in that case.

    Args:
        queries (`torch.Tensor` of shape `(N, D)`):
            Query embeddings.
        keys (`torch.Tensor` of shape `(M, D)` or `None`):
            Key embeddings; `None` (or the very same tensor object as ``queries``) means ``keys = queries``.
        positive_mask (`torch.Tensor` of shape `(N, M)`, bool or 0/1):
            ``True`` where key ``j`` is a positive of query ``i``.
        temperature_or_scale (`float` or scalar `torch.Tensor`):
            A value ``< 1`` is a temperature ``τ`` (logits = similarity / τ, e.g. 0.07); a value ``≥ 1`` is a
            multiplicative scale (logits = scale · similarity, CLIP convention, e.g. 100). At exactly 1 both
            readings agree. Must be positive.
        exclude_self (`bool`, *optional*):
            Drop the pairs ``(i, i)`` from numerator and denominator. Defaults to `True` when ``keys`` is
            `None` or ``queries`` itself, else `False`. Requires ``N == M``.
        normalize (`bool`, *optional*, defaults to `True`):
            L2-normalise the rows first.
        positives (`str`, *optional*, defaults to `"in"`):
            ``"in"`` (the positives summed inside the log) or ``"out"`` (the mean of each positive's log
            likelihood), see above.

    Returns:
        `torch.Tensor`: a float32 scalar ``≥ 0``.
    """
    if positives not in ("in", "out"):
        raise TrustVLInputError(f"positives={positives!r}; expected 'in' or 'out'")
    same = keys is None or keys is queries
    keys = queries if keys is None else keys
    _check_2d("queries", queries)
    _check_2d("keys", keys)
    n, m = queries.shape[0], keys.shape[0]
    if queries.shape[1] != keys.shape[1]:
        raise TrustVLInputError(
            f"queries and keys must have the same embedding size; got {queries.shape[1]} and {keys.shape[1]}"
        )
    mask = torch.as_tensor(positive_mask, device=queries.device)
    if tuple(mask.shape) != (n, m):
        raise TrustVLInputError(f"positive_mask must have shape (N, M) = {(n, m)}; got {tuple(mask.shape)}")
    mask = mask.bool()
    if exclude_self is None:
        exclude_self = same
    if exclude_self and n != m:
        raise TrustVLInputError(f"exclude_self needs as many queries as keys; got {n} and {m}")

    t = _as_scale(temperature_or_scale, queries)
    if not bool(t > 0):
        raise TrustVLInputError(f"temperature_or_scale must be positive; got {float(t)}")
    factor = torch.where(t < 1, 1.0 / t, t)

    q = _normalize(queries, normalize)
    k = _normalize(keys, normalize)
    logits = factor * q @ k.t()
    allowed = torch.ones_like(mask)
    if exclude_self:
        eye = torch.eye(n, dtype=torch.bool, device=mask.device)
        allowed = ~eye
        mask = mask & ~eye
    neg_inf = torch.finfo(logits.dtype).min
    log_denominator = torch.logsumexp(logits.masked_fill(~allowed, neg_inf), dim=1)
    has_pos = mask.any(dim=1)
    if not bool(has_pos.any()):
        return logits.sum() * 0.0
    if positives == "out":
        n_pos = mask.sum(dim=1)
        log_numerator = logits.masked_fill(~mask, 0.0).sum(dim=1) / n_pos.clamp(min=1)
    else:
        log_numerator = torch.logsumexp(logits.masked_fill(~mask, neg_inf), dim=1)
    return (log_denominator - log_numerator)[has_pos].mean()


def group_mean_cohesion_loss(
    embeds: torch.Tensor,
    group_ids: torch.Tensor,
    normalize: bool = True,
    target_offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared distance of L2-normalised embeddings to the mean of their group.

    With ``z_i = e_i / ‖e_i‖``, ``G(i)`` the group of row ``i`` and ``μ_g = mean_{j∈g} z_j``::

        L = mean_{i : |G(i)| ≥ 2} ‖z_i − μ_{G(i)}‖²

    Groups of size 1 contribute 0 (their distance to their own mean is 0) and are left out of the mean so
    the value does not depend on how many singletons a batch happens to hold; a batch of singletons gives
    ``0``. For unit vectors the per-group term equals ``1 − ‖μ_g‖²``, so ``L ∈ [0, 1]``; it is 0 iff every
    group's members coincide in direction.

    trustvl uses it as a CF_α cohesion term: ``group_ids`` = the base-image id of each counterfactual variant.

    With ``target_offsets`` ``o`` the rows are asked to keep those offsets from their group's mean instead of
    none: ``L = mean_{i : |G(i)| ≥ 2} ‖(z_i − μ_{G(i)}) − o_i‖²`` (``o = 0`` is the cohesion above). CF_α's
    linear α path passes ``(1 − α)`` times a reference model's own offsets (:func:`group_offsets`).

    Args:
        embeds (`torch.Tensor` of shape `(N, D)`):
            Embeddings.
        group_ids (`torch.Tensor` of shape `(N,)`, integer):
            Group label of each row (any integers).
        normalize (`bool`, defaults to `True`):
            L2-normalise the rows first; ``False`` takes them as given (e.g. rows of retrieval scores, where
            ``L`` is then the within-group variance summed over columns).
        target_offsets (`torch.Tensor` of shape `(N, D)`, *optional*):
            Offset each row should keep from its group's mean (taken as given: not normalised, and detached
            by the caller if no gradient should flow into it). Default: zero offsets.

    Returns:
        `torch.Tensor`: a float32 scalar.
    """
    _check_2d("embeds", embeds)
    ids = torch.as_tensor(group_ids, device=embeds.device).reshape(-1)
    if ids.shape[0] != embeds.shape[0]:
        raise TrustVLInputError(f"group_ids must have one id per row ({embeds.shape[0]}); got {ids.shape[0]}")
    offsets, keep = _offsets_from_group_mean(_normalize(embeds, normalize), ids)
    if target_offsets is not None:
        if tuple(target_offsets.shape) != tuple(offsets.shape):
            raise TrustVLInputError(
                f"target_offsets must have the embeddings' shape {tuple(offsets.shape)};"
                f" got {tuple(target_offsets.shape)}"
            )
        offsets = offsets - target_offsets.to(offsets.dtype)
    if not bool(keep.any()):
        return offsets.sum() * 0.0
    return offsets.pow(2).sum(dim=1)[keep].mean()


def group_offsets(embeds: torch.Tensor, group_ids: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Each row's offset from its group's mean, ``z_i − μ_{G(i)}`` (rows L2-normalised first unless
    ``normalize=False``; a singleton's offset is 0): scaled, the ``target_offsets`` of
    :func:`group_mean_cohesion_loss`."""
    _check_2d("embeds", embeds)
    ids = torch.as_tensor(group_ids, device=embeds.device).reshape(-1)
    return _offsets_from_group_mean(_normalize(embeds, normalize), ids)[0]


def _offsets_from_group_mean(z: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z_i − μ_{G(i)}, |G(i)| ≥ 2)`` per row."""
    _, inverse, counts = torch.unique(ids, return_inverse=True, return_counts=True)
    sums = torch.zeros(counts.shape[0], z.shape[1], dtype=z.dtype, device=z.device).index_add(0, inverse, z)
    means = sums / counts.unsqueeze(1).to(z.dtype)
    return z - means[inverse], counts[inverse] >= 2


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance of paired rows: ``mean_i (1 − cos(a_i, b_i))``.

    Args:
        a (`torch.Tensor` of shape `(N, D)` or `(D,)`):
            First embeddings.
        b (`torch.Tensor`, same shape as ``a``):
            Second embeddings (e.g. a frozen reference's, as in Safe-CLIP's ``T(U) ~ Tref(S)``).

    Returns:
        `torch.Tensor`: a float32 scalar in ``[0, 2]``; 0 when each pair points the same way.
    """
    if a.shape != b.shape:
        raise TrustVLInputError(
            f"a and b must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return (1.0 - F.cosine_similarity(a.float(), b.float(), dim=-1)).mean()


def several_processes() -> bool:
    """Whether this process is one of several in an initialised ``torch.distributed`` group."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process along dim 0, keeping the autograd graph.

    Outside ``torch.distributed`` (or with one process) returns ``tensor`` unchanged. Every process must call
    it with the same shape. Use it to give contrastive losses global-batch negatives under DDP (see the
    module docstring for why the gradients are then exact).
    """
    if not several_processes():
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)


def mean_over_processes(values: torch.Tensor) -> torch.Tensor:
    """This process's share of the mean of per-row ``values`` over every process's rows.

    With ``S_p`` the sum of process ``p``'s values, ``n`` the number of rows of all ``N`` processes together
    (one ``all_reduce``), it returns ``N · S_p / n``: the mean over processes of these shares is the global
    mean, and DDP's averaging of the processes' gradients gives exactly the gradient of the global mean,
    whatever number of rows each process holds (zero included: then its share is 0, still on the graph).
    Outside ``torch.distributed`` (or with one process) returns ``values.mean()``. Every process must call
    it at the same point (it is a collective).
    """
    import torch.distributed as dist

    if not several_processes():
        return values.mean()
    count = torch.tensor(float(values.numel()), device=values.device)
    dist.all_reduce(count)
    return values.sum() * (dist.get_world_size() / count.clamp(min=1.0))
