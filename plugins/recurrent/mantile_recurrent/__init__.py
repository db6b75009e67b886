"""mantile-recurrent: recurrent mixers (Mamba-1, Mamba-2, Gated DeltaNet) whose per-sequence
state has a fixed size, and the hybrid models that mix them with attention and MoE layers
(Falcon-Mamba, Mamba-2 / Codestral, Jamba, Qwen3-Next, Qwen3.5 / 3.6, Nemotron-H / Nemotron-3).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
