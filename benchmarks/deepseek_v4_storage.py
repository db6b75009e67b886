"""DeepSeek-V4's checkpoint storage by dtype, from transformers' own fp8 quantizer (independent of
Mantile): the model is built on the meta device from the published config.json and its linears
are replaced as ``from_pretrained`` replaces them for a pre-quantized checkpoint
(``quant_method`` fp8, ``weight_block_size`` [128, 128], ``scale_fmt`` ue8m0,
``expert_dtype`` fp4), then every parameter and persistent buffer is summed by dtype::

    .venv/bin/python benchmarks/deepseek_v4_storage.py tests/data/hf_collection/deepseek-ai--DeepSeek-V4-Flash_config.json

transformers 5.24.0, torch 2.13.0 (``tests/test_mla_v4.py`` holds the figures it printed).
"""

from __future__ import annotations

import collections
import json
import re
import sys


def storage(path: str) -> tuple[dict, dict, dict]:
    """(elements by dtype, bytes by dtype, module names by dtype) of the quantized meta model."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.quantizers.auto import AutoHfQuantizer

    raw = json.loads(open(path).read())
    config = AutoConfig.for_model(**{k: v for k, v in raw.items() if k not in ("architectures", "transformers_version")})
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    quantizer = AutoHfQuantizer.from_config(config.quantization_config, pre_quantized=True)
    quantizer._process_model_before_weight_loading(model)
    elements, nbytes, names = collections.Counter(), collections.Counter(), collections.defaultdict(set)
    persistent = dict(model.state_dict(keep_vars=True))
    for name, tensor in persistent.items():
        key = str(tensor.dtype).removeprefix("torch.")
        elements[key] += tensor.numel()
        nbytes[key] += tensor.numel() * tensor.element_size()
        names[key].add(re.sub(r"\.\d+\.", ".N.", name))
    return dict(elements), dict(nbytes), {k: sorted(v) for k, v in names.items()}


def main(argv: list[str]) -> int:
    for path in argv:
        elements, nbytes, names = storage(path)
        print(path)
        print(" elements", json.dumps(elements, sort_keys=True))
        print(" bytes   ", json.dumps(nbytes, sort_keys=True), "total", sum(nbytes.values()))
        for dtype, modules in sorted(names.items()):
            print(f"  {dtype}: {', '.join(modules)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
