"""Headline results a notebook records (JSON in ``settings.results_dir()``), read by the runner and notebook 06."""

from __future__ import annotations

import dataclasses
import json
import math
import time

from helpers import settings
from helpers.files import written_whole


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What ``record`` saved; a notebook's last cell shows it as one sentence, not as a raw dictionary."""

    entry: dict
    path: str

    def __repr__(self) -> str:
        value = self.entry["metrics"][self.entry["headline"]]
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        return (f"Recorded {self.entry['notebook']}: {self.entry['headline']} = {shown}, with "
                f"{len(self.entry['metrics']) - 1} more figures, in the results folder for notebook 06 and the runner")


def record(notebook: str, headline: str, **metrics) -> Recorded:
    """Save ``metrics`` for ``notebook``; ``headline`` names the one the runner's summary shows."""
    if headline not in metrics:
        raise KeyError(f"headline {headline!r} is not among the metrics {sorted(metrics)}.")
    for name, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"metric {name} is {value}; a run that produced it has failed.")
    entry = {"notebook": notebook, "headline": headline, "time": time.time(), "metrics": metrics}
    folder = settings.results_dir()
    with written_whole(folder / f"{notebook}.json", "w") as f:
        json.dump(entry, f, indent=2, default=float)
    return Recorded(entry, str(folder / f"{notebook}.json"))


def load(notebook: str) -> dict | None:
    """The last recorded results of ``notebook``, or None if it has not recorded any."""
    path = settings.results_dir() / f"{notebook}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
