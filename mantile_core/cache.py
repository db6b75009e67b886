"""The core's KV-cache policy for full causal attention, and policy selection.

Causal (per sequence, per KV head): a chunk of S queries after P cached tokens attends
Σ_{i=P}^{P+S-1} (i+1) = S·P + S(S+1)/2 pairs; the cache holds every written token; a decode
step reads all of them. Sliding-window and chunked-attention policies come from plugins
(mantile-swa-cache).
"""

from __future__ import annotations

from typing import Mapping

from .errors import InputError, MissingPluginError
from .install_hints import install_hint
from .records import CachePolicy

__all__ = ["CAUSAL_POLICY", "causal_pairs", "select_policies", "MASK_PLUGINS"]

MASK_PLUGINS = {"sliding": "mantile-swa-cache", "chunked": "mantile-swa-cache"}


def causal_pairs(new, cached, window=0):
    """(query, key) pairs of ``new`` causal queries after ``cached`` tokens: new·cached + new(new+1)/2."""
    return new * cached + new * (new + 1) // 2


def _all_written(tokens, window=0, block=16):
    return tokens


CAUSAL_POLICY = CachePolicy(
    name="causal",
    mask="causal",
    resident_positions=_all_written,
    attended_pairs=causal_pairs,
    read_positions=_all_written,
    default=True,
    description="full causal attention: every written token stays resident and is read",
)


def select_policies(policies: Mapping[str, CachePolicy], masks: set[str], chosen: str | None = None) -> dict[str, CachePolicy]:
    """Mask -> policy for the masks a model uses: ``chosen`` (a policy name or retention, e.g.
    "paged") for the masks it applies to, otherwise each mask's default. Raises
    MissingPluginError naming the plugin when a mask has no policy, InputError for an unknown
    ``chosen``."""
    by_mask: dict[str, list[CachePolicy]] = {}
    for policy in policies.values():
        by_mask.setdefault(policy.mask, []).append(policy)
    selectors = set(policies) | {p.selector for p in policies.values()}
    if chosen is not None and chosen not in selectors:
        known = ", ".join(sorted(selectors)) or "none"
        hint = " (sliding-window policies come with mantile-swa-cache)" if "sliding" not in by_mask else ""
        raise InputError(f"unknown --kv-policy {chosen!r}: installed policies are {known}{hint}")
    out: dict[str, CachePolicy] = {}
    for mask in sorted(masks):
        candidates = by_mask.get(mask)
        if not candidates:
            plugin = MASK_PLUGINS.get(mask)
            fix = f": {install_hint(plugin)}" if plugin else ""
            raise MissingPluginError(f"{mask} attention layers need a KV-cache policy{fix}")
        picked = [p for p in candidates if chosen is not None and chosen in (p.name, p.selector)]
        if picked:
            out[mask] = picked[0]
            continue
        defaults = [p for p in candidates if p.default] or candidates
        out[mask] = defaults[0]
    return out
