"""Models by their library's own name: ``timm:<name>``, ``tv:<name>``, ``package.module:factory``.

- ``timm:<name>``: any model of the installed timm (``timm.list_models()``, a pretrained tag
  allowed), built with ``pretrained=False`` (nothing is downloaded).
- ``tv:<name>``: a torchvision classification model
  (``torchvision.models.list_models(module=torchvision.models)``), built with ``weights=None``.
- ``package.module:factory``: the user's own callable returning an ``nn.Module`` (a function or an
  ``nn.Module`` class), imported by name; the module is looked up on ``sys.path`` and then in the
  current directory.

Each is built at the input size asked for where its constructor takes one (timm's ``img_size``,
torchvision's ``image_size``, a factory's ``img_size``) and with ``num_classes`` where it takes it;
a model whose constructor takes no size must take the size as it is. ``build`` then runs one
forward pass at batch 1 on the CPU (eval mode, no gradients): a model that cannot take the size
(a fixed-size model, a map shrunk to nothing, logits of another shape) raises
``UnsupportedInput`` with the model's own error, before any measurement.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

TIMM_PREFIX = "timm:"
TV_PREFIX = "tv:"
WILDCARD_CHARS = "*?["
# torchvision models that return auxiliary logits in training: built with the main head only
TV_WITHOUT_AUX_LOGITS = ("googlenet", "inception_v3")
_FACTORY_RE = re.compile(
    r"^(?P<module>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r":(?P<attr>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)$"
)


class UnsupportedInput(Exception):
    """The model cannot take this input size; the message says why."""


def has_wildcard(text: str) -> bool:
    return any(c in text for c in WILDCARD_CHARS)


def is_factory_name(name: str) -> bool:
    """``package.module:factory`` (checked by form only; ``timm:``/``tv:`` are libraries)."""
    return not name.startswith((TIMM_PREFIX, TV_PREFIX)) and bool(_FACTORY_RE.match(name))


def _close(prefix: str, name: str, candidates: list[str]) -> str:
    matches = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(prefix + m for m in matches)}?" if matches else ""


# --- timm ----------------------------------------------------------------------------------------


def check_timm(name: str) -> None:
    """ValueError (one line) unless ``name`` is a model of the installed timm."""
    import timm

    if not timm.is_model(name):
        raise ValueError(
            f"unknown model {TIMM_PREFIX + name!r}: no such model in timm {timm.__version__} "
            f"(see timm.list_models()){_close(TIMM_PREFIX, name, timm.list_models())}"
        )


def timm_matches(pattern: str) -> list[str]:
    import timm

    return list(timm.list_models(pattern))


def timm_family(name: str) -> str:
    """The timm module that defines the model: ``convnext``, ``vision_transformer``, ..."""
    from timm.models import get_arch_name, model_entrypoint

    return model_entrypoint(get_arch_name(name)).__module__.rsplit(".", 1)[-1]


def build_timm(
    name: str, num_classes: int, hw: tuple[int, int], options: dict[str, Any] | None = None
) -> nn.Module:
    """``timm.create_model(name, pretrained=False)``, at ``img_size=hw`` where it takes one."""
    import timm

    kwargs = {"num_classes": num_classes, **(options or {})}
    return _with_size(
        TIMM_PREFIX + name,
        hw,
        lambda **size: timm.create_model(name, pretrained=False, **kwargs, **size),
        [{"img_size": hw}],
    )


# --- torchvision ---------------------------------------------------------------------------------


def tv_names() -> list[str]:
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def check_tv(name: str) -> None:
    """ValueError (one line) unless ``name`` is a torchvision classification model."""
    import torchvision

    names = tv_names()
    if name not in names:
        raise ValueError(
            f"unknown model {TV_PREFIX + name!r}: not a torchvision {torchvision.__version__} "
            f"classification model (see torchvision.models.list_models()){_close(TV_PREFIX, name, names)}"
        )


def tv_matches(pattern: str) -> list[str]:
    return [n for n in tv_names() if fnmatch.fnmatchcase(n, pattern)]


def tv_family(name: str) -> str:
    import torchvision

    return torchvision.models.get_model_builder(name).__module__.rsplit(".", 1)[-1]


def build_tv(name: str, num_classes: int, hw: tuple[int, int]) -> nn.Module:
    """``torchvision.models.get_model(name, weights=None)``, sized where it takes a size."""
    import torchvision

    kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes}
    if name in TV_WITHOUT_AUX_LOGITS:
        kwargs["aux_logits"] = False
    sizes = [{"input_size": hw}]  # MaxViT
    if hw[0] == hw[1]:
        sizes.insert(0, {"image_size": hw[0]})  # ViT (square inputs only)
    return _with_size(
        TV_PREFIX + name,
        hw,
        lambda **size: torchvision.models.get_model(name, **kwargs, **size),
        sizes,
    )


def _with_size(
    name: str, hw: tuple[int, int], build: Callable[..., nn.Module], sizes: list[dict[str, Any]]
) -> nn.Module:
    """``build(**size)`` with the first size keyword the constructor takes, else ``build()``.

    A constructor that takes the size and refuses it (raises anything but a TypeError about the
    keyword) raises ``UnsupportedInput`` with its own message."""
    for size in sizes:
        (keyword,) = size
        try:
            return build(**size)
        except TypeError as error:
            if f"'{keyword}'" not in str(error):
                raise
        except Exception as error:
            raise UnsupportedInput(
                f"{name} at {hw[0]}x{hw[1]}: cannot be built at that size ({_one_line(error)})"
            ) from None
    return build()


def _one_line(error: BaseException, limit: int = 300) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())[:limit]


# --- the user's factories ------------------------------------------------------------------------


def load_factory(name: str) -> Callable[..., Any]:
    """The callable ``package.module:factory`` names; ValueError (one line) when it cannot be had.

    The module is imported (its top level runs) from ``sys.path``, then from the current
    directory, which is appended to ``sys.path`` for that.
    """
    match = _FACTORY_RE.match(name)
    if match is None:
        raise ValueError(f"bad model {name!r}; a factory is named package.module:callable")
    module_name, attr = match["module"], match["attr"]
    cwd = os.getcwd()
    if importlib.util.find_spec(module_name.split(".")[0]) is None and cwd not in sys.path:
        sys.path.append(cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the user's module failed to import: say how, in one line
        raise ValueError(
            f"model {name!r}: cannot import module {module_name!r} ({_one_line(error)})"
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(f"model {name!r}: module {module_name!r} has no {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"model {name!r}: {attr!r} is a {type(target).__name__}, not a callable")
    return target


def factory_keywords(factory: Callable[..., Any]) -> set[str]:
    """Which of ``num_classes`` and ``img_size`` the factory names as parameters."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: pass nothing
        return set()
    return {k for k in ("num_classes", "img_size") if k in parameters}


def build_factory(name: str, num_classes: int, hw: tuple[int, int]) -> nn.Module:
    """Call the factory with ``num_classes`` and ``img_size`` (an ``(H, W)`` tuple) where its
    signature names them; ``TypeError`` unless it returns an ``nn.Module``."""
    factory = load_factory(name)
    offered = {"num_classes": num_classes, "img_size": hw}
    model = factory(**{k: offered[k] for k in factory_keywords(factory)})
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model {name!r}: the factory returned a {type(model).__name__}, not an nn.Module"
        )
    return model


# --- the size check ------------------------------------------------------------------------------


def probe_input(name: str, model: nn.Module, hw: tuple[int, int], num_classes: int) -> None:
    """One forward pass at batch 1 on the CPU, eval mode, no gradients; ``UnsupportedInput``
    with the model's own error when it fails or returns anything but ``(1, num_classes)`` logits.
    The model's train/eval mode is restored; a model not on the CPU is not probed."""
    if any(p.device.type != "cpu" for p in model.parameters()):
        return
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 3, *hw))
    except Exception as error:
        text = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        raise UnsupportedInput(
            f"{name} at {hw[0]}x{hw[1]}: its forward pass fails ({text})"
        ) from None
    finally:
        model.train(was_training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (1, num_classes):
        raise UnsupportedInput(
            f"{name} at {hw[0]}x{hw[1]} returns {shape} for one image; the suites need logits "
            f"(1, {num_classes}) (a factory gets num_classes when it has that parameter)"
        )
