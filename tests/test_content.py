"""The viewer's reading content loads, covers the topics and reads well in English and Danish."""

from __future__ import annotations

import copy
import json
import re

import pytest

from broker import wire
from edge.viewer.content import (
    LANGUAGES,
    PAGE_WORDS,
    POST_WORDS,
    Book,
    Page,
    Post,
    load_books,
    load_feed,
    load_items,
)

BOOKS = load_books()
FEED = load_feed()
PAGES = [page for book in BOOKS for page in book.pages]
DANISH_LETTERS = re.compile(r"[æøåÆØÅ]")


def test_everything_loads_as_frozen_dataclasses():
    assert all(isinstance(book, Book) for book in BOOKS)
    assert all(isinstance(page, Page) for page in PAGES)
    assert all(isinstance(post, Post) for post in FEED)
    with pytest.raises(AttributeError):
        PAGES[0].topic = "food"
    assert LANGUAGES == ("en", "da")


def test_at_least_two_books_of_six_to_ten_pages_and_one_with_chapters():
    assert len(BOOKS) >= 2
    for book in BOOKS:
        assert 6 <= len(book.pages) <= 10, book.id
        assert book.chapters and all(chapter.pages for chapter in book.chapters)
    assert any(len(book.chapters) >= 2 for book in BOOKS)


def test_feed_has_sixteen_to_twenty_four_posts():
    assert 16 <= len(FEED) <= 24


def _texts():
    for book in BOOKS:
        yield book.id, book.title
        yield book.id, book.author
        for chapter in book.chapters:
            yield book.id, chapter.title
    for page in PAGES:
        yield page.id, page.text
    for post in FEED:
        yield post.id, post.text


def test_both_languages_present_and_non_empty_everywhere():
    for where, text in _texts():
        assert set(text) == set(LANGUAGES), where
        for lang in LANGUAGES:
            assert text[lang].strip(), (where, lang)


def test_danish_is_a_translation_not_a_copy():
    for where, text in _texts():
        assert text["da"] != text["en"], where
    for book in BOOKS:
        danish = " ".join(page.text["da"] for page in book.pages)
        english = " ".join(page.text["en"] for page in book.pages)
        assert DANISH_LETTERS.search(danish), book.id
        assert not DANISH_LETTERS.search(english), book.id
    assert sum(bool(DANISH_LETTERS.search(post.text["da"])) for post in FEED) >= len(FEED) // 2


def test_topics_come_from_the_wire_vocabulary_and_cover_it():
    for item in [*PAGES, *FEED]:
        assert item.topic in wire.TOPICS, item.id
    assert len({page.topic for page in PAGES}) >= 5
    assert {item.topic for item in [*PAGES, *FEED]} == set(wire.TOPICS)
    for book in BOOKS:
        assert len({page.topic for page in book.pages}) >= 5, book.id


def test_ids_are_unique_across_all_content_and_valid_on_the_wire():
    ids = [item.id for item in [*PAGES, *FEED]]
    assert len(ids) == len(set(ids))
    for item_id in ids:
        assert wire.ITEM_ID.match(item_id), item_id
    for book in BOOKS:
        assert re.match(r"^[a-z0-9][a-z0-9-]{0,30}$", book.id)
    assert set(load_items()) == set(ids)


def test_word_counts_fit_a_screen_and_vary():
    for page in PAGES:
        for lang in LANGUAGES:
            assert PAGE_WORDS[0] <= page.words(lang) <= PAGE_WORDS[1], (page.id, lang)
            assert 85 <= page.words(lang) <= 170, (page.id, lang)  # the issue's ~90-160
            assert all(len(p.split()) <= 80 for p in page.paragraphs(lang)), (page.id, lang)
    english = [page.words("en") for page in PAGES]
    assert max(english) - min(english) >= 30  # some pages short, some long: skims and dwells
    for post in FEED:
        for lang in LANGUAGES:
            assert POST_WORDS[0] <= post.words(lang) <= POST_WORDS[1], (post.id, lang)
            assert 10 <= post.words(lang) <= 60, (post.id, lang)
            sentences = re.findall(r"[.!?](?:\s|$)", post.text[lang])
            assert 1 <= len(sentences) <= 3, (post.id, lang)


def test_page_words_split_on_whitespace():
    page = Page(id="p", topic="food", text={"en": " one two\n\nthree ", "da": "en"})
    assert page.words("en") == 3
    assert page.paragraphs("en") == ["one two", "three"]


def test_chapter_of_finds_the_page():
    book = next(book for book in BOOKS if len(book.chapters) >= 2)
    last = book.chapters[-1]
    assert book.chapter_of(last.pages[0].id) is last
    assert book.words("en") == sum(chapter.words("en") for chapter in book.chapters)


# -- broken files ------------------------------------------------------------------------------


def _raw(name):
    from importlib import resources

    return json.loads(
        resources.files("edge.viewer.content").joinpath(name).read_text(encoding="utf-8")
    )


def _first_page(data):
    return data["books"][0]["chapters"][0]["pages"][0]


def _break_topic(data):
    _first_page(data)["topic"] = "sport"


def _break_id(data):
    _first_page(data)["id"] = "Bad_Id"


def _break_language(data):
    del _first_page(data)["text"]["da"]


def _duplicate_id(data):
    _first_page(data)["id"] = data["books"][1]["pages"][0]["id"]


def _too_short(data):
    _first_page(data)["text"]["en"] = "Too short to be a page."


def _too_long(data):
    _first_page(data)["text"]["da"] = "ord " * 250


@pytest.mark.parametrize(
    "breaker, problem",
    [
        (_break_topic, "unknown topic 'sport'"),
        (_break_id, "bad page id 'Bad_Id'"),
        (_break_language, "missing language 'da'"),
        (_duplicate_id, "duplicate id"),
        (_too_short, "6 words in 'en'"),
        (_too_long, "250 words in 'da'"),
    ],
)
def test_a_broken_books_file_names_the_file_and_the_problem(tmp_path, breaker, problem):
    data = copy.deepcopy(_raw("books.json"))
    breaker(data)
    path = tmp_path / "broken-books.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_books(path=path)
    assert "broken-books.json" in str(err.value)
    assert problem in str(err.value)


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"topic": "weather"}, "unknown topic 'weather'"),
        ({"text": {"en": "Too short.", "da": "For kort."}}, "2 words in 'en'"),
        ({"text": {"en": "word " * 80, "da": "ord " * 20}}, "80 words in 'en'"),
        ({"text": {"en": "Only English here, which is not enough."}}, "missing language 'da'"),
        ({"id": "feed-02"}, "duplicate id 'feed-02'"),
    ],
)
def test_a_broken_feed_file_names_the_file_and_the_problem(tmp_path, change, problem):
    data = copy.deepcopy(_raw("feed.json"))
    data["posts"][0].update(change)
    path = tmp_path / "broken-feed.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_feed(path=path)
    assert "broken-feed.json" in str(err.value)
    assert problem in str(err.value)


def test_a_post_id_that_is_also_a_page_id_is_refused(tmp_path):
    data = copy.deepcopy(_raw("feed.json"))
    data["posts"][0]["id"] = PAGES[0].id
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="also a page id"):
        load_items(feed_path=path)


def test_unreadable_and_malformed_files_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        load_books(path=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        load_feed(path=bad)
