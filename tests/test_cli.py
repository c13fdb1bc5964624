"""The `harma train` epoch line shows each split's mR with its tie gap, and every train loss term."""
from harma.cli import _print_epoch
from harma.epoch_record import EpochRecord
from harma.metrics import TIE_GAP_KEY


def test_epoch_line_shows_mr_and_tie_gap(capsys):
    val = {"r_mean": 31.25, TIE_GAP_KEY: 0.5}
    test = {"r_mean": 29.0, TIE_GAP_KEY: 1.25}
    _print_epoch(EpochRecord(epoch=3, val=val, test=test, train={"loss": 0.25, "loss_new_term": 0.125}, lr=1e-4,
                             epoch_seconds=2.0, train_seconds=1.5, images_per_s=8.0, best_epoch=3, best_val=val,
                             best_test=test, trainable_params=5, total_params=9))
    line = capsys.readouterr().out
    assert "val mR  31.25 (tie gap 0.50)" in line and "test mR  29.00 (tie gap 1.25)" in line
    assert "loss=0.2500 loss_new_term=0.1250" in line and "lr=1.00e-04" in line and "8.0 img/s" in line
    assert "2.0s  8.0 img/s" in line and "compiling" not in line


def test_epoch_line_shows_the_seconds_spent_compiling(capsys):
    val = {"r_mean": 31.25, TIE_GAP_KEY: 0.5}
    _print_epoch(EpochRecord(epoch=1, val=val, test=val, train={"loss": 0.25}, lr=1e-4, epoch_seconds=52.0,
                             train_seconds=50.5, images_per_s=8.0, best_epoch=1, best_val=val, best_test=val,
                             trainable_params=5, total_params=9, compile_seconds=41.25))
    assert "52.0s (41.2s compiling)  8.0 img/s" in capsys.readouterr().out
