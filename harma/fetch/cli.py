"""The `harma fetch` subcommands (wired into `harma/cli.py` by `add_fetch_commands`).

`harma fetch weights NAME|REPO:FILE [--revision REV]` (or `--list`) downloads a checkpoint into the Hugging
Face cache and prints the `model.weights` value to use; `harma fetch data rsicd --split hub|authors` and
`harma fetch data rsitmd --from ARCHIVE_OR_FOLDER` write a data set where the shipped configs look (`--out`,
default `data`).  Modules are imported when a command runs, so `harma --help` stays light.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _weights(args: argparse.Namespace) -> int:
    from harma.fetch.sources import ALIASES, WEIGHTS, weights_name

    if args.list or not args.spec:
        for entry in WEIGHTS.values():
            print(f"{entry.name:<20s} {entry.file.repo_id}:{entry.file.filename}@{entry.file.revision}  "
                  f"{entry.about}")
        print("also: " + ", ".join(f"{alias} = {name}" for alias, name in ALIASES.items()))
        return 0
    from harma.fetch.weights import fetch_weights

    got = fetch_weights(args.spec, args.revision)
    state = f"recorded now in {got.registry}" if got.recorded_now else f"matches the record in {got.registry}"
    print(f"{got.file.label} (commit {got.commit})")
    print(f"  file    {got.path}")
    print(f"  sha256  {got.sha256} ({state})")
    pinned = got.file.at(got.commit)            # a branch or tag: name the commit it resolved to
    print(f"  use     --set model.weights={weights_name(pinned)}")
    return 0


def _print_installed(done, split_text: str, config: str) -> None:
    layout = done.layout
    if done.up_to_date:
        print(f"{layout.name}: up to date: {done.images:,} images and {len(done.counts)} annotation files match "
              f"{layout.manifest}; nothing written")
    else:
        print(f"{layout.name}: {done.images:,} images in {layout.image_root} ({done.written:,} written, "
              f"{done.kept:,} already there)")
    print(f"  {split_text}")
    for split, count in done.counts.items():
        print(f"  {split:<5s} {count['images']:>6,} images {count['captions']:>7,} captions  "
              f"{layout.annotation(split)}")
    print(f"  manifest {layout.manifest}")
    print(f"next: harma data check --config {config}")


def _data(args: argparse.Namespace) -> int:
    from harma.fetch.install import DataLayout, install

    layout = DataLayout(args.dataset, Path(args.out))
    src = Path(args.source) if args.source else None
    authors_json = Path(args.authors_json) if args.authors_json else None
    if args.dataset == "rsicd":
        from harma.fetch.rsicd import describe_split, rsicd_fetch

        request, make_plan = rsicd_fetch(layout, args.split, args.revision, src, authors_json)
        split_text = describe_split(args.split)
    else:
        from harma.fetch.rsitmd import rsitmd_fetch

        request, make_plan = rsitmd_fetch(layout, src, authors_json)
        split_text = "split authors: the HarMA authors' json files select the images (3,435 / 856 / 452)"
    _print_installed(install(layout, request, make_plan), split_text, _config_hint(layout))
    return 0


def _config_hint(layout) -> str:
    """The shipped config that reads this layout, with the `--set` it needs when `--out` is not `data`."""
    config = f"{layout.name}-geo"
    if layout.out == Path("data"):
        return config
    paths = " ".join(f"data.{split}_json={layout.annotation(split)}" for split in ("train", "val", "test"))
    return f"{config} --set data.image_root={layout.image_root} {paths}"


def add_fetch_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `fetch weights` and `fetch data rsicd|rsitmd`; each leaf sets `func(args) -> int`."""
    fetch = subparsers.add_parser("fetch", help="download backbone weights and data sets")
    sub = fetch.add_subparsers(dest="fetch_command", required=True)
    w = sub.add_parser("weights", help="download a checkpoint into the Hugging Face cache (sha256 recorded)")
    w.add_argument("spec", nargs="?", metavar="NAME|REPO:FILE", help="a name from --list, or OWNER/REPO:FILE")
    w.add_argument("--revision", help="commit, branch or tag (default: the name's pinned revision, else main)")
    w.add_argument("--list", action="store_true", help="list the names and what they pin")
    w.set_defaults(func=_weights)

    d = sub.add_parser("data", help="write RSICD or RSITMD where the shipped configs read them")
    sets = d.add_subparsers(dest="dataset", required=True)
    r = sets.add_parser("rsicd", help="RSICD from the Hub data set arampacha/rsicd")
    r.add_argument("--split", choices=["hub", "authors"], help="hub: the Hub's train/valid/test; authors: the "
                   "HarMA authors' json files (--authors-json) select the images")
    r.add_argument("--authors-json", metavar="DIR", help="folder with rsicd_train.json, rsicd_val.json, "
                   "rsicd_test.json")
    r.add_argument("--from", dest="source", metavar="DIR", help="folder with the three Parquet files, downloaded "
                   "by hand (instead of the Hub)")
    r.add_argument("--revision", help="revision of arampacha/rsicd (default: the pinned commit)")
    m = sets.add_parser("rsitmd", help="RSITMD from a local folder or archive")
    m.add_argument("--from", dest="source", metavar="ARCHIVE_OR_FOLDER", required=True,
                   help="the RSITMD images: a folder, zip or tar archive")
    m.add_argument("--authors-json", metavar="DIR", help="folder with rsitmd_train.json, rsitmd_val.json, "
                   "rsitmd_test.json (default: found inside --from)")
    for p in (r, m):
        p.add_argument("--out", default="data", metavar="DIR", help="writes DIR/images/SET/ and "
                       "DIR/finetune/SET_{train,val,test}.json (default: data)")
        p.set_defaults(func=_data)
    m.set_defaults(revision=None, split=None)
    return fetch
