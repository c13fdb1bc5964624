"""Where the real weights and data sets are published: one `HubFile` per file, pinned to a revision.

`WEIGHTS` names the backbones the shipped configs use (`georsclip-vit-b-32`, `laion2b-vit-b-32`,
`openai-vit-b-32`; the last two are the Hugging Face repos behind open_clip's pretrained tags
`laion2b_s34b_b79k` and `openai` for ViT-B-32, also accepted as `ViT-B-32:laion2b_s34b_b79k`, `ViT-B-32:openai`).  `parse_weights_spec` reads what a user may write for
`model.weights` or `harma fetch weights`: a name, `hf:REPO:FILE[@REVISION]`, or (on the command line)
`REPO:FILE`; anything else is a local path (None).  `RSICD_PARQUET` lists the three Parquet files of the
`arampacha/rsicd` data set.  A known sha256 (`HubFile.sha256`, from the Hub's LFS pointer of that commit)
holds only at the pinned revision; another revision is checked against the hash recorded at its first fetch.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from harma.errors import FetchError

COMMIT_RE = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face repository at a revision (a commit hash, branch or tag)."""
    repo_id: str
    filename: str
    revision: str = "main"
    repo_type: str = "model"           # model | dataset
    sha256: str | None = None          # known content hash at `revision`, when published

    @property
    def label(self) -> str:
        kind = "dataset " if self.repo_type == "dataset" else ""
        return f"{kind}{self.repo_id} {self.filename} at revision {self.revision}"

    def at(self, revision: str | None) -> "HubFile":
        """The same file at `revision` (None: unchanged); a known sha256 holds only at the pinned revision."""
        if revision is None or revision == self.revision:
            return self
        return dataclasses.replace(self, revision=revision, sha256=None)


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    file: HubFile
    about: str                         # arch and where the name comes from, for `harma fetch weights --list`


GEORSCLIP_COMMIT = "4920188e6eba4e711ef9848cfd7cb77e874ee33f"   # Zilun/GeoRSCLIP main when last looked at
OPENAI_TIMM_COMMIT = "ab5b8ef490e86faa07d3523926b842c765de1de5"  # main when last looked at: has the open_clip file
RSICD_COMMIT = "820466c8716e3ccdacde5cb2eb15a2f0f11ccdfe"       # arampacha/rsicd main (Apr 2022)

WEIGHTS: dict[str, WeightsEntry] = {e.name: e for e in (
    WeightsEntry("georsclip-vit-b-32", HubFile("Zilun/GeoRSCLIP", "ckpt/RS5M_ViT-B-32_RET-2.pt", GEORSCLIP_COMMIT),
                 "GeoRSCLIP RET-2, ViT-B-32 with QuickGELU (configs rsitmd-geo, rsicd-geo); cc-by-4.0"),
    WeightsEntry("laion2b-vit-b-32", HubFile("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_pytorch_model.bin"),
                 "open_clip ViT-B-32 laion2b_s34b_b79k (configs rsitmd-vit, rsicd-vit); revision main: no commit "
                 "is pinned"),
    WeightsEntry("openai-vit-b-32", HubFile("timm/vit_base_patch32_clip_224.openai", "open_clip_pytorch_model.bin",
                                            OPENAI_TIMM_COMMIT),
                 "open_clip ViT-B-32 openai, QuickGELU (set model.quick_gelu=true)"),
)}

# open_clip's own spelling of the same weights (ARCH:TAG), accepted wherever a name is
ALIASES = {"ViT-B-32:laion2b_s34b_b79k": "laion2b-vit-b-32", "ViT-B-32:openai": "openai-vit-b-32"}

RSICD_REPO = "arampacha/rsicd"
RSICD_PARQUET: dict[str, HubFile] = {
    "train": HubFile(RSICD_REPO, "data/train-00000-of-00001.parquet", RSICD_COMMIT, "dataset",
                     "637ce48273746c9a9bc7ea65f84bdcc0173257243f5ab6ae3258e013b58f8310"),
    "val": HubFile(RSICD_REPO, "data/valid-00000-of-00001.parquet", RSICD_COMMIT, "dataset",
                   "06ef6d6a455a0c80667e93e490a0e9603ded172c45106c67bcaa4997fa865b91"),
    "test": HubFile(RSICD_REPO, "data/test-00000-of-00001.parquet", RSICD_COMMIT, "dataset",
                    "e707fd90b59fe22a9a222d48b969226715f3eccf78e2b0f382f0a5565a98acda"),
}

HF_PREFIX = "hf:"


def _split_revision(text: str) -> tuple[str, str | None]:
    """`BODY@REVISION` -> (BODY, REVISION); a text without `@` has no revision (file names with `@` need one)."""
    body, sep, revision = text.rpartition("@")
    return (body, revision) if sep and body and revision else (text, None)


def parse_hub_spec(text: str, where: str) -> HubFile:
    """`REPO:FILE[@REVISION]` (REPO is owner/name) as a HubFile; FetchError naming `where` otherwise."""
    body, revision = _split_revision(text)
    repo, sep, filename = body.partition(":")
    if not sep or repo.count("/") != 1 or not all(repo.split("/")) or not filename or filename.startswith("/"):
        raise FetchError(f"{where}: expected a name ({', '.join(WEIGHTS)}) or hf:OWNER/REPO:FILE[@REVISION], "
                         f"got {text!r}")
    return HubFile(repo, filename, revision or "main")


def parse_weights_spec(value: str | None, command_line: bool = False) -> HubFile | None:
    """The HubFile a `model.weights` value names, or None for a local path (or null).  Names and `hf:` specs
    always resolve; a bare `REPO:FILE` only on the command line (`command_line`), where no path is expected."""
    if not value:
        return None
    value = ALIASES.get(value, value)
    if value in WEIGHTS:
        return WEIGHTS[value].file
    if value.startswith(HF_PREFIX):
        return parse_hub_spec(value[len(HF_PREFIX):], "model.weights")
    if command_line:
        return parse_hub_spec(value, "harma fetch weights")
    return None


def weights_name(file: HubFile) -> str:
    """The shortest `model.weights` value that names `file`: its catalogue name, else an hf: spec."""
    for entry in WEIGHTS.values():
        if entry.file == file:
            return entry.name
    suffix = "" if file.revision == "main" else f"@{file.revision}"
    return f"{HF_PREFIX}{file.repo_id}:{file.filename}{suffix}"
