"""How to install a Mantile distribution, for the hints in error messages.

The plugins are not published on a package index yet (and a ``mantile-*`` name there could
belong to anyone), so a hint names the distribution's directory in the Mantile checkout:
``pip install ./plugins/gpt_oss_attention``. Every hint goes through :func:`install_hint`,
which takes its paths from the one map :data:`CHECKOUT_PATHS` (distribution name ->
directory relative to the checkout root). A distribution missing from the map is looked for
at ``plugins/<name without "mantile-", "-" as "_">``, the layout every plugin follows. pip
would look the ``mantile-*`` requirements of a directory up on an index, so a hint also names
the directories of those (:data:`CHECKOUT_REQUIRES`, the core excepted: it is installed).
``tests/test_install_hints.py`` checks that every hinted directory exists and holds the
distribution of that name, and that CHECKOUT_REQUIRES matches the pyproject files.
"""

from __future__ import annotations

__all__ = ["CHECKOUT_PATHS", "CHECKOUT_REQUIRES", "checkout_path", "install_hint"]

CHECKOUT_PATHS: dict[str, str] = {
    "mantile-core": ".",
    "mantile-gpt-oss-attention": "plugins/gpt_oss_attention",
    "mantile-rope-yarn": "plugins/rope_yarn",
    "mantile-swa-cache": "plugins/swa_cache",
    "mantile-mamba": "examples/mamba_mixer",
    "mantile-mla": "plugins/mla",
    "mantile-recurrent": "plugins/recurrent",
    "mantile-decoder-zoo": "plugins/decoder_zoo",
    "mantile-gemma": "plugins/gemma",
    "mantile-llama4": "plugins/llama4",
    "mantile-phi": "plugins/phi",
    "mantile-rope-longrope": "plugins/rope_longrope",
}

CHECKOUT_REQUIRES: dict[str, tuple[str, ...]] = {
    "mantile-gpt-oss-attention": ("mantile-rope-yarn", "mantile-swa-cache"),
    "mantile-mla": ("mantile-rope-yarn", "mantile-swa-cache"),
    "mantile-decoder-zoo": ("mantile-swa-cache", "mantile-gpt-oss-attention", "mantile-mla"),
    "mantile-gemma": ("mantile-swa-cache",),
    "mantile-llama4": ("mantile-swa-cache",),
    "mantile-phi": ("mantile-swa-cache", "mantile-rope-longrope"),
}
"""The ``mantile-*`` requirements (besides mantile-core) of each checkout distribution."""


def checkout_path(distribution: str) -> str:
    """The directory of ``distribution`` in the checkout, as pip takes it: "./plugins/rope_yarn"."""
    path = CHECKOUT_PATHS.get(distribution)
    if path is None:
        path = "plugins/" + distribution.removeprefix("mantile-").replace("-", "_")
    return "./" if path == "." else f"./{path}"


def _with_requirements(names, seen: dict[str, None]) -> dict[str, None]:
    """``names`` and their CHECKOUT_REQUIRES, each after what it requires, once."""
    for name in names:
        if name not in seen:
            _with_requirements(CHECKOUT_REQUIRES.get(name, ()), seen)
            seen[name] = None
    return seen


def install_hint(*distributions: str, extra: str | None = None) -> str:
    """``pip install`` of the distributions' checkout directories (their mantile-*
    requirements first), run from the checkout root: install_hint("mantile-rope-yarn") ->
    "pip install ./plugins/rope_yarn (from the Mantile checkout)"; ``extra`` adds an extra to
    the distributions asked for ("'./[plot]'")."""
    targets = []
    for name in _with_requirements(distributions, {}):
        path = checkout_path(name)
        targets.append(f"'{path}[{extra}]'" if extra and name in distributions else path)
    return f"pip install {' '.join(targets)} (from the Mantile checkout)"
