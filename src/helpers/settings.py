"""One MODE knob, the run sizes derived from it, seeding, and where data and results live.

Three modes: ``"quick"`` (what CI runs: every code path on a few real images, about a minute a notebook),
``"cpu"`` (a meaningful result on a 2-core CPU within 30 minutes a notebook) and ``"full"`` (the paper-scale
run, for a GPU). A notebook's ``parameters`` cell reads ``MODE = helpers.settings.mode_default()`` and
``QUICK = None``; papermill's ``-p MODE cpu`` or ``-p QUICK True``, the environment (``CNN_MODE=cpu``,
``CNN_QUICK=1``) and editing the cell all end in ``run_config(profile, mode=MODE, quick=QUICK, ...)``, the single
place where run sizes are decided. The modes only change numbers: the code path is the same in all three.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

MODES = ("quick", "cpu", "full")
MODE_ENV = "CNN_MODE"
QUICK_ENV = "CNN_QUICK"
DATA_DIR_ENV = "CNN_DATA_DIR"
RESULTS_DIR_ENV = "CNN_RESULTS_DIR"
CACHE_DIR_ENV = "CNN_CACHE_DIR"
RUNS_DIR_ENV = "CNN_RUNS_DIR"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def quick_default() -> bool:
    """QUICK as the environment says (``CNN_QUICK``); False when it is unset."""
    raw = os.environ.get(QUICK_ENV, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{QUICK_ENV}={os.environ[QUICK_ENV]!r} is not a yes/no value; use 1 or 0.")


def _accelerator_present() -> bool:
    from helpers.devices import accelerator  # loads TensorFlow; a notebook kernel has it loaded already

    return accelerator() != "cpu"


def mode_default() -> str:
    """The mode when a notebook's cell is left as it is: ``CNN_MODE`` if set, else ``"quick"`` under
    ``CNN_QUICK=1``, else ``"full"`` where a GPU or TPU is present and ``"cpu"`` everywhere else."""
    raw = os.environ.get(MODE_ENV, "").strip().lower()
    if raw:
        if raw not in MODES:
            raise ValueError(f"{MODE_ENV}={os.environ[MODE_ENV]!r} is not a mode; use one of {', '.join(MODES)}.")
        return raw
    if quick_default():
        return "quick"
    return "full" if _accelerator_present() else "cpu"


def resolve_mode(mode: str | None = None, quick: bool | None = None) -> str:
    """The mode a run uses: ``quick=True`` (papermill's ``-p QUICK True``, the older knob) means ``"quick"``;
    otherwise ``mode``; a call that names neither reads the environment, one with only ``quick=False`` is full."""
    if quick is not None and not isinstance(quick, bool):
        raise TypeError(f"QUICK must be True, False or None, not {quick!r}.")
    if quick:
        return "quick"
    if mode is None:
        return "full" if quick is False else mode_default()
    if not isinstance(mode, str) or mode.strip().lower() not in MODES:
        raise ValueError(f"MODE must be one of {', '.join(repr(m) for m in MODES)}, not {mode!r}.")
    return mode.strip().lower()


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every size a notebook's run depends on. ``None`` sample counts mean "all of them"."""

    profile: str
    mode: str  # "quick", "cpu" or "full"
    quick: bool  # mode == "quick", kept for the results records and older cells
    seed: int
    epochs: int
    batch_size: int
    image_size: int
    train_samples: int | None
    val_samples: int | None
    width: float = 1.0
    test_samples: int | None = None
    minutes: float | None = None  # a time budget per network instead of epochs (notebook 06's CPU setting)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for the top of a notebook: the mode, what it trains, and how long it took where measured."""
        images = "all" if self.train_samples is None else f"{self.train_samples:,}"
        width = "" if self.width == 1.0 else f", width {self.width:g}"
        length = f"{self.minutes:g} minutes per network" if self.minutes else f"{self.epochs} epoch(s)"
        line = f"Mode {self.mode!r}: {length} on {images} training images at {self.image_size} px, batch {self.batch_size}{width}."
        if self.profile not in MEASURED:  # a notebook's second run: its first line has the notebook's time
            return line
        measured = MEASURED[self.profile].get(self.mode, "not yet recorded")
        return (f"{line} The whole notebook in this mode: {measured}. (Modes: 'quick', 'cpu', 'full': set MODE in "
                f"the parameters cell, or CNN_MODE.)")


# The one table of run sizes. Each profile has its full-mode sizes, and the CPU and QUICK overrides of them; every
# other field is shared, so no mode can drift into a different experiment.
PROFILES: dict[str, dict] = {
    "cnn_basics": dict(
        full=dict(epochs=3, batch_size=128, image_size=28, train_samples=None, val_samples=None),
        cpu=dict(),
        quick=dict(epochs=1, train_samples=10000, val_samples=2000),
    ),
    "lenet5": dict(  # the paper's 20 passes; ≈ 5 s an epoch per variant on a free 2-core CPU, so CPU = full
        full=dict(epochs=20, batch_size=64, image_size=32, train_samples=None, val_samples=None),
        cpu=dict(),
        quick=dict(epochs=1, train_samples=12000, val_samples=2000),
    ),
    # Dogs vs. Cats notebooks: one profile each, so each network's CPU-friendly defaults can differ. Full mode for
    # 02 and 03 is already a CPU-sized net (the papers' nets need a GPU and are set by hand, as the notebooks say).
    "alexnet": dict(  # image_size = the crop fed to the network; AlexNet needs at least 67 pixels
        full=dict(epochs=30, batch_size=32, image_size=128, width=0.5, train_samples=None, val_samples=None),
        cpu=dict(),
        quick=dict(epochs=1, image_size=96, train_samples=256, val_samples=128),
    ),
    "vgg": dict(  # VGG-16 (BN), width 0.25, 96 px: ≈ 25 s an epoch on a quiet 2-core CPU, 77 % val.
        full=dict(epochs=30, batch_size=32, image_size=96, width=0.25, train_samples=None, val_samples=None),
        cpu=dict(),
        quick=dict(epochs=1, image_size=48, train_samples=128, val_samples=64),
    ),
    "googlenet": dict(  # full: the whole network, for a GPU; CPU: half the widths at 96 px (498 s of training)
        full=dict(epochs=30, batch_size=32, image_size=128, train_samples=None, val_samples=None, width=1.0),
        cpu=dict(epochs=20, image_size=96, width=0.5),
        quick=dict(epochs=1, image_size=72, train_samples=256, val_samples=128, width=0.25),
    ),
    # Notebook 05 on CIFAR-10. The degradation experiment (He et al. §4.2, Fig. 6): plain vs residual nets,
    # 45,000 training / 5,000 validation images, the paper's 64k iterations (182 epochs of 352 steps) in full
    # mode, for a GPU. CPU: 5 epochs of 10,000 images (14.4 min for the four nets, measured on 2 cores).
    "resnet_degradation": dict(
        full=dict(epochs=182, batch_size=128, image_size=32, train_samples=None, val_samples=None),
        cpu=dict(epochs=5, train_samples=10000),
        quick=dict(epochs=1, train_samples=512, val_samples=256, test_samples=500),
    ),
    # ResNet-20 trained to a result with the short recipe (helpers.recipes.SHORT) on all 50,000 training
    # images, reported on all 10,000 test images. 18 epochs took 28.7 min on 2 cores (89.95 %); beside the
    # degradation experiment that is 43 min, so the CPU mode trains 8 epochs (13 min; the notebook 29.8 min).
    "resnet_cifar10": dict(
        full=dict(epochs=40, batch_size=128, image_size=32, train_samples=None, val_samples=None),
        cpu=dict(epochs=8),
        quick=dict(epochs=1, train_samples=1024, test_samples=1000),
    ),
    # Notebook 06's race on CIFAR-10: full = equal epochs for all eight networks (for a GPU); CPU = equal time,
    # 2 minutes of training steps each (4 minutes made the notebook 41 min). QUICK: one epoch of 512 images
    # each, at a quarter of the widths (the ImageNet nets at full width take minutes to build and trace).
    "comparison": dict(
        full=dict(epochs=30, batch_size=128, image_size=32, train_samples=None, val_samples=None),
        cpu=dict(minutes=2, val_samples=1000),
        quick=dict(epochs=1, train_samples=512, val_samples=128, test_samples=500, width=0.25),
    ),
    # Notebook 07: ResNet-20 pretrained on CIFAR-10 (all 50,000 training images, notebook 05's short recipe) …
    "transfer_pretrain": dict(
        full=dict(epochs=8, batch_size=128, image_size=32, train_samples=None, val_samples=None),
        cpu=dict(),
        quick=dict(epochs=1, train_samples=1024, test_samples=500),
    ),
    # … then Dogs vs. Cats four ways at 64 px, on 1,600 training images (400 held out for choices), scored on the
    # 1,000 validation images. QUICK: 32 px and a few hundred images, one epoch.
    "transfer": dict(
        full=dict(epochs=15, batch_size=64, image_size=64, train_samples=None, val_samples=None),
        cpu=dict(),
        quick=dict(epochs=1, image_size=32, train_samples=256, val_samples=128),
    ),
    # Notebook 08 (the capstone) on CIFAR-10: the speed records' recipe (helpers.speedrun.Recipe) on all 50,000
    # training images, scored on all 10,000 test images; 14 epochs of batch 1,024. QUICK: 5 epochs of 3 steps (the
    # lookahead, from epoch 3 every 5 steps, starts and updates; the whitening bias freezes) of 256 images: with
    # oneDNN off, steps of 1,024 took 89 s of the notebook's 178.
    "speedrun": dict(
        full=dict(epochs=14, batch_size=1024, image_size=32, train_samples=None, val_samples=None),
        cpu=dict(),
        quick=dict(epochs=5, batch_size=256, train_samples=768, test_samples=500),
    ),
    # … and its ablation: every row of helpers.speedrun.ABLATION trained for fewer epochs. Full: 5 epochs on all
    # images (7–8 min a row, 88 min for the notebook). CPU mode leaves the ablation out (the notebook's ABLATION):
    # what fits beside the 14-epoch recipe, 2 epochs of 8,000 images a row, made the notebook 36 min and could not
    # show the lookahead (it starts after 3 epochs). QUICK: one step a row.
    "speedrun_ablation": dict(
        full=dict(epochs=5, batch_size=1024, image_size=32, train_samples=None, val_samples=None),
        cpu=dict(),
        quick=dict(epochs=1, batch_size=256, train_samples=256, test_samples=100),
    ),
    # The ingredients' experiments (helpers.ingredients). CPU mode, both runs of an experiment, measured on a 2-core
    # AMD EPYC (TF 2.21) that other jobs shared: optimisers 18 s, activation 108 s, dropout 130 s, batch_norm 70 s.
    "optimisers": dict(  # notebook 00: the small CNN on MNIST, one plain model.fit per optimiser
        full=dict(epochs=1, batch_size=128, image_size=28, train_samples=20000, val_samples=5000),
        cpu=dict(),
        quick=dict(train_samples=1024, val_samples=512),
    ),
    "activation": dict(  # notebook 02: ReLU vs tanh; SGD + momentum 0.9, no regularisation (as the paper's Fig. 1 run)
        full=dict(epochs=30, batch_size=128, image_size=32, train_samples=None, val_samples=None),
        cpu=dict(epochs=6, train_samples=10000, val_samples=1000),
        quick=dict(epochs=2, train_samples=256, val_samples=64),
    ),
    "dropout": dict(  # notebook 02: few images, many epochs, the regime where a net memorises its training set
        full=dict(epochs=60, batch_size=128, image_size=32, train_samples=10000, val_samples=5000),
        cpu=dict(epochs=20, train_samples=3000, val_samples=1000),
        quick=dict(epochs=2, train_samples=256, val_samples=64),
    ),
    "batch_norm": dict(  # notebook 03: a VGG-11 with and without batch norm
        full=dict(epochs=30, batch_size=128, image_size=32, train_samples=None, val_samples=None),
        cpu=dict(epochs=8, train_samples=8000, val_samples=1000),
        quick=dict(epochs=1, train_samples=256, val_samples=64),
    ),
}

# How long a whole notebook took in each mode, where a run was recorded (the README's results tables; QUICK from
# `make run` on a fresh clone): "cpu" rows exist only where the CPU sizes equal a recorded run's.
_CPU = "a 2-core AMD EPYC (AVX-512) with TF 2.21"
MEASURED: dict[str, dict[str, str]] = {
    "cnn_basics": {"quick": f"19.6 s on {_CPU}", "cpu": f"109 s of training on {_CPU}"},
    "lenet5": {"quick": f"21.1 s on {_CPU}", "cpu": f"106.5 s (as published) + 88.5 s (modern) of 20-epoch runs on {_CPU}"},
    "alexnet": {"quick": f"21.1 s on {_CPU}", "cpu": f"531.4 s on {_CPU}"},
    "vgg": {"quick": f"22.1 s on {_CPU}", "cpu": f"25 min on {_CPU}"},
    "googlenet": {"quick": f"22.0 s on {_CPU}", "cpu": f"498 s of training on {_CPU}"},
    "resnet_degradation": {"quick": f"51.2 s on {_CPU}", "cpu": f"1,219 s on {_CPU}"},
    "comparison": {"quick": f"58.1 s on {_CPU}", "cpu": f"1,478 s on {_CPU}"},
    "transfer_pretrain": {"quick": f"29.0 s on {_CPU}", "cpu": f"1,263 s on {_CPU}"},
    "speedrun": {"quick": f"71.7 s on {_CPU}", "cpu": f"23.3 min of training on {_CPU}"},
}


def run_config(
    profile: str,
    *,
    mode: str | None = None,
    quick: bool | None = None,
    seed: int = 42,
    **overrides,
) -> RunConfig:
    """Run sizes for ``profile`` in ``mode`` (see ``resolve_mode``); ``overrides`` set by hand win, ``None`` ones do not.

    ``mode=None, quick=None`` reads ``CNN_MODE`` / ``CNN_QUICK`` (what a parameters cell left at its default does).
    """
    if profile not in PROFILES:
        raise KeyError(f"Unknown run profile {profile!r}; known: {', '.join(sorted(PROFILES))}.")
    mode = resolve_mode(mode, quick)
    sizes = dict(PROFILES[profile]["full"])
    if mode != "full":
        sizes.update(PROFILES[profile][mode])
    known = {f.name for f in dataclasses.fields(RunConfig)}
    for name, value in overrides.items():
        key = name.lower()
        if key not in known or key in {"profile", "mode", "quick", "seed"}:
            raise TypeError(f"run_config() got an unknown size {name!r}; sizes are {sorted(sizes)}.")
        if value is not None:
            sizes[key] = value
    _check_sizes(profile, sizes)
    return RunConfig(profile=profile, mode=mode, quick=mode == "quick", seed=int(seed), **sizes)


def _check_sizes(profile: str, sizes: dict) -> None:
    """Fail at once, in words, on a size no run can have (e.g. papermill's ``-p EPOCHS -1``), before any data loads."""
    def whole(value):
        return isinstance(value, int) and not isinstance(value, bool)

    for key in ("epochs", "batch_size", "image_size"):
        if not (whole(sizes[key]) and sizes[key] >= 1):
            raise ValueError(f"{key.upper()} must be a whole number of at least 1, not {sizes[key]!r} ({profile}).")
    for key in ("train_samples", "val_samples", "test_samples"):
        if sizes.get(key) is not None and not (whole(sizes[key]) and sizes[key] >= 1):
            raise ValueError(f"{key.upper()} must be None (all) or a whole number of at least 1, not "
                             f"{sizes[key]!r} ({profile}).")
    for key in ("width", "minutes"):
        value = sizes.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
            raise ValueError(f"{key.upper()} must be a positive number, not {value!r} ({profile}).")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; ``deterministic`` also makes TF ops reproducible (slower)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def repo_root() -> Path | None:
    """The source checkout this package runs from, or None when it is installed elsewhere (e.g. Colab)."""
    candidate = Path(__file__).resolve().parents[2]
    return candidate if (candidate / "pyproject.toml").is_file() else None


def _env_path(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else default


def _project_dir() -> Path:
    return repo_root() or Path.cwd()


def data_dir() -> Path:
    """Where datasets live: ``CNN_DATA_DIR``, else ``<repo>/data`` (``./data`` outside a checkout)."""
    return _env_path(DATA_DIR_ENV, _project_dir() / "data")


def cache_dir() -> Path:
    """Where derived, rebuildable files go (image-check manifests, tf.data caches)."""
    return _env_path(CACHE_DIR_ENV, _project_dir() / "build" / "cache")


def results_dir() -> Path:
    """Where notebooks record their headline results (read by the runner and the comparison notebook)."""
    return _env_path(RESULTS_DIR_ENV, _project_dir() / "build" / "results")


def runs_dir() -> Path:
    """Where training runs keep their checkpoints and logs: ``CNN_RUNS_DIR``, else ``<repo>/build/runs``."""
    return _env_path(RUNS_DIR_ENV, _project_dir() / "build" / "runs")


NONINTERACTIVE_ENV = "CNN_NONINTERACTIVE"


def interactive() -> bool:
    """False under the runner, the tests and CI (they set ``CNN_NONINTERACTIVE`` or ``CI``)."""
    return not any(os.environ.get(v, "").strip().lower() in _TRUE for v in (NONINTERACTIVE_ENV, "CI"))
