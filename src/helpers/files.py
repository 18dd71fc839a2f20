"""Writing a file so that no reader ever sees half of it: write beside it under a scratch name, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def written_whole(target: Path | str, mode: str = "wb"):
    """Open a scratch file beside ``target`` for writing; on a clean exit it becomes ``target`` in one rename.

    On any error (the writer's, or an interrupt) the scratch file is removed and ``target`` is left as it was.
    Creating the folder or the scratch file can raise ``OSError`` (e.g. a read-only folder), before anything is
    written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(scratch, target)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
