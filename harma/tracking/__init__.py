"""Curves where users look: the study driver's epoch events written as TensorBoard event files per trial
(tensorboard, with tensorboardX's own writer and the HParams plugin's records) and, when asked, as MLflow runs
(mlflow_runs: one run per trial nested under a run for the study).  Each is a sink of harma.progress events."""
