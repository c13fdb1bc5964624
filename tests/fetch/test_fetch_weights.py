"""`harma fetch weights` and `model.weights` names against a loopback Hub: pinning, the sha256 record, a changed
file, a cut and a dropped download, offline with and without a cached file, and the model built from it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harma.cli import main
from harma.errors import FetchError, WeightsError
from harma.fetch.sources import GEORSCLIP_COMMIT, WEIGHTS, HubFile, parse_weights_spec, weights_name

REPO, FILE = "Zilun/GeoRSCLIP", "ckpt/RS5M_ViT-B-32_RET-2.pt"
NAME = "georsclip-vit-b-32"


def _snapshot(tmp_path: Path, commit: str = GEORSCLIP_COMMIT) -> Path:
    return tmp_path / "hf" / "hub" / "models--Zilun--GeoRSCLIP" / "snapshots" / commit / FILE


def _registry(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "hf" / "harma" / "sha256.json").read_text())["files"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("harma: error: ") and len(err.strip().splitlines()) == 1, err
    return err


def test_fetch_asks_the_pinned_revision_and_records_the_sha256(hub, tmp_path, capsys, tiny_checkpoint):
    sha = hub.add(REPO, FILE, tiny_checkpoint)
    assert main(["fetch", "weights", NAME]) == 0
    out = capsys.readouterr().out
    assert [(r.method, r.revision, r.file) for r in hub.requests] == [("HEAD", GEORSCLIP_COMMIT, FILE),
                                                                       ("GET", GEORSCLIP_COMMIT, FILE)]
    assert _snapshot(tmp_path).read_bytes() == tiny_checkpoint
    record = _registry(tmp_path)[f"model/{REPO}@{GEORSCLIP_COMMIT}/{FILE}"]
    assert (record["sha256"], record["size"]) == (sha, len(tiny_checkpoint))
    assert f"sha256  {sha} (recorded now in" in out and f"--set model.weights={NAME}" in out

    assert main(["fetch", "weights", NAME]) == 0          # cached at a commit: no request at all
    assert len(hub.requests) == 2 and "matches the record" in capsys.readouterr().out


def test_a_model_builds_from_the_fetched_name(hub, tiny_checkpoint):
    import io

    import torch

    from harma.config import load_config
    from harma.model.build import build_model

    hub.add(REPO, FILE, tiny_checkpoint)
    assert main(["fetch", "weights", NAME]) == 0
    model = build_model(load_config("synthetic-tiny", {"model.weights": NAME}))
    served = torch.load(io.BytesIO(tiny_checkpoint), weights_only=True)
    assert torch.equal(model.clip.positional_embedding, served["positional_embedding"])
    assert len(hub.requests) == 2                         # building read the cache only


def test_revision_override_reaches_the_server(hub, tmp_path, capsys, tiny_checkpoint):
    hub.add(REPO, FILE, tiny_checkpoint)
    assert main(["fetch", "weights", NAME, "--revision", "main"]) == 0
    assert {r.revision for r in hub.requests} == {"main"}
    assert f"model/{REPO}@{hub.commit}/{FILE}" in _registry(tmp_path)
    assert f"--set model.weights=hf:{REPO}:{FILE}@{hub.commit}" in capsys.readouterr().out   # pinned
    assert main(["fetch", "weights", NAME, "--revision", "nope"]) == 2
    assert f"{REPO}: revision 'nope' not found" in _one_error_line(capsys)


def test_a_changed_file_is_refused_on_load_naming_it(hub, tmp_path, capsys, tiny_checkpoint):
    from harma.model.weights import resolve_weights

    hub.add(REPO, FILE, tiny_checkpoint)
    assert main(["fetch", "weights", NAME]) == 0
    path = _snapshot(tmp_path)
    assert resolve_weights(NAME) == str(path)
    blob = Path(os.path.realpath(path))
    blob.write_bytes(tiny_checkpoint[:-1] + bytes([tiny_checkpoint[-1] ^ 1]))
    with pytest.raises(WeightsError, match=rf"model.weights: {NAME}: {path}: sha256 \w+ differs from \w+, the hash "
                                           r"recorded at its first fetch"):
        resolve_weights(NAME)
    assert main(["train", "--config", "synthetic-tiny", "--set", f"model.weights={NAME}",
                 f"train.out_dir={tmp_path / 'run'}", f"data.image_root={tmp_path / 'synth'}"]) == 2
    assert f"{path}: sha256" in _one_error_line(capsys)
    assert main(["fetch", "weights", NAME]) == 2            # fetching again does not re-record it either
    assert "delete it and run `harma fetch weights georsclip-vit-b-32`" in _one_error_line(capsys)


def test_a_cut_download_resumes_with_a_range_request(hub, tmp_path):
    data = os.urandom(21 << 20)                             # past huggingface_hub's 10 MiB read chunk
    sha = hub.add(REPO, FILE, data)
    hub.cut(REPO, FILE, [15 << 20])
    assert main(["fetch", "weights", NAME]) == 0
    gets = hub.gets(FILE)
    assert [g.range for g in gets][0] is None and len(gets) == 2
    start = int(gets[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 15 << 20
    assert _registry(tmp_path)[f"model/{REPO}@{GEORSCLIP_COMMIT}/{FILE}"]["sha256"] == sha
    assert _snapshot(tmp_path).read_bytes() == data


def test_a_dropped_download_fails_in_one_line_and_a_rerun_completes(hub, tmp_path, capsys, monkeypatch,
                                                                    tiny_checkpoint):
    import huggingface_hub.file_download as fd

    monkeypatch.setattr(fd.time, "sleep", lambda s: None)   # its retries wait 1 s each
    hub.add(REPO, FILE, tiny_checkpoint)
    hub.cut(REPO, FILE, [0] * 50)                           # every GET dies before its first byte
    assert main(["fetch", "weights", NAME]) == 2
    err = _one_error_line(capsys)
    assert f"download of {hub.url}/{REPO}/resolve/{GEORSCLIP_COMMIT}/{FILE} failed" in err
    assert "run the same command again" in err
    assert not _snapshot(tmp_path).exists() and not (tmp_path / "hf" / "harma" / "sha256.json").exists()
    hub.cuts.clear()
    assert main(["fetch", "weights", NAME]) == 0
    assert _snapshot(tmp_path).read_bytes() == tiny_checkpoint


def test_offline_without_a_cached_file_names_what_to_download_and_where(hub, monkeypatch, capsys):
    from harma.model.weights import resolve_weights

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["fetch", "weights", NAME]) == 2
    err = _one_error_line(capsys)
    assert "HF_HUB_OFFLINE is set" in err
    assert f"download {hub.url}/{REPO}/resolve/{GEORSCLIP_COMMIT}/{FILE} by hand" in err
    assert "give its path as model.weights (e.g. --set model.weights=checkpoints/RS5M_ViT-B-32_RET-2.pt)" in err
    with pytest.raises(WeightsError, match="model.weights: georsclip-vit-b-32: .* is not in the Hub cache"):
        resolve_weights(NAME)
    assert hub.requests == []


def test_offline_with_a_cached_file_needs_no_server(hub, monkeypatch, capsys, tiny_checkpoint, tmp_path):
    from harma.model.weights import resolve_weights

    hub.add(REPO, FILE, tiny_checkpoint)
    assert main(["fetch", "weights", NAME]) == 0
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["fetch", "weights", NAME]) == 0
    assert "matches the record" in capsys.readouterr().out
    assert resolve_weights(NAME) == str(_snapshot(tmp_path))


def test_a_run_never_downloads(hub, tiny_checkpoint, tmp_path, capsys):
    hub.add(REPO, FILE, tiny_checkpoint)
    assert main(["train", "--config", "synthetic-tiny", "--set", f"model.weights={NAME}",
                 f"train.out_dir={tmp_path / 'run'}", f"data.image_root={tmp_path / 'synth'}"]) == 2
    err = _one_error_line(capsys)
    assert "model.weights: georsclip-vit-b-32:" in err and "only the local cache is read here" in err
    assert hub.requests == [] and not (tmp_path / "run").exists()


def test_a_file_cached_by_others_must_be_fetched_once_to_record_it(hub, tiny_checkpoint, tmp_path):
    from huggingface_hub import hf_hub_download

    from harma.model.weights import resolve_weights

    hub.add(REPO, FILE, tiny_checkpoint)
    hf_hub_download(REPO, FILE, revision=GEORSCLIP_COMMIT, cache_dir=tmp_path / "hf" / "hub", endpoint=hub.url)
    with pytest.raises(WeightsError, match=r"no sha256 recorded .* run `harma fetch weights georsclip-vit-b-32`"):
        resolve_weights(NAME)
    assert main(["fetch", "weights", NAME]) == 0 and resolve_weights(NAME)


OFFLINE_CLI = """
import runpy, sys
sys.argv = ["harma", "fetch", "weights", "georsclip-vit-b-32"]
try:
    runpy.run_module("harma.cli", run_name="__main__")
except SystemExit as exc:
    print("EXIT", exc.code)
print("TORCH", "torch" in sys.modules)
"""


def test_offline_cli_honours_the_environment_and_imports_no_torch(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
           "HF_ENDPOINT": "http://127.0.0.1:9", "PYTHONPATH": os.getcwd()}
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-c", OFFLINE_CLI], capture_output=True, text=True, env=env, timeout=120)
    assert "EXIT 2" in out.stdout and "TORCH False" in out.stdout, out
    assert out.stderr.count("harma: error: ") == 1 and "HF_HUB_OFFLINE is set" in out.stderr
    assert f"not in the Hub cache {tmp_path / 'hf' / 'hub'}" in out.stderr


def test_names_and_specs():
    assert parse_weights_spec(NAME) == WEIGHTS[NAME].file
    assert parse_weights_spec("ViT-B-32:laion2b_s34b_b79k") == WEIGHTS["laion2b-vit-b-32"].file   # open_clip's
    assert parse_weights_spec("hf:a/b:dir/w.pt@v1") == HubFile("a/b", "dir/w.pt", "v1")
    assert parse_weights_spec("hf:a/b:w.bin") == HubFile("a/b", "w.bin", "main")
    assert parse_weights_spec("checkpoints/x.pt") is None and parse_weights_spec(None) is None
    assert parse_weights_spec("a/b:w.pt", command_line=True) == HubFile("a/b", "w.pt")
    for bad in ("hf:nope", "hf:a:w.pt", "hf:a/b:", "hf:a/b/c:w.pt"):
        with pytest.raises(FetchError, match="expected a name"):
            parse_weights_spec(bad)
    assert weights_name(WEIGHTS[NAME].file) == NAME
    assert weights_name(WEIGHTS[NAME].file.at("main")) == f"hf:{REPO}:{FILE}"          # main is the default
    assert weights_name(WEIGHTS[NAME].file.at("v2")) == f"hf:{REPO}:{FILE}@v2"
    assert WEIGHTS[NAME].file.at("main").sha256 is None


@pytest.mark.parametrize("name, tag", [("laion2b-vit-b-32", "laion2b_s34b_b79k"), ("openai-vit-b-32", "openai")])
def test_catalogue_follows_open_clip_pretrained_tags(name, tag):
    from open_clip.pretrained import get_pretrained_cfg

    assert get_pretrained_cfg("ViT-B-32", tag)["hf_hub"].rstrip("/") == WEIGHTS[name].file.repo_id
    assert WEIGHTS[name].file.filename == "open_clip_pytorch_model.bin"    # torch.load reads it (no safetensors)
