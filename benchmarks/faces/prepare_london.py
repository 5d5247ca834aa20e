#!/usr/bin/env python3
"""Lay out the Face Research Lab London Set (neutral and smiling) for evaluation.

The London set (DeBruine & Jones 2017, CC BY 4.0, figshare
doi:10.6084/m9.figshare.5047666) has 102 consenting adults photographed in a
studio in London, each once with a neutral face (``NNN_03.jpg``) and once
smiling (``NNN_08.jpg``), 1350x1350 colour. The default folders fit the copy
in https://github.com/debruine/webmorphR.stim (``inst/neutral_front``,
``inst/smiling_front``, ages/genders/ethnicities in
``data-raw/london_info.csv``); the figshare zip works too with --neutral-dir
and --smiling-dir pointing at its folders.

Output (DEST defaults to ../data/faces/london, beside this checkout):

    DEST/<split>/<label>/<person>__<file>.jpg    split = tune | heldout, label = neutral | happy
    DEST/all/<label>/<person>__<file>.jpg        relative symlinks
    DEST/manifest.csv                            one row per image (+ age, gender, ethnicity)

Split: by person, sha1(person) even -> tune, odd -> heldout, where person is
"london" + the three-digit face id (``london001``).
AppleDouble files (``._*``) are skipped; JPEGs are copied byte for byte.

Example, from the repository root:

    git clone https://github.com/debruine/webmorphR.stim ../sources/webmorphR.stim
    git -C ../sources/webmorphR.stim checkout fa8b78fda2d659bb74ce62fcd99c4407551d2a77
    .venv/bin/python -m benchmarks.faces.prepare_london ../sources/webmorphR.stim \
        --dest ../data/faces/london

SOURCE may be a checkout, a bare clone (read at --rev) or a plain folder.
Needs Python 3.8+, numpy and OpenCV (the project's environment has both); reads
git objects with ``git``. DEST is deleted and rewritten.
"""

import argparse
import collections
import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np

SPLITS = ("tune", "heldout")
LABELS = ("happy", "neutral")
NAME = re.compile(r"^(\d{3})_(\d\d)\.jpe?g$", re.I)
# <repo>/../data/faces/london: the data lives beside the checkout, never in it
DEFAULT_DEST = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 3, "data", "faces", "london")
)


def sha1(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Source:
    """Reads files from a bare git snapshot (at REV) or from a plain directory."""

    def __init__(self, path, rev):
        self.path = path
        self.git = os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(
            os.path.join(path, "objects")
        )
        if not self.git and os.path.isdir(os.path.join(path, ".git")):
            self.git = True
            path = os.path.join(path, ".git")
        self.gitdir = path
        self.rev = rev

    def commit(self):
        if not self.git:
            return "working-tree"
        return subprocess.run(
            ["git", "--git-dir", self.gitdir, "rev-parse", self.rev],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def listdir(self, sub):
        if not self.git:
            return sorted(os.listdir(os.path.join(self.path, sub)))
        prefix = sub.rstrip("/") + "/"
        out = subprocess.run(
            ["git", "--git-dir", self.gitdir, "ls-tree", "--name-only", self.rev, prefix],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return sorted(line[len(prefix) :] for line in out.splitlines() if line.startswith(prefix))

    def read(self, rel):
        if not self.git:
            with open(os.path.join(self.path, rel), "rb") as f:
                return f.read()
        return subprocess.run(
            ["git", "--git-dir", self.gitdir, "show", f"{self.rev}:{rel}"],
            check=True,
            capture_output=True,
        ).stdout


def print_table(rows, labels):
    counts = collections.Counter((r["split"], r["label"]) for r in rows)
    print(f"{'':9} " + " ".join(f"{lab:>8}" for lab in labels) + "  total people")
    for s in SPLITS:
        people = len({r["person"] for r in rows if r["split"] == s})
        cells = " ".join(f"{counts[s, lab]:8d}" for lab in labels)
        total = sum(counts[s, lab] for lab in labels)
        print(f"{s:<9} {cells}  {total:5d} {people:6d}")


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python -m benchmarks.faces.prepare_london ../sources/webmorphR.stim "
        "--dest ../data/faces/london",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("source", help="git snapshot (bare git dir), checkout or plain directory")
    ap.add_argument("--neutral-dir", default="inst/neutral_front", help="[%(default)s]")
    ap.add_argument("--smiling-dir", default="inst/smiling_front", help="[%(default)s]")
    ap.add_argument(
        "--info",
        default="data-raw/london_info.csv",
        help="CSV with face_id, face_age, face_gender, face_eth ('' to skip) [%(default)s]",
    )
    ap.add_argument(
        "--dest",
        default=DEFAULT_DEST,
        help="output directory (replaced) [../data/faces/london beside the checkout]",
    )
    ap.add_argument("--rev", default="HEAD", help="git revision to read [%(default)s]")
    ap.add_argument("--no-all", action="store_true", help="do not write the all/ symlink view")
    args = ap.parse_args(argv)

    src = Source(args.source, args.rev)
    commit = src.commit()
    info = {}
    if args.info:
        text = src.read(args.info).decode("utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            info[row["face_id"].zfill(3)] = row

    if os.path.exists(args.dest):
        shutil.rmtree(args.dest)
    rows = []
    for label, folder in (("neutral", args.neutral_dir), ("happy", args.smiling_dir)):
        for name in src.listdir(folder):
            m = NAME.match(name)
            if not m:
                continue
            person = f"london{m.group(1)}"
            data = src.read(folder.rstrip("/") + "/" + name)
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if img is None or not data.startswith(b"\xff\xd8"):
                print("skipped (not a JPEG):", name, file=sys.stderr)
                continue
            s = SPLITS[int(sha1(person), 16) % 2]
            out_name = "{}__{}.jpg".format(person, name.rsplit(".", 1)[0])
            out = os.path.join(args.dest, s, label, out_name)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "wb") as f:
                f.write(data)
            meta = info.get(m.group(1), {})
            rows.append(
                {
                    "split": s,
                    "label": label,
                    "person": person,
                    "file": out_name,
                    "source": folder.rstrip("/") + "/" + name,
                    "width": img.shape[1],
                    "height": img.shape[0],
                    "sha1": hashlib.sha1(data).hexdigest(),
                    "age": meta.get("face_age", ""),
                    "gender": meta.get("face_gender", ""),
                    "ethnicity": meta.get("face_eth", ""),
                }
            )
            if not args.no_all:
                link = os.path.join(args.dest, "all", label, out_name)
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(os.path.join("..", "..", s, label, out_name), link)

    rows.sort(key=lambda r: (SPLITS.index(r["split"]), r["label"], r["file"]))
    with open(os.path.join(args.dest, "manifest.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    print("source commit:", commit)
    print_table(rows, LABELS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
