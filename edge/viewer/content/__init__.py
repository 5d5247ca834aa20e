"""The reading content on the viewer's screen: books of pages and a feed of posts, EN and DA.

The texts live in `books.json` and `feed.json` beside this module (original texts written for
Onlooker, English and Danish). Every page and post carries a topic from the wire's vocabulary
(`broker.wire.TOPICS`), so interests can be inferred, and an id the wire accepts
(`broker.wire.ITEM_ID`), unique across all content. Both files are validated on load; any problem
raises `ValueError` naming the file and the item.

``books.json``::

    {"version": 1, "books": [
      {"id": "idas-tuesday", "title": {"en": ..., "da": ...}, "author": {"en": ..., "da": ...},
       "chapters": [{"title": {"en": ..., "da": ...}, "pages": [PAGE, ...]}, ...]},
      {"id": ..., "title": ..., "author": ..., "pages": [PAGE, ...]}     # one untitled chapter
    ]}
    PAGE = {"id": "ida-1", "topic": "food", "text": {"en": ..., "da": ...}}

Page text is plain text; paragraphs are separated by a blank line.

``feed.json``::

    {"version": 1, "posts": [{"id": "feed-01", "topic": "food", "author": "kitchen.rosa",
                              "text": {"en": ..., "da": ...}}, ...]}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from broker.wire import ITEM_ID, TOPICS

__all__ = [
    "LANGUAGES",
    "PAGE_WORDS",
    "POST_WORDS",
    "Book",
    "Chapter",
    "Page",
    "Post",
    "load_books",
    "load_feed",
    "load_items",
]

LANGUAGES = ("en", "da")
"""Every text exists in each of these languages."""
BOOK_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
POST_AUTHOR = re.compile(r"^[a-z0-9][a-z0-9._]{1,31}$")
"""An invented handle, shown with a leading @ by the viewer page."""
PAGE_WORDS = (60, 200)
"""A page must fit one screen without scrolling, yet give the reading timer something to time."""
POST_WORDS = (8, 70)
FORMAT_VERSION = 1

PathLike = str | Path
LangText = dict[str, str]


@dataclass(frozen=True)
class Page:
    id: str
    topic: str
    text: LangText

    def words(self, lang: str) -> int:
        """How many words the page has in `lang` (split on whitespace)."""
        return len(self.text[lang].split())

    def paragraphs(self, lang: str) -> list[str]:
        return [p.strip() for p in re.split(r"\n\s*\n", self.text[lang]) if p.strip()]


@dataclass(frozen=True)
class Chapter:
    title: LangText
    pages: list[Page]

    def words(self, lang: str) -> int:
        return sum(page.words(lang) for page in self.pages)


@dataclass(frozen=True)
class Book:
    id: str
    title: LangText
    author: LangText
    chapters: list[Chapter]

    @property
    def pages(self) -> list[Page]:
        """All pages in reading order."""
        return [page for chapter in self.chapters for page in chapter.pages]

    def words(self, lang: str) -> int:
        return sum(chapter.words(lang) for chapter in self.chapters)

    def chapter_of(self, page_id: str) -> Chapter:
        for chapter in self.chapters:
            if any(page.id == page_id for page in chapter.pages):
                return chapter
        raise KeyError(page_id)


@dataclass(frozen=True)
class Post:
    id: str
    topic: str
    author: str
    text: LangText

    def words(self, lang: str) -> int:
        return len(self.text[lang].split())


# -- loading ---------------------------------------------------------------------------------


def load_books(path: PathLike | None = None) -> list[Book]:
    """The books, validated; `path` overrides the packaged `books.json`."""
    name, data = _read(path, "books.json")
    v = _Validator(name)
    v.keys(data, "top level", required={"version", "books"})
    v.version(data)
    books_raw = v.list_of(data["books"], "books", minimum=1)
    books = []
    for i, raw in enumerate(books_raw):
        where = f"books[{i}]"
        v.keys(raw, where, required={"id", "title", "author"}, optional={"chapters", "pages"})
        book_id = v.id(raw["id"], where, BOOK_ID, "book")
        where = f"book {book_id!r}"
        title = v.lang_text(raw["title"], f"{where} title")
        author = v.lang_text(raw["author"], f"{where} author")
        if ("chapters" in raw) == ("pages" in raw):
            v.fail(f"{where}: give either 'chapters' or 'pages', not both or neither")
        if "pages" in raw:
            pages = v.pages(raw["pages"], where)
            chapters = [Chapter(title=title, pages=pages)]
        else:
            chapters = []
            for j, raw_ch in enumerate(v.list_of(raw["chapters"], f"{where} chapters", 1)):
                ch_where = f"{where} chapter {j + 1}"
                v.keys(raw_ch, ch_where, required={"title", "pages"})
                chapters.append(
                    Chapter(
                        title=v.lang_text(raw_ch["title"], f"{ch_where} title"),
                        pages=v.pages(raw_ch["pages"], ch_where),
                    )
                )
        books.append(Book(id=book_id, title=title, author=author, chapters=chapters))
    return books


def load_feed(path: PathLike | None = None) -> list[Post]:
    """The feed's posts, validated; `path` overrides the packaged `feed.json`."""
    name, data = _read(path, "feed.json")
    v = _Validator(name)
    v.keys(data, "top level", required={"version", "posts"})
    v.version(data)
    posts = []
    for i, raw in enumerate(v.list_of(data["posts"], "posts", minimum=1)):
        where = f"posts[{i}]"
        v.keys(raw, where, required={"id", "topic", "author", "text"})
        post_id = v.id(raw["id"], where, ITEM_ID, "post")
        where = f"post {post_id!r}"
        topic = v.topic(raw["topic"], where)
        author = raw["author"]
        if not isinstance(author, str) or not POST_AUTHOR.match(author):
            v.fail(f"{where}: bad author handle {author!r} (want {POST_AUTHOR.pattern})")
        text = v.lang_text(raw["text"], f"{where} text", words=POST_WORDS)
        posts.append(Post(id=post_id, topic=topic, author=author, text=text))
    return posts


def load_items(
    books_path: PathLike | None = None, feed_path: PathLike | None = None
) -> dict[str, Page | Post]:
    """Every page and post by id; ids must be unique across books and feed together."""
    items: dict[str, Page | Post] = {}
    for book in load_books(books_path):
        for page in book.pages:
            items[page.id] = page
    for post in load_feed(feed_path):
        if post.id in items:
            name = Path(feed_path).name if feed_path else "feed.json"
            raise ValueError(f"{name}: post id {post.id!r} is also a page id in the books")
        items[post.id] = post
    return items


def _read(path: PathLike | None, default: str) -> tuple[str, Any]:
    if path is None:
        source = resources.files(__name__).joinpath(default)
        name = default
    else:
        source = Path(path)
        name = str(path)
    try:
        return name, json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{name}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON: {exc}") from exc


class _Validator:
    """Checks one file; every failure names the file, the item and the problem."""

    def __init__(self, name: str):
        self.name = name
        self.seen: set[str] = set()

    def fail(self, problem: str):
        raise ValueError(f"{self.name}: {problem}")

    def keys(self, raw: Any, where: str, required: set[str], optional: frozenset = frozenset()):
        if not isinstance(raw, dict):
            self.fail(f"{where}: expected an object, got {type(raw).__name__}")
        missing = required - raw.keys()
        if missing:
            self.fail(f"{where}: missing {', '.join(sorted(missing))}")
        unknown = raw.keys() - required - set(optional)
        if unknown:
            self.fail(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")

    def version(self, data: dict):
        if data["version"] != FORMAT_VERSION:
            self.fail(f"unsupported version {data['version']!r} (want {FORMAT_VERSION})")

    def list_of(self, raw: Any, where: str, minimum: int = 0) -> list:
        if not isinstance(raw, list) or len(raw) < minimum:
            self.fail(f"{where}: expected a list of at least {minimum}")
        return raw

    def id(self, raw: Any, where: str, pattern: re.Pattern, kind: str) -> str:
        if not isinstance(raw, str) or not pattern.match(raw):
            self.fail(f"{where}: bad {kind} id {raw!r} (want {pattern.pattern})")
        if raw in self.seen:
            self.fail(f"{where}: duplicate id {raw!r}")
        self.seen.add(raw)
        return raw

    def topic(self, raw: Any, where: str) -> str:
        if raw not in TOPICS:
            self.fail(f"{where}: unknown topic {raw!r} (want one of {', '.join(TOPICS)})")
        return raw

    def lang_text(self, raw: Any, where: str, words: tuple[int, int] | None = None) -> LangText:
        if not isinstance(raw, dict):
            self.fail(f"{where}: expected an object with languages {', '.join(LANGUAGES)}")
        for lang in LANGUAGES:
            if lang not in raw:
                self.fail(f"{where}: missing language {lang!r}")
        for lang in LANGUAGES:
            text = raw[lang]
            if not isinstance(text, str) or not text.strip():
                self.fail(f"{where}: empty text for language {lang!r}")
            if words is not None:
                n = len(text.split())
                if not words[0] <= n <= words[1]:
                    self.fail(
                        f"{where}: {n} words in {lang!r}, outside {words[0]}-{words[1]} words"
                    )
        unknown = raw.keys() - set(LANGUAGES)
        if unknown:
            self.fail(f"{where}: unknown language(s) {', '.join(sorted(unknown))}")
        return {lang: raw[lang].strip() for lang in LANGUAGES}

    def pages(self, raw: Any, where: str) -> list[Page]:
        pages = []
        for k, raw_page in enumerate(self.list_of(raw, f"{where} pages", minimum=1)):
            page_where = f"{where} pages[{k}]"
            self.keys(raw_page, page_where, required={"id", "topic", "text"})
            page_id = self.id(raw_page["id"], page_where, ITEM_ID, "page")
            page_where = f"{where} page {page_id!r}"
            pages.append(
                Page(
                    id=page_id,
                    topic=self.topic(raw_page["topic"], page_where),
                    text=self.lang_text(raw_page["text"], f"{page_where} text", words=PAGE_WORDS),
                )
            )
        return pages
