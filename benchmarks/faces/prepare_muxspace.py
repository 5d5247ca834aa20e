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

import collections
import csv
import io
import logging
import re
import sys

import cv2
import numpy as np

try:
    from benchmarks.faces import layout
except ImportError:  # run as a file: python benchmarks/faces/prepare_muxspace.py
    import layout

logger = logging.getLogger(__name__)

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
    people = sorted(
        {p for d in label_people.values() for p in d}, key=lambda p: (layout.sha1(p), p)
    )
    split = {p: layout.split_of(p) for p in people}
    for label in sorted(label_people, key=lambda lab: (len(label_people[lab]), lab)):
        have = label_people[label]
        if len(have) < 2:
            continue
        for want in layout.SPLITS:
            if any(split[p] == want for p in have):
                continue
            other = layout.SPLITS[1 - layout.SPLITS.index(want)]
            donors = sorted((n, layout.sha1(p), p) for p, n in have.items() if split[p] == other)
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
        sorted(by_person[p], key=lambda f: (layout.sha1(f), f))
        for p in sorted(by_person, key=lambda p: (layout.sha1(p), p))
    ]
    chosen = []
    order = sorted(by_person, key=lambda p: (layout.sha1(p), p))
    depth = 0
    while len(chosen) < cap and any(depth < len(q) for q in queues):
        for p, q in zip(order, queues, strict=False):
            if depth < len(q) and len(chosen) < cap:
                chosen.append((p, q[depth]))
        depth += 1
    return chosen


def main(argv=None):
    ap = layout.make_parser(
        "muxspace",
        __doc__,
        source_help="checkout, bare clone or plain copy of muxspace/facial_expressions",
        example_source="../sources/facial_expressions",
    )
    layout.add_dest_option(ap, "muxspace")
    layout.add_rev_option(ap)
    ap.add_argument(
        "--cap", type=int, default=150, help="max images per label and split [%(default)s]"
    )
    ap.add_argument(
        "--min-side",
        type=int,
        default=96,
        help="drop images whose shorter side is smaller [%(default)s]",
    )
    layout.add_no_all_option(ap)
    args = ap.parse_args(argv)

    src = layout.Source(args.source, args.rev)
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
    layout.reset_dest(args.dest)
    rows = []
    for s in layout.SPLITS:
        for label in LABELS:
            items = [(k[1], k[2]) for k in kept if k[0] == label and split[k[1]] == s]
            for person, image in cap_round_robin(items, args.cap):
                _, _, _, data, w, h = data_of[(person, image)]
                name = f"{person}__{image}"
                layout.write_image(args.dest, s, label, name, data, link=not args.no_all)
                rows.append(
                    layout.manifest_row(s, label, person, name, "images/" + image, w, h, data)
                )

    layout.write_manifest(args.dest, rows)
    logger.debug("kept %d of %d labelled images", len(rows), len(labels_of))

    print("source commit:", commit)
    print("dropped:", dict(sorted(dropped.items())) or "none")
    layout.print_table(rows, LABELS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
