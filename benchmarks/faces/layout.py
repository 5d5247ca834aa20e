"""What every face-data recipe shares: the person split, the output layout and the report.

Each ``prepare_<set>.py`` reads its own source and decides which images to keep, with which
label and person; this module holds the rest, so that all sets are split, laid out, listed
and counted the same way (docs/expression-data.md, "Layout"):

    DEST/<split>/<label>/<person>__<file>.jpg    split = tune | heldout
    DEST/all/<label>/<person>__<file>.jpg        relative symlinks into the splits
    DEST/manifest.csv                            one row per written image

Split rule: sha1(person id) even -> tune, odd -> heldout.
"""

import argparse
import collections
import csv
import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence

logger = logging.getLogger(__name__)

SPLITS = ("tune", "heldout")

Row = dict[str, object]


def sha1(text: str) -> str:
    """Hex sha1 of TEXT encoded as UTF-8."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def split_of(person: str) -> str:
    """The split a person belongs to: sha1(person) even -> tune, odd -> heldout."""
    return SPLITS[int(sha1(person), 16) % 2]


def default_dest(set_name: str) -> str:
    """<repo>/../data/faces/<set>: the data lives beside the checkout, never in it."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, *[".."] * 3, "data", "faces", set_name))


class Source:
    """Reads files from a bare git snapshot (at REV) or from a plain directory."""

    def __init__(self, path: str, rev: str) -> None:
        self.path = path
        self.git = os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(
            os.path.join(path, "objects")
        )
        if not self.git and os.path.isdir(os.path.join(path, ".git")):
            self.git = True
            path = os.path.join(path, ".git")
        self.gitdir = path
        self.rev = rev

    def commit(self) -> str:
        """The commit REV names, or "working-tree" for a plain directory."""
        if not self.git:
            return "working-tree"
        return subprocess.run(
            ["git", "--git-dir", self.gitdir, "rev-parse", self.rev],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def listdir(self, sub: str) -> list[str]:
        """Sorted names of the entries of folder SUB."""
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

    def read(self, rel: str) -> bytes:
        """The bytes of file REL; raises if it is missing."""
        if not self.git:
            with open(os.path.join(self.path, rel), "rb") as f:
                return f.read()
        return subprocess.run(
            ["git", "--git-dir", self.gitdir, "show", f"{self.rev}:{rel}"],
            check=True,
            capture_output=True,
        ).stdout


def make_parser(
    set_name: str, doc: str, source_help: str, example_source: str
) -> argparse.ArgumentParser:
    """A recipe's parser: description from DOC's first paragraph, example epilog, SOURCE."""
    ap = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog=f"Example: python -m benchmarks.faces.prepare_{set_name} {example_source} "
        f"--dest ../data/faces/{set_name}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("source", help=source_help)
    return ap


def add_dest_option(ap: argparse.ArgumentParser, set_name: str) -> None:
    """Add --dest, defaulting to ../data/faces/<set> beside the checkout."""
    ap.add_argument(
        "--dest",
        default=default_dest(set_name),
        help=f"output directory (replaced) [../data/faces/{set_name} beside the checkout]",
    )


def add_rev_option(
    ap: argparse.ArgumentParser, help_text: str = "git revision to read [%(default)s]"
) -> None:
    """Add --rev, the git revision of a git source to read (default HEAD)."""
    ap.add_argument("--rev", default="HEAD", help=help_text)


def add_no_all_option(ap: argparse.ArgumentParser) -> None:
    """Add --no-all, which skips the all/ symlink view."""
    ap.add_argument("--no-all", action="store_true", help="do not write the all/ symlink view")


def reset_dest(dest: str) -> None:
    """Delete DEST if it exists, so that a run writes it from scratch."""
    if os.path.exists(dest):
        logger.debug("removing %s", dest)
        shutil.rmtree(dest)


def write_image(dest: str, split: str, label: str, name: str, data: bytes, link: bool) -> None:
    """Write DEST/split/label/name and, with LINK, its relative symlink in DEST/all/label."""
    out = os.path.join(dest, split, label, name)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(data)
    if link:
        link_path = os.path.join(dest, "all", label, name)
        os.makedirs(os.path.dirname(link_path), exist_ok=True)
        os.symlink(os.path.join("..", "..", split, label, name), link_path)


def manifest_row(
    split: str,
    label: str,
    person: str,
    name: str,
    source: str,
    width: int,
    height: int,
    data: bytes,
) -> Row:
    """The manifest columns every set has: split, label, person, file, source, size, sha1."""
    return {
        "split": split,
        "label": label,
        "person": person,
        "file": name,
        "source": source,
        "width": width,
        "height": height,
        "sha1": hashlib.sha1(data).hexdigest(),
    }


def write_manifest(dest: str, rows: Sequence[Mapping[str, object]]) -> None:
    """Write DEST/manifest.csv: columns in first-seen order, blank where a row lacks one."""
    fields = list(rows[0])
    for r in rows:
        fields += [k for k in r if k not in fields]
    path = os.path.join(dest, "manifest.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    logger.debug("wrote %d rows to %s", len(rows), path)


def print_table(rows: Iterable[Mapping[str, object]], labels: Sequence[str]) -> None:
    """Print the images per split and label, with each split's total and number of people."""
    rows = list(rows)
    counts = collections.Counter((r["split"], r["label"]) for r in rows)
    print(f"{'':9} " + " ".join(f"{lab:>8}" for lab in labels) + "  total people")
    for s in SPLITS:
        people = len({r["person"] for r in rows if r["split"] == s})
        cells = " ".join(f"{counts[s, lab]:8d}" for lab in labels)
        total = sum(counts[s, lab] for lab in labels)
        print(f"{s:<9} {cells}  {total:5d} {people:6d}")
