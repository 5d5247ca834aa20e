#!/usr/bin/env python3
"""Lay out the Yale Face Database (A) expression images for evaluation.

The Yale Face Database has 15 people (subject01..subject15) photographed in a
studio, one image each per condition; four conditions are facial expressions:
happy, normal (neutral), sad and surprised. Any checkout, bare clone or folder
that holds ``subjectNN.<condition>[.ext]`` files works; the default --subdir fits
https://github.com/codecentric/computer-vision-drone (JPEG copies of the
original GIFs). The original archive's files have no extension
(``subject01.happy``); both forms are accepted.

Output (DEST defaults to ../data/faces/yale, beside this checkout):

    DEST/<split>/<label>/<person>__<file>.jpg    split = tune | heldout
    DEST/all/<label>/<person>__<file>.jpg        relative symlinks
    DEST/manifest.csv                            one row per written image

Split: by person, sha1(person) even -> tune, odd -> heldout (every label is in
both halves with this data). A file whose bytes equal another expression of
the same person is dropped (the archive substitutes subject04.normal for the
corrupted subject04.sad). Non-JPEG inputs (GIF, PNG) are re-encoded as JPEG
(quality 95); JPEG inputs are copied byte for byte.

Example, from the repository root:

    git clone https://github.com/codecentric/computer-vision-drone ../sources/computer-vision-drone
    git -C ../sources/computer-vision-drone checkout f94b0148975e7d2b9c61428ab7153dd6cafed197
    .venv/bin/python -m benchmarks.faces.prepare_yale ../sources/computer-vision-drone \
        --dest ../data/faces/yale

Needs Python 3.8+, numpy and OpenCV (the project's environment has both);
reads git objects with ``git``. DEST is deleted and rewritten.
"""

import argparse
import collections
import csv
import hashlib
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np

CONDITIONS = {"happy": "happy", "normal": "neutral", "sad": "sadness", "surprised": "surprise"}
LABELS = ("happy", "neutral", "sadness", "surprise")
SPLITS = ("tune", "heldout")
# <repo>/../data/faces/yale: the data lives beside the checkout, never in it
DEFAULT_DEST = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 3, "data", "faces", "yale")
)
NAME = re.compile(
    r"^(subject\d\d)\.(happy|normal|sad|surprised)(\.(?:jpe?g|gif|png|pgm|bmp))?$", re.I
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
        epilog="Example: python -m benchmarks.faces.prepare_yale "
        "../sources/computer-vision-drone "
        "--dest ../data/faces/yale",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("source", help="checkout, bare clone or plain directory")
    ap.add_argument(
        "--subdir",
        default="src/face-recognition/yalefaces",
        help="folder inside SOURCE holding subjectNN.* files [%(default)s]",
    )
    ap.add_argument(
        "--dest",
        default=DEFAULT_DEST,
        help="output directory (replaced) [../data/faces/yale beside the checkout]",
    )
    ap.add_argument("--rev", default="HEAD", help="git revision to read [%(default)s]")
    ap.add_argument("--no-all", action="store_true", help="do not write the all/ symlink view")
    args = ap.parse_args(argv)

    src = Source(args.source, args.rev)
    commit = src.commit()
    found = []  # (person, label, file, bytes)
    for name in src.listdir(args.subdir):
        m = NAME.match(name)
        if m:
            found.append(
                (
                    m.group(1).lower(),
                    CONDITIONS[m.group(2).lower()],
                    name,
                    src.read(args.subdir.rstrip("/") + "/" + name),
                )
            )
    seen = collections.defaultdict(list)
    for person, _label, name, data in found:
        seen[person, hashlib.sha1(data).hexdigest()].append(name)
    dropped = []
    kept = []
    for person, label, name, data in found:
        twins = seen[person, hashlib.sha1(data).hexdigest()]
        # keep only the 'normal' copy, or the first name when none is 'normal'
        keep = next((t for t in twins if ".normal" in t.lower()), twins[0])
        if name != keep:
            dropped.append(f"{name} (same bytes as {keep})")
            continue
        kept.append((person, label, name, data))

    if os.path.exists(args.dest):
        shutil.rmtree(args.dest)
    rows = []
    for person, label, name, data in sorted(kept):
        s = SPLITS[int(sha1(person), 16) % 2]
        if not data.startswith(b"\xff\xd8"):
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                cap = cv2.VideoCapture(os.path.join(args.source, args.subdir, name))  # GIF fallback
                ok, img = cap.read()
                if not ok:
                    dropped.append(f"{name} (undecodable)")
                    continue
            data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        stem = re.sub(r"\.(jpe?g|gif|png|pgm|bmp)$", "", name, flags=re.I)
        out_name = f"{person}__{stem}.jpg"
        out = os.path.join(args.dest, s, label, out_name)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(data)
        rows.append(
            {
                "split": s,
                "label": label,
                "person": person,
                "file": out_name,
                "source": args.subdir.rstrip("/") + "/" + name,
                "width": img.shape[1],
                "height": img.shape[0],
                "sha1": hashlib.sha1(data).hexdigest(),
            }
        )
        if not args.no_all:
            link = os.path.join(args.dest, "all", label, out_name)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(os.path.join("..", "..", s, label, out_name), link)

    with open(os.path.join(args.dest, "manifest.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    print("source commit:", commit)
    print("dropped:", dropped or "none")
    print_table(rows, LABELS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
