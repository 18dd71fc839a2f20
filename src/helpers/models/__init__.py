"""Model builders, one module per architecture, behind one contract::

    helpers.models.build(name, *, input_shape, num_classes, **options) -> keras.Model
    helpers.models.names() -> sorted list of names

Each architecture module registers its names with ``@register``; importing this package imports them all.
"""

import importlib
import pkgutil

from helpers.models._registry import build, check_input_size, names, register

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["build", "check_input_size", "names", "register"]
