"""Shared code for the classic CNN course: settings, data, models, training, plots and the notebook runner.

Submodules are imported on use (``import helpers.data``), so ``import helpers`` stays fast and does not
load TensorFlow.
"""

__version__ = "0.1.0"
