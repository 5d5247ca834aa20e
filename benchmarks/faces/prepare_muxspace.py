#!/usr/bin/env python3
"""Lay out the muxspace/facial_expressions photos for expression evaluation.

Source: https://github.com/muxspace/facial_expressions (a checkout, a bare
clone read at --rev, or a plain copy). Labels come from data/legend.csv
(user.id, image, emotion); the person is taken from the file name (LFW style
``First_Last_0001.jpg`` or IMFDB style ``ActorName_12.jpg``).

Output (DEST defaults to ../data/faces/muxspace, beside this checkout):

    DEST/<split>/<label>/<person>__<file>.jpg    split = tune | heldout
    DEST/all/<label>/<person>__<file>.jpg        relative symlinks
    DEST/manifest.csv                            one row per written image

Split: by person, sha1(person) even -> tune, odd -> heldout; then, for every
label that one half lacks, the smallest contributor of that label (ties by
sha1) is moved from the other half, as long as the other half keeps the label.
Cap: at most --cap images per label and split, picked round-robin over the
people of that label (people and files ordered by sha1), so a few very
photographed people (e.g. George W. Bush) cannot fill a class.

Rows dropped: images that are not in images/, non-JPEG files (four WebP stock
photos of unknown origin), images labelled differently in two rows, and
images whose shorter side is below --min-side pixels (tiny IMFDB crops).

Example, from the repository root (about 80 s):

    git clone https://github.com/muxspace/facial_expressions ../sources/facial_expressions
    git -C ../sources/facial_expressions checkout 5fb9c13afac07c55eae8d25eb6b50af344ad60c9
    .venv/bin/python -m benchmarks.faces.prepare_muxspace ../sources/facial_expressions \
        --dest ../data/faces/muxspace

Needs Python 3.10+, numpy and OpenCV (the project's environment has both);
reads git objects with ``git``. DEST is deleted and rewritten.
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

LABELS = ("anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral", "contempt")
SYNONYMS = {
    "anger": "anger",
    "angry": "anger",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happiness": "happy",
    "happy": "happy",
    "joy": "happy",
    "sadness": "sadness",
    "sad": "sadness",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "normal": "neutral",
    "contempt": "contempt",
}
SPLITS = ("tune", "heldout")
# <repo>/../data/faces/muxspace: the data lives beside the checkout, never in it
DEFAULT_DEST = os.path.normpath(
    os.path.join(
        os.path.dirname(os.path.abspath(__file__)), *[".."] * 3, "data", "faces", "muxspace"
    )
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


def person_of(image):
    stem = image.rsplit(".", 1)[0]
    m = re.match(r"^(.+?)_\d{4}$", stem)  # LFW: First_Last_0001
    if m:
        return m.group(1)
    m = re.match(r"^([A-Za-z]+)_\d+$", stem)  # IMFDB crops: HrithikRoshan_12
    if m:
        return m.group(1)
    return None


def split_people(label_people):
    """label_people: {label: {person: n_images}} -> {person: split}."""
    people = sorted({p for d in label_people.values() for p in d}, key=lambda p: (sha1(p), p))
    split = {p: SPLITS[int(sha1(p), 16) % 2] for p in people}
    for label in sorted(label_people, key=lambda lab: (len(label_people[lab]), lab)):
        have = label_people[label]
        if len(have) < 2:
            continue
        for want in SPLITS:
            if any(split[p] == want for p in have):
                continue
            other = SPLITS[1 - SPLITS.index(want)]
            donors = sorted((n, sha1(p), p) for p, n in have.items() if split[p] == other)
            for _, _, p in donors:
                # move p only if `other` keeps every label it has through someone else
                if all(
                    any(split[q] == other and q != p for q in label_people[lab])
                    for lab in label_people
                    if p in label_people[lab] and len(label_people[lab]) > 1
                ):
                    split[p] = want
                    break
    return split


def cap_round_robin(items, cap):
    """items: list of (person, image). Round-robin over people ordered by sha1."""
    by_person = collections.defaultdict(list)
    for person, image in items:
        by_person[person].append(image)
    queues = [
        sorted(by_person[p], key=lambda f: (sha1(f), f))
        for p in sorted(by_person, key=lambda p: (sha1(p), p))
    ]
    chosen = []
    order = sorted(by_person, key=lambda p: (sha1(p), p))
    depth = 0
    while len(chosen) < cap and any(depth < len(q) for q in queues):
        for p, q in zip(order, queues, strict=False):
            if depth < len(q) and len(chosen) < cap:
                chosen.append((p, q[depth]))
        depth += 1
    return chosen


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
        epilog="Example: python -m benchmarks.faces.prepare_muxspace "
        "../sources/facial_expressions "
        "--dest ../data/faces/muxspace",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "source", help="checkout, bare clone or plain copy of muxspace/facial_expressions"
    )
    ap.add_argument(
        "--dest",
        default=DEFAULT_DEST,
        help="output directory (replaced) [../data/faces/muxspace beside the checkout]",
    )
    ap.add_argument("--rev", default="HEAD", help="git revision to read [%(default)s]")
    ap.add_argument(
        "--cap", type=int, default=150, help="max images per label and split [%(default)s]"
    )
    ap.add_argument(
        "--min-side",
        type=int,
        default=96,
        help="drop images whose shorter side is smaller [%(default)s]",
    )
    ap.add_argument("--no-all", action="store_true", help="do not write the all/ symlink view")
    args = ap.parse_args(argv)

    src = Source(args.source, args.rev)
    commit = src.commit()
    present = set(src.listdir("images"))
    text = (
        src.read("data/legend.csv")
        .decode("utf-8", "replace")
        .replace("\r\n", "\n")
        .replace("\r", "\n")
    )
    labels_of = collections.defaultdict(set)
    for row in csv.DictReader(io.StringIO(text)):
        image = row["image"].strip()
        label = SYNONYMS.get(row["emotion"].strip().lower())
        if label:
            labels_of[image].add(label)

    dropped = collections.Counter()
    kept = []  # (label, person, image, jpeg bytes)
    for image in sorted(labels_of):
        if len(labels_of[image]) != 1:
            dropped["conflicting labels"] += 1
            continue
        person = person_of(image)
        if image not in present:
            dropped["missing file"] += 1
            continue
        if person is None:
            dropped["no person in file name"] += 1
            continue
        data = src.read("images/" + image)
        if not data.startswith(b"\xff\xd8"):
            dropped["not a JPEG"] += 1
            continue
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            dropped["undecodable"] += 1
            continue
        if min(img.shape[:2]) < args.min_side:
            dropped[f"shorter side < {args.min_side} px"] += 1
            continue
        kept.append((next(iter(labels_of[image])), person, image, data, img.shape[1], img.shape[0]))

    label_people = collections.defaultdict(collections.Counter)
    for label, person, *_ in kept:
        label_people[label][person] += 1
    split = split_people(label_people)

    data_of = {(k[1], k[2]): k for k in kept}
    if os.path.exists(args.dest):
        shutil.rmtree(args.dest)
    rows = []
    for s in SPLITS:
        for label in LABELS:
            items = [(k[1], k[2]) for k in kept if k[0] == label and split[k[1]] == s]
            for person, image in cap_round_robin(items, args.cap):
                _, _, _, data, w, h = data_of[(person, image)]
                name = f"{person}__{image}"
                out = os.path.join(args.dest, s, label, name)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with open(out, "wb") as f:
                    f.write(data)
                rows.append(
                    {
                        "split": s,
                        "label": label,
                        "person": person,
                        "file": name,
                        "source": "images/" + image,
                        "width": w,
                        "height": h,
                        "sha1": hashlib.sha1(data).hexdigest(),
                    }
                )
                if not args.no_all:
                    link = os.path.join(args.dest, "all", label, name)
                    os.makedirs(os.path.dirname(link), exist_ok=True)
                    os.symlink(os.path.join("..", "..", s, label, name), link)

    with open(os.path.join(args.dest, "manifest.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    print("source commit:", commit)
    print("dropped:", dict(sorted(dropped.items())) or "none")
    print_table(rows, LABELS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
