"""Shared code for the classic CNN course: settings, data, models, training, plots and the notebook runner.

Submodules are imported on use (``import helpers.data``), so ``import helpers`` stays fast and does not
load TensorFlow — except in a notebook kernel, where it loads TensorFlow without its C++ start-up log
(``helpers.tensorflow_logs``; set ``CNN_TF_LOGS=1`` to see the log). Before TensorFlow can load, it turns
oneDNN's CPU kernels on where TensorFlow would leave them off (``helpers.cpu``; ``TF_ENABLE_ONEDNN_OPTS=0``
keeps them off).
"""

import sys

from helpers.cpu import announce_onednn_choice

__version__ = "0.1.0"

announce_onednn_choice()  # must come before TensorFlow is imported: it reads the setting once, at import

if "ipykernel" in sys.modules:  # a notebook: every one of them imports TensorFlow next
    from helpers.tensorflow_logs import import_quietly

    import_quietly()
