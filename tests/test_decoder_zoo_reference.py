"""mantile-decoder-zoo against transformers' own models of the families (tiny configs in each
family's spelling, real CPU executions): parameters, bytes, FlopCounterMode FLOPs of a prefill
and of a decode step, KV-cache tensor bytes. ``mantile validate`` runs every family; the tests
run the block shapes the issue names: MQA + parallel block (Falcon-7B), ALiBi, GPT-2's learned
positions and fused qkv, MiMo-V2-Flash's hybrid sliding / full layers."""

from __future__ import annotations

import pytest

pytest.importorskip("mantile_decoder_zoo")
pytest.importorskip("torch")
pytest.importorskip("transformers")

from mantile_decoder_zoo.validation import TINY, VALIDATION_CASES, family_figures  # noqa: E402


@pytest.mark.parametrize("key", ["falcon-7b", "falcon-alibi", "gpt2", "mimo_v2_flash"])
def test_family_equals_transformers(key):
    fig = family_figures(key)
    assert fig["measured"] == fig["analytic"]
    assert fig["analytic"]["decode_matmul_flops"] > 0 and fig["analytic"]["kv_decode_bytes"] > 0


def test_every_family_has_a_validation_case():
    from mantile_decoder_zoo.validation import GROUPS

    assert sorted(k for keys in GROUPS.values() for k in keys) == sorted(TINY)
    assert len(VALIDATION_CASES) == len(GROUPS)
