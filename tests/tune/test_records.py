"""final_status: one rule for Parquet and Optuna."""
from harma.tune.records import COMPLETE, FAILED, PRUNED, final_status


def test_final_status():
    assert final_status({"epoch": 4, "planned_epochs": 4}, error=False) == COMPLETE
    assert final_status({"epoch": 2, "planned_epochs": 4}, error=False) == PRUNED
    assert final_status({"epoch": 4, "planned_epochs": 4}, error=True) == FAILED
    assert final_status(None, error=False) == PRUNED
