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

import collections
import hashlib
import logging
import os
import re
import sys

import cv2
import numpy as np

try:
    from benchmarks.faces import layout
except ImportError:  # run as a file: python benchmarks/faces/prepare_yale.py
    import layout

logger = logging.getLogger(__name__)

CONDITIONS = {"happy": "happy", "normal": "neutral", "sad": "sadness", "surprised": "surprise"}
LABELS = ("happy", "neutral", "sadness", "surprise")
NAME = re.compile(
    r"^(subject\d\d)\.(happy|normal|sad|surprised)(\.(?:jpe?g|gif|png|pgm|bmp))?$", re.I
)


def main(argv=None):
    ap = layout.make_parser(
        "yale",
        __doc__,
        source_help="checkout, bare clone or plain directory",
        example_source="../sources/computer-vision-drone",
    )
    ap.add_argument(
        "--subdir",
        default="src/face-recognition/yalefaces",
        help="folder inside SOURCE holding subjectNN.* files [%(default)s]",
    )
    layout.add_dest_option(ap, "yale")
    layout.add_rev_option(ap)
    layout.add_no_all_option(ap)
    args = ap.parse_args(argv)

    src = layout.Source(args.source, args.rev)
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

    layout.reset_dest(args.dest)
    rows = []
    for person, label, name, data in sorted(kept):
        s = layout.split_of(person)
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
        layout.write_image(args.dest, s, label, out_name, data, link=not args.no_all)
        source = args.subdir.rstrip("/") + "/" + name
        rows.append(
            layout.manifest_row(
                s, label, person, out_name, source, img.shape[1], img.shape[0], data
            )
        )

    layout.write_manifest(args.dest, rows)
    logger.debug("found %d expression images, kept %d", len(found), len(rows))

    print("source commit:", commit)
    print("dropped:", dropped or "none")
    layout.print_table(rows, LABELS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
