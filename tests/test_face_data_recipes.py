"""benchmarks/faces/prepare_london.py lays out labelled photos as docs/expression-data.md says.

Runs the recipe on a few synthetic noise JPEGs named as the London set names its files, in plain
folders (no git, no network, no ../data): every person lands in one split, chosen by the
documented sha1 rule; the folder decides the label; the manifest lists exactly the files written;
a second run replaces the output and gives a byte-identical manifest. The shared helpers in
benchmarks/faces/layout.py (used by every recipe) are checked on their own as well.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from benchmarks.faces import layout, prepare_london

IDS = [f"{i:03d}" for i in range(1, 9)]  # eight people, both expressions each
NEUTRAL_ONLY = "010"  # a person photographed once, neutral only


def person_split(face_id: str) -> str:
    """The documented rule, written out independently: sha1(person) even -> tune."""
    digest = hashlib.sha1(f"london{face_id}".encode()).hexdigest()
    return "tune" if int(digest, 16) % 2 == 0 else "heldout"


def write_jpeg(path: Path, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(24 + seed % 5, 32, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path.read_bytes()


def make_source(root: Path) -> dict[str, tuple[str, str, bytes, int, int]]:
    """A London-like folder; returns {expected output file: (label, person, bytes, w, h)}."""
    expected = {}
    photos = [(i, "neutral_front", "03") for i in [*IDS, NEUTRAL_ONLY]]
    photos += [(i, "smiling_front", "08") for i in IDS]
    for n, (face_id, folder, code) in enumerate(photos):
        data = write_jpeg(root / "inst" / folder / f"{face_id}_{code}.jpg", seed=n)
        height, width = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE).shape
        label = "neutral" if folder == "neutral_front" else "happy"
        expected[f"london{face_id}__{face_id}_{code}.jpg"] = (
            label, f"london{face_id}", data, width, height,
        )  # fmt: skip
    # not taken: macOS AppleDouble, a stray file, and a PNG under a JPEG name
    (root / "inst" / "smiling_front" / "._001_08.jpg").write_bytes(b"\x00\x05\x16\x07junk")
    (root / "inst" / "smiling_front" / "notes.txt").write_text("not a photo\n")
    png = cv2.imencode(".png", np.zeros((20, 20, 3), np.uint8))[1].tobytes()
    (root / "inst" / "smiling_front" / f"{NEUTRAL_ONLY}_08.jpg").write_bytes(png)
    # the info file names faces without leading zeros for some rows, as spreadsheets do
    info = root / "data-raw" / "london_info.csv"
    info.parent.mkdir(parents=True)
    with info.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["face_id", "face_age", "face_gender", "face_eth"])
        for i in [*IDS, NEUTRAL_ONLY]:
            w.writerow([i.lstrip("0") if int(i) % 2 else i, 20 + int(i), "female", f"eth{i}"])
    return expected


def read_manifest(dest: Path) -> list[dict[str, str]]:
    with (dest / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_london_recipe_layout_and_repeatability(tmp_path: Path, capsys) -> None:
    src, dest = tmp_path / "webmorphR.stim", tmp_path / "faces" / "london"
    expected = make_source(src)
    splits = {person_split(i) for i in IDS}
    assert splits == {"tune", "heldout"}, "the synthetic people must fall in both halves"
    (dest / "tune" / "happy").mkdir(parents=True)
    (dest / "tune" / "happy" / "stale__left_over.jpg").write_bytes(b"old run")

    assert prepare_london.main([str(src), "--dest", str(dest)]) == 0
    out = capsys.readouterr()
    assert f"{NEUTRAL_ONLY}_08.jpg" in out.err  # the PNG impostor is reported, not copied
    assert "source commit: working-tree" in out.out

    rows = read_manifest(dest)
    assert {r["file"] for r in rows} == set(expected)
    assert len(rows) == len(expected) == 2 * len(IDS) + 1
    for r in rows:
        label, person, data, width, height = expected[r["file"]]
        face_id = person.removeprefix("london")
        assert (r["label"], r["person"]) == (label, person)
        assert r["split"] == person_split(face_id)
        folder = "neutral_front" if label == "neutral" else "smiling_front"
        assert r["source"] == f"inst/{folder}/{r['file'].split('__')[1]}"
        written = dest / r["split"] / r["label"] / r["file"]
        assert written.read_bytes() == data  # copied byte for byte
        assert r["sha1"] == hashlib.sha1(data).hexdigest()
        assert (int(r["width"]), int(r["height"])) == (width, height)
        assert (r["age"], r["gender"], r["ethnicity"]) == (str(20 + int(face_id)), "female",
                                                           f"eth{face_id}")  # fmt: skip
        link = dest / "all" / r["label"] / r["file"]
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert link.resolve() == written.resolve()

    # every person in exactly one split; both expressions of a person side by side
    split_of: dict[str, set[str]] = {}
    for r in rows:
        split_of.setdefault(r["person"], set()).add(r["split"])
    assert all(len(s) == 1 for s in split_of.values())
    assert {next(iter(s)) for s in split_of.values()} == {"tune", "heldout"}

    # the manifest lists exactly the files on disk (the stale file of an earlier run is gone)
    on_disk = {
        (p.parts[-3], p.parts[-2], p.name)
        for split in ("tune", "heldout") for p in (dest / split).rglob("*") if p.is_file()
    }  # fmt: skip
    assert on_disk == {(r["split"], r["label"], r["file"]) for r in rows}
    assert sorted(p.name for p in dest.iterdir()) == ["all", "heldout", "manifest.csv", "tune"]
    order = [(("tune", "heldout").index(r["split"]), r["label"], r["file"]) for r in rows]
    assert order == sorted(order)

    first = (dest / "manifest.csv").read_bytes()
    assert prepare_london.main([str(src), "--dest", str(dest)]) == 0
    assert (dest / "manifest.csv").read_bytes() == first


def test_layout_helpers(tmp_path: Path, capsys) -> None:
    dest = tmp_path / "faces" / "someset"
    (dest / "tune").mkdir(parents=True)
    (dest / "tune" / "stale.jpg").write_bytes(b"old run")
    layout.reset_dest(str(dest))
    assert not dest.exists()

    layout.write_image(str(dest), "tune", "happy", "p1__a.jpg", b"aaa", link=True)
    layout.write_image(str(dest), "heldout", "fear", "p2__b.jpg", b"bb", link=False)
    assert (dest / "tune" / "happy" / "p1__a.jpg").read_bytes() == b"aaa"
    assert os.readlink(dest / "all" / "happy" / "p1__a.jpg") == "../../tune/happy/p1__a.jpg"
    assert (dest / "heldout" / "fear" / "p2__b.jpg").read_bytes() == b"bb"
    assert not (dest / "all" / "fear").exists()

    # a later row may bring columns the first lacks (as CREMA-D's metadata does): appended, blank
    rows = [
        layout.manifest_row("tune", "happy", "p1", "p1__a.jpg", "src/a.jpg", 3, 2, b"aaa"),
        {**layout.manifest_row("heldout", "fear", "p2", "p2__b.jpg", "b", 5, 4, b"bb"), "age": 30},
    ]
    layout.write_manifest(str(dest), rows)
    manifest = (dest / "manifest.csv").read_text().splitlines()
    assert manifest[0] == "split,label,person,file,source,width,height,sha1,age"
    digest = hashlib.sha1(b"aaa").hexdigest()
    assert manifest[1] == f"tune,happy,p1,p1__a.jpg,src/a.jpg,3,2,{digest},"
    assert manifest[2].endswith(",30")

    layout.print_table(rows, ["happy", "fear"])
    assert capsys.readouterr().out.splitlines() == [
        "             happy     fear  total people",
        "tune             1        0      1      1",
        "heldout          0        1      1      1",
    ]
    assert layout.split_of("london001") == person_split("001")
    assert layout.default_dest("x").endswith(os.path.join("data", "faces", "x"))
