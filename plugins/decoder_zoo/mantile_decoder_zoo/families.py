"""The zoo's records: which model types it reads, lays out and builds.

| model_type | family | what differs from the standard stack |
|---|---|---|
| gpt2 | GPT-2 | learned positions, LayerNorm+bias, biases everywhere, non-gated gelu_new MLP, tied |
| gpt_neox | GPT-NeoX, Pythia | rotary_pct, parallel residual (two norms), biases, non-gated gelu |
| falcon (RefinedWeb, RefinedWebModel) | Falcon | MQA + parallel block with one norm (7B); GQA + two norms (40B/180B); ALiBi option |
| phi | Phi-1/1.5/2 | parallel block, partial rotary, biases, LM head bias |
| starcoder2 | StarCoder2 | LayerNorm+bias, biases, non-gated gelu_tanh MLP, sliding window |
| cohere | Command-R | parallel block, LayerNorm without bias, logit scale |
| olmo / olmo2 / olmoe | OLMo, OLMo-2, OLMoE | non-parametric LayerNorm; post-norms; full-width q/k norm; clip_qkv; MoE |
| dbrx | DBRX | d_model/ffn_config/attn_config, LayerNorm without bias, clip_qkv, MoE |
| granite / granitemoe | Granite-3 | constant multipliers, scaled logits; MoE |
| glm4_moe | GLM-4.5(-Air) | leading dense layers, shared experts, sigmoid router + correction bias, partial rotary, qkv bias |
| minimax_m2 | MiniMax-M2/M2.5/M2.7 | full-width q/k norm, partial rotary, sigmoid router + correction bias |
| mimo_v2_flash | MiMo-V2-Flash | sliding/full hybrid with other KV heads and sinks on sliding layers, v_head_dim, dense first layer |
"""

from __future__ import annotations

from mantile_core.records import ConfigReader, LayerType, ModelLayout

from . import build
from .readers import MODEL_TYPES, read

__all__ = ["CONFIG_READERS", "LAYOUTS", "LAYER_TYPES", "MODEL_TYPES", "LAYERNORM_TYPES", "MOE_TYPES",
           "LM_HEAD_TYPES", "SCALED_TYPES"]

LAYERNORM_TYPES = frozenset({"gpt2", "gpt_neox", "falcon", "phi", "starcoder2", "cohere", "olmo", "dbrx"})
MOE_TYPES = frozenset({"olmoe", "dbrx", "granitemoe", "glm4_moe", "minimax_m2", "mimo_v2_flash"})
LM_HEAD_TYPES = frozenset({"phi", "cohere", "granite", "granitemoe"})
SCALED_TYPES = frozenset({"granite", "granitemoe"})
BUILT_TYPES = MODEL_TYPES - {"RefinedWeb", "RefinedWebModel"}  # read as "falcon"

CONFIG_READERS = [
    ConfigReader("decoder-zoo", MODEL_TYPES, read,
                 description="GPT-2, GPT-NeoX, Falcon, Phi, StarCoder2, Cohere, OLMo/OLMo-2/OLMoE, DBRX, Granite, "
                             "GLM-4.5, MiniMax-M2, MiMo-V2-Flash key spellings -> standard keys"),
]

LAYOUTS = [
    ModelLayout("decoder-zoo", BUILT_TYPES, build.zoo_slots, extras=build.zoo_extras,
                description="the standard stack with each family's module names, block (parallel / post-norm), "
                            "learned positions, Granite multipliers"),
]

LAYER_TYPES = [
    LayerType("zoo-layernorm", "norm", build.build_norm, LAYERNORM_TYPES,
              description="LayerNorm with bias, weight only, or without parameters (OLMo)"),
    LayerType("zoo-attention", "attention", build.build_attention, BUILT_TYPES,
              description="GQA/MQA with the family's biases, partial/no RoPE, ALiBi, clip_qkv, q/k norms, "
                          "MiMo's sinks and v_head_dim"),
    LayerType("zoo-mlp", "mlp", build.build_mlp, BUILT_TYPES,
              description="MLP gated or not, biases, named activation"),
    LayerType("zoo-moe", "moe", build.build_moe, MOE_TYPES,
              description="top-k MoE; DeepSeek-style shared experts and correction bias (GLM-4.5, MiniMax-M2, MiMo)"),
    LayerType("zoo-lm-head", "lm_head", build.build_lm_head, LM_HEAD_TYPES,
              description="LM head with a bias (Phi) or scaled logits (Cohere, Granite)"),
    LayerType("zoo-scale", "scale", build.build_scale, SCALED_TYPES,
              description="Granite's embedding and residual multipliers (no parameters)"),
]
