"""mantile-decoder-zoo: the open-weight decoder families that differ from the standard stack in
small, shared ways (GPT-2, GPT-NeoX/Pythia, Falcon, Phi, StarCoder2, Command-R, OLMo / OLMo-2
/ OLMoE, DBRX, Granite / Granite-MoE, GLM-4.5, MiniMax-M2, MiMo-V2-Flash).

Through the ``mantile`` entry point (:mod:`.plugin`): a config reader per model type
(:mod:`.readers`), the layouts and layer builders (:mod:`.build`, records in :mod:`.families`)
on the core's configurable layers plus :mod:`.layers`, and torch validation cases
(:mod:`.validation`, transformers' tiny models; needs the ``[torch]`` extra and transformers).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
