"""MiMo-V2-Flash's sliding layers: attention with a learned sink logit per query head — the
sink mechanism of mantile-gpt-oss-attention (its parameters, FLOPs and sharding), reused, with
MiMo's own shapes (no biases, v_head_dim 128 under a q/k head_dim of 192) and its value scale
(1 FLOP per v element)."""

from __future__ import annotations

import attrs
from mantile_core.layers import local_kv_heads
from mantile_core.workload import Step
from mantile_gpt_oss_attention.layers import GptOssAttention

__all__ = ["SinkAttention"]


@attrs.frozen(kw_only=True)
class SinkAttention(GptOssAttention):
    """GPT-OSS-style sinks (``heads`` parameters, 4 FLOPs per query token per head) on the
    core attention, biases as configured, optional value scale."""

    q_bias: bool = False
    k_bias: bool = False
    v_bias: bool = False
    o_bias: bool = False
    v_scale: bool = False

    def extra_flops(self, step: Step, heads_local, pairs):
        kvl = local_kv_heads(self.kv_heads, step.tp)
        return super().extra_flops(step, heads_local, pairs) + step.tokens * kvl * self.value_dim * self.v_scale

    def extra_kernels(self) -> int:
        return super().extra_kernels() + self.v_scale

    def describe(self) -> dict:
        return super().describe() | ({"v_scale": True} if self.v_scale else {})
