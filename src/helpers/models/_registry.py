"""The name -> builder table behind ``helpers.models.build``, and the input checks every builder shares."""

from __future__ import annotations

import inspect
from typing import Callable

_BUILDERS: dict[str, Callable] = {}


def register(*names: str, **fixed_options):
    """Register a builder under one or more names; ``fixed_options`` are passed to it for those names.

    ``@register("vgg16", config="D")`` lets one function build several named networks.
    """

    def decorate(builder: Callable) -> Callable:
        for name in names:
            if name in _BUILDERS:
                raise ValueError(f"model name {name!r} is registered twice")
            _BUILDERS[name] = (builder, fixed_options)
        return builder

    return decorate


def names() -> list[str]:
    return sorted(_BUILDERS)


def build(name: str, *, input_shape, num_classes: int, **options):
    """Build the named network for ``input_shape`` (H, W, C) and ``num_classes`` outputs."""
    if name not in _BUILDERS:
        raise KeyError(f"Unknown model {name!r}. Known models: {', '.join(names())}.")
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ValueError(f"input_shape must be (height, width, channels) of positive ints, not {input_shape}.")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int of at least 2, not {num_classes!r}.")
    builder, fixed = _BUILDERS[name]
    clash = set(fixed) & set(options)
    if clash:
        raise TypeError(f"{name!r} fixes {sorted(clash)}; choose another model name instead.")
    accepted = inspect.signature(builder).parameters
    unknown = [k for k in options if k not in accepted]
    if unknown:
        allowed = sorted(k for k in accepted if k not in ("input_shape", "num_classes") and k not in fixed)
        raise TypeError(f"{name!r} has no option {unknown}; its options are {allowed}.")
    return builder(input_shape=input_shape, num_classes=num_classes, **fixed, **options)


def check_input_size(name: str, input_shape, min_size: int) -> None:
    """Fail early, in words, when the feature maps would shrink below 1×1 inside the network."""
    height, width = input_shape[:2]
    if min(height, width) < min_size:
        raise ValueError(
            f"{name} needs inputs of at least {min_size}×{min_size} pixels; got {height}×{width}. "
            f"Resize the images (e.g. IMAGE_SIZE={min_size}) or pick a network made for small inputs."
        )
