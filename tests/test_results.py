import math

import pytest

from helpers import results


def test_record_and_load_round_trip():
    shown = repr(results.record("99_probe", headline="acc", acc=0.75, epochs=3))
    assert shown.startswith("Recorded 99_probe: acc = 0.7500, with 1 more figures")  # a sentence, not a dict
    loaded = results.load("99_probe")
    assert loaded["headline"] == "acc" and loaded["metrics"] == {"acc": 0.75, "epochs": 3}
    assert results.load("98_never_ran") is None


def test_a_failed_metric_is_not_recorded():
    with pytest.raises(ValueError, match="nan"):
        results.record("99_probe", headline="acc", acc=math.nan)
    with pytest.raises(KeyError, match="headline"):
        results.record("99_probe", headline="loss", acc=0.5)
