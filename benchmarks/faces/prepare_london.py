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

import csv
import io
import logging
import re
import sys

import cv2
import numpy as np

try:
    from benchmarks.faces import layout
except ImportError:  # run as a file: python benchmarks/faces/prepare_london.py
    import layout

logger = logging.getLogger(__name__)

LABELS = ("happy", "neutral")
NAME = re.compile(r"^(\d{3})_(\d\d)\.jpe?g$", re.I)


def main(argv=None):
    ap = layout.make_parser(
        "london",
        __doc__,
        source_help="git snapshot (bare git dir), checkout or plain directory",
        example_source="../sources/webmorphR.stim",
    )
    ap.add_argument("--neutral-dir", default="inst/neutral_front", help="[%(default)s]")
    ap.add_argument("--smiling-dir", default="inst/smiling_front", help="[%(default)s]")
    ap.add_argument(
        "--info",
        default="data-raw/london_info.csv",
        help="CSV with face_id, face_age, face_gender, face_eth ('' to skip) [%(default)s]",
    )
    layout.add_dest_option(ap, "london")
    layout.add_rev_option(ap)
    layout.add_no_all_option(ap)
    args = ap.parse_args(argv)

    src = layout.Source(args.source, args.rev)
    commit = src.commit()
    info = {}
    if args.info:
        text = src.read(args.info).decode("utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            info[row["face_id"].zfill(3)] = row

    layout.reset_dest(args.dest)
    rows = []
    for label, folder in (("neutral", args.neutral_dir), ("happy", args.smiling_dir)):
        for name in src.listdir(folder):
            m = NAME.match(name)
            if not m:
                continue
            person = f"london{m.group(1)}"
            rel = folder.rstrip("/") + "/" + name
            data = src.read(rel)
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if img is None or not data.startswith(b"\xff\xd8"):
                print("skipped (not a JPEG):", name, file=sys.stderr)
                continue
            s = layout.split_of(person)
            out_name = "{}__{}.jpg".format(person, name.rsplit(".", 1)[0])
            layout.write_image(args.dest, s, label, out_name, data, link=not args.no_all)
            row = layout.manifest_row(
                s, label, person, out_name, rel, img.shape[1], img.shape[0], data
            )
            meta = info.get(m.group(1), {})
            row["age"] = meta.get("face_age", "")
            row["gender"] = meta.get("face_gender", "")
            row["ethnicity"] = meta.get("face_eth", "")
            rows.append(row)

    rows.sort(key=lambda r: (layout.SPLITS.index(r["split"]), r["label"], r["file"]))
    layout.write_manifest(args.dest, rows)
    logger.debug("%d people with demographics", len(info))

    print("source commit:", commit)
    layout.print_table(rows, LABELS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
