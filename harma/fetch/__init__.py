"""Fetching what a real study needs: backbone weights and the RSICD / RSITMD data sets.

`harma fetch weights NAME|REPO:FILE` downloads a checkpoint through huggingface_hub (its cache, HF_HOME,
HF_ENDPOINT and HF_HUB_OFFLINE), pinned to a revision, and records the file's sha256 the first time
(harma.fetch.registry); `model.weights` names resolve to the verified cached file (harma.model.weights).
`harma fetch data rsicd|rsitmd` writes images once into a folder and annotations in the authors' json format,
resuming an interrupted run and doing nothing when the set is already there.  Nothing here imports torch.
"""
