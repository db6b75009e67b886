"""Every hook path, exercised with in-process plugins (no installs)."""

from __future__ import annotations

import json

import attrs
import numpy
import pytest

import mantile_core
from mantile_core import hookimpl, hookspecs
from mantile_core.errors import MissingPluginError, PluginConflictError, UnknownHardwareError
from mantile_core.hardware import HardwareSpec, get_hardware
from mantile_core.layers import Layer
from mantile_core.records import (CachePolicy, LayerSlot, LayerType, ModelLayout, RopeResult, RopeScaling,
                                  ValidationCase, ValidationOutcome)
from mantile_core.workload import LayerCost

TOY = "tests/data/toy-mixer.json"


@attrs.frozen(kw_only=True)
class Mixer(Layer):
    """A toy token mixer: one hidden x hidden matrix, 2·T·H² FLOPs."""

    kind: str = "mixer"
    hidden: int

    def params(self):
        return self.hidden * self.hidden

    def weight_bytes(self):
        return 2 * self.params()

    def cost(self, step):
        flops = 2 * step.tokens * self.hidden * self.hidden
        return LayerCost(flops=flops, matmul_flops=flops, weight_bytes=self.weight_bytes(),
                         resident_weight_bytes=self.weight_bytes(), kernels=1)


class MixerPlugin:
    @hookimpl
    def mantile_layer_types(self):
        return [LayerType("toy-mixer", "mixer", lambda cfg, slot: Mixer(name=slot.name, index=slot.index,
                                                                       hidden=cfg.hidden_size),
                          model_types={"toy_mixer"})]

    @hookimpl
    def mantile_model_layouts(self):
        def slots(cfg):
            return ([LayerSlot("embedding", None, "embed")]
                    + [LayerSlot("mixer", i, f"mixers.{i}") for i in range(cfg.num_layers)]
                    + [LayerSlot("lm_head", None, "head")])
        return [ModelLayout("toy-mixer", {"toy_mixer"}, slots)]


def test_layer_type_and_layout_hooks(mantile_plugins):
    mantile_plugins(MixerPlugin())
    model = mantile_core.load_model(TOY)
    assert [layer.kind for layer in model.layers] == ["embedding", "mixer", "mixer", "mixer", "lm_head"]
    assert model.params() == 1000 * 256 + 3 * 256 * 256 + 1000 * 256
    result = mantile_core.estimate(model, "h100", batch=2, input_len=10, output_len=4)
    mixer_rows = [r for r in result.to_dict()["layers"] if r["kind"] == "mixer"]
    assert [r["prefill"]["flops"] for r in mixer_rows] == [2 * 20 * 256 * 256] * 3
    assert mixer_rows[0]["type"] == "toy-mixer"


def test_unknown_model_type_without_plugin_is_one_clear_error(mantile_plugins):
    mantile_plugins()
    with pytest.raises(MissingPluginError, match="model_type 'toy_mixer' is not supported by the installed plugins"):
        mantile_core.load_model(TOY)


class TwiceRope:
    @hookimpl
    def mantile_rope_scalings(self):
        def compute(rope, head_dim, max_position_embeddings):
            inv = 1.0 / rope["rope_theta"] ** (numpy.arange(0, head_dim, 2) / head_dim)
            return RopeResult(inv / 2, 1.5)
        return [RopeScaling("twice", compute)]


def test_rope_scaling_hook_dispatch(mantile_plugins):
    mantile_plugins(TwiceRope())
    result = mantile_core.rope_scaling({"rope_type": "twice", "rope_theta": 10000.0}, 8, 2048)
    assert result.attention_factor == 1.5
    numpy.testing.assert_allclose(result.inv_freq, [0.5, 0.05, 0.005, 0.0005])


def test_missing_rope_type_names_the_plugin(mantile_plugins):
    mantile_plugins()
    with pytest.raises(MissingPluginError, match=r"pip install \./plugins/rope_yarn \(from the Mantile checkout\)"):
        mantile_core.rope_scaling({"rope_type": "yarn", "factor": 4.0}, 64, 4096)


def test_yarn_config_without_plugin_fails_naming_it(mantile_plugins, tmp_path):
    mantile_plugins()
    data = json.loads(open("mantile_core/data/models/qwen3-8b.json").read())
    data["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MissingPluginError, match="mantile-rope-yarn"):
        mantile_core.load_model(path)


class KeepLastFour:
    """A sliding policy that keeps 4 positions whatever the window (enough to test dispatch)."""

    @hookimpl
    def mantile_cache_policies(self):
        return [CachePolicy("last-four", "sliding", resident_positions=lambda t, w, b: numpy.minimum(t, 4),
                            attended_pairs=lambda n, c, w: n * 4, read_positions=lambda t, w, b: numpy.minimum(t, 4),
                            default=True)]


def test_cache_policy_hook(mantile_plugins):
    mantile_plugins(KeepLastFour())
    result = mantile_core.estimate("mistral-7b", "h100", batch=1, input_len=100, output_len=10).to_dict()
    attn = next(r for r in result["layers"] if r["kind"] == "attention")
    assert attn["decode"]["kv_cache_bytes"] == 2 * 8 * 4 * 128 * 2
    assert result["kv_policy"] == {"sliding": "last-four"}


def test_sliding_model_without_policy_names_swa_plugin(mantile_plugins):
    mantile_plugins()
    with pytest.raises(MissingPluginError, match=r"pip install \./plugins/swa_cache \(from the Mantile checkout\)"):
        mantile_core.load_model("mistral-7b")


class ToyGpu:
    @hookimpl
    def mantile_hardware(self):
        return [HardwareSpec(name="toy-gpu", description="a toy", peak_flops={"bf16": 1e12}, hbm_bytes=10**10,
                             hbm_bandwidth=1e11, link_bandwidth=1e10, link_latency=1e-5)]


def test_hardware_hook(mantile_plugins):
    mantile_plugins(ToyGpu())
    assert get_hardware("toy-gpu").hbm_bytes == 10**10
    assert mantile_core.estimate("llama-3.2-1b", "toy-gpu").to_dict()["memory"]["capacity_bytes"] == 10**10


def test_unknown_hardware(mantile_plugins):
    mantile_plugins()
    with pytest.raises(UnknownHardwareError, match="unknown hardware 'tpu9'"):
        get_hardware("tpu9")


class Checks:
    @hookimpl
    def mantile_validation_cases(self):
        return [ValidationCase("toy-pass", lambda: ValidationOutcome(True, "2 == 2")),
                ValidationCase("toy-fail", lambda: ValidationOutcome(False, "1 != 2"))]


def test_validation_case_hook(mantile_plugins):
    from mantile_core.cli.validate_cmd import run_cases

    mantile_plugins(Checks())
    statuses = {r["name"]: r["status"] for r in run_cases()}
    assert statuses == {"toy-fail": "failed", "toy-pass": "passed"}


class OtherMixer:
    @hookimpl
    def mantile_layer_types(self):
        return [LayerType("toy-mixer", "mixer", lambda cfg, slot: None, model_types={"other"})]


def test_name_conflict_names_both_distributions(mantile_plugins):
    from mantile_core.plugins import make_plugin_manager, set_plugin_manager

    pm = make_plugin_manager(entry_points=False, plugins=[(MixerPlugin(), "mantile-toy-a"), (OtherMixer(), "mantile-toy-b")])
    set_plugin_manager(pm)
    with pytest.raises(PluginConflictError, match="both mantile-toy-a and mantile-toy-b"):
        pm.registries


def test_core_names_cannot_be_shadowed(mantile_plugins):
    class Shadow:
        @hookimpl
        def mantile_hardware(self):
            from mantile_core.hardware import bundled_hardware

            return [bundled_hardware()[0]]

    pm = mantile_plugins(Shadow(), distribution="mantile-shadow")
    with pytest.raises(PluginConflictError, match="mantile-core and mantile-shadow|mantile-shadow and mantile-core"):
        pm.registries


def test_registries_sorted_whatever_the_order(mantile_plugins):
    a = mantile_plugins(ToyGpu(), TwiceRope()).registries
    b = mantile_plugins(TwiceRope(), ToyGpu()).registries
    assert list(a.hardware) == list(b.hardware) == sorted(a.hardware)
    assert list(a.rope_scalings) == list(b.rope_scalings)


def test_every_hook_is_documented_and_tested():
    import pathlib

    folder = pathlib.Path(__file__).parent
    here = (folder / "test_hooks.py").read_text() + (folder / "test_model_types.py").read_text()
    names = [n for n in dir(hookspecs) if n.startswith("mantile_")]
    assert len(names) == 7
    for name in names:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
        assert f"def {name}(self)" in here, f"{name} has no in-process test"
