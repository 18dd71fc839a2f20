"""Checks a student runs on an exercise: real inputs, the reference behaviour, and plain words when wrong.

Each ``check_*`` function calls the student's code, compares it with what the course's reference (Keras,
TensorFlow or the paper) does, and raises :class:`CheckFailed` with one sentence saying what differs. An
unfinished exercise (``NotImplementedError``) and errors inside the student's code are reported the same way,
so the learner sees a short message instead of a deep traceback.
"""

from __future__ import annotations


class CheckFailed(AssertionError):
    """The exercise is not finished or gives a wrong answer; the message says what is wrong."""


def _call(fn, *args, **kwargs):
    name = getattr(fn, "__name__", "your function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{name} is not written yet: replace the `raise NotImplementedError(...)` line "
                          "with your code, run that cell, then run this check again.") from None
    except Exception as e:
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        raise CheckFailed(f"{name}({shown}) raised {type(e).__name__}: {e}") from None


def _passed(what: str) -> None:
    print(f"✓ {what}")


def check_output_size(fn) -> None:
    """``fn(n, k, s, p)`` must give the output length Keras gives, on layers of this course's networks."""
    import keras

    cases = [  # (n, k, s, p): LeNet C1, AlexNet conv1 (227 and padded 224), pool 3/2, VGG 3×3, ResNet stem
        (32, 5, 1, 0), (227, 11, 4, 0), (224, 11, 4, 2), (55, 3, 2, 0), (224, 3, 1, 1), (224, 7, 2, 3),
        (112, 3, 2, 1), (28, 2, 2, 0), (10, 4, 3, 0), (7, 7, 1, 0),
    ]
    for n, k, s, p in cases:
        stack = keras.Sequential([keras.Input((n, n, 1)), keras.layers.ZeroPadding2D(p), keras.layers.Conv2D(1, k, s)])
        expected = stack.output_shape[1]
        got = _call(fn, n, k, s, p)
        if isinstance(got, float) and not got.is_integer():
            raise CheckFailed(f"output_size(n={n}, k={k}, s={s}, p={p}) returned {got}, a fraction: sizes are "
                              "whole numbers, so round down (use // rather than /).")
        if got != expected:
            raise CheckFailed(f"output_size(n={n}, k={k}, s={s}, p={p}) returned {got}, but a Keras Conv2D "
                              f"with that padding gives {expected}.")
    _passed(f"output_size agrees with Keras on {len(cases)} layers of the course's networks")
