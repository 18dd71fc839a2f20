"""Download a file once, verify it, and never leave a partial or corrupt file where the loader looks."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

from helpers import settings
from helpers.files import written_whole


class DatasetUnavailableError(FileNotFoundError):
    """A dataset file is missing (or corrupt) and could not be downloaded."""


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, timeout: float) -> None:
    # An interrupted download never sits under the real name.
    with written_whole(target) as out, urllib.request.urlopen(url, timeout=timeout) as response:
        shutil.copyfileobj(response, out)


def fetch(filename: str, urls: list[str], folder: Path, md5: str | None = None, timeout: float = 60.0) -> Path:
    """Return ``folder/filename``, downloading it from the first working URL if it is missing or corrupt.

    A file whose md5 does not match is never returned. Raises :class:`DatasetUnavailableError` naming the
    file, the URLs and the folder when no good copy can be had.
    """
    folder = Path(folder)
    target = folder / filename
    if target.is_file() and (md5 is None or md5_of(target) == md5):
        return target
    corrupt = target.is_file()
    errors = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        errors.append(f"cannot create the folder: {e}")
    else:
        for url in urls:
            # Download under a scratch name first so a bad copy never replaces anything.
            scratch = folder / f".{filename}.download"
            try:
                _download(url, scratch, timeout)
            except Exception as e:  # network errors come in many types; each is reported below
                errors.append(f"{url}: {e}")
                continue
            if md5 is not None and md5_of(scratch) != md5:
                scratch.unlink(missing_ok=True)
                errors.append(f"{url}: downloaded file has the wrong md5 checksum")
                continue
            os.replace(scratch, target)
            return target
    state = "is corrupt (md5 mismatch)" if corrupt else "is missing"
    raise DatasetUnavailableError(
        f"{filename} {state} in {folder} and could not be downloaded.\n"
        f"Download it from {urls[0]}"
        + (f" (or a mirror: {', '.join(urls[1:])})" if len(urls) > 1 else "")
        + f" and put it in {folder}/, or set {settings.DATA_DIR_ENV} to a folder that holds it."
        + ("\nAttempts:\n  " + "\n  ".join(errors) if errors else "")
    )
