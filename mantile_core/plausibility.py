"""Warnings for inputs that can be costed but describe no real deployment: one sentence each,
returned as strings (``Estimate.warnings``, the ``warnings`` key of ``estimate --json``); the
CLI prints them on stderr, ``--strict`` makes them errors (exit status 2).

- a request (input_len + output_len tokens) longer than the model's
  ``max_position_embeddings``: engines refuse it (vLLM's max_model_len defaults to it);
- a decode ``context`` beyond max_position_embeddings, or beyond input_len + output_len (no
  request of the deployment ever holds that many tokens);
- a deployment whose memory per device exceeds the accelerator's HBM: its times are those of
  a machine that would hold it;
- a given dtype an engine would refuse (:func:`mantile_core.precision.precision_warnings`).
"""

from __future__ import annotations

from typing import Any, Mapping

from .units import bytes_h

__all__ = ["length_warnings", "memory_warning"]


def length_warnings(model_name: str, max_position: int | None, input_len: int, output_len: int,
                    context: int | None = None) -> list[str]:
    """Sentences for a request or a decode context the model or the deployment cannot reach;
    ``max_position`` None: the model sets no limit; ``context`` None: not given (the default
    context is always reachable)."""
    out = []
    request = input_len + output_len
    if max_position is not None and request > max_position:
        out.append(f"input_len + output_len = {request} tokens exceeds {model_name}'s max_position_embeddings "
                   f"({max_position}): engines refuse such requests (vLLM's max_model_len)")
    if context is not None:
        if max_position is not None and context > max_position:
            out.append(f"context {context} exceeds {model_name}'s max_position_embeddings ({max_position})")
        if context > request:
            out.append(f"context {context} is beyond input_len + output_len = {request}: "
                       "no request of this deployment holds that many tokens")
    return out


def memory_warning(hardware_name: str, memory: Mapping[str, Any]) -> str | None:
    """The sentence for a deployment that does not fit one device's HBM (None when it fits)."""
    if memory["fits"]:
        return None
    parts = ", ".join(f"{label} {bytes_h(memory[key])}" for key, label in
                      (("weight_bytes", "weights"), ("kv_cache_bytes", "KV cache"),
                       ("recurrent_state_bytes", "recurrent state"), ("activation_bytes", "activations"))
                      if key != "recurrent_state_bytes" or memory.get(key))
    limit = memory.get("max_batch")
    if limit == 0:
        room = "not even one sequence fits at this length: raise tp or take a larger accelerator"
    elif limit is None:
        room = "raise tp or take a larger accelerator"
    else:
        room = f"at most {limit} sequences fit at this length"
    return (f"the deployment does not fit in memory: {bytes_h(memory['total_bytes'])} per device ({parts}) > "
            f"{bytes_h(memory['capacity_bytes'])} of {hardware_name} HBM; {room}; the times assume it fits")
