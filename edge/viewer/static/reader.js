"use strict";
// The e-reader and the feed on the viewer's screen. Whatever is on screen is reported to the
// agent (POST /api/item) with its topic, words and layout; the agent times it.
window.OnlookerReader = (function () {
  const $ = (id) => document.getElementById(id);
  let content = null; // {books: [...], feed: [...]} in the current language
  let lang = "en";
  let mode = null; // a book id, or "feed"
  let pageIndex = 0;
  let reported = undefined;
  let active = false;
  let observer = null;
  let visiblePost = null;
  // The page's own token: the agent refuses a POST without it.
  const token = () => document.querySelector('meta[name="onlooker-token"]').content;

  async function load(language) {
    lang = language;
    const response = await fetch("/api/content?lang=" + encodeURIComponent(lang));
    content = await response.json();
    buildTabs();
    if (mode === null) mode = content.books[0].id;
    render();
  }

  function book() {
    return content.books.find((b) => b.id === mode);
  }

  function pages(b) {
    const out = [];
    b.chapters.forEach((chapter, c) => chapter.pages.forEach((p) => out.push({page: p, chapter: c})));
    return out;
  }

  function buildTabs() {
    const tabs = $("reader-tabs");
    tabs.replaceChildren();
    const entries = content.books.map((b) => [b.id, b.title]).concat([["feed", content.feed_title]]);
    for (const [id, title] of entries) {
      const tab = document.createElement("button");
      tab.type = "button";
      tab.className = "tab";
      tab.dataset.mode = id;
      tab.setAttribute("role", "tab");
      tab.textContent = title;
      tab.addEventListener("click", function () {
        mode = id;
        pageIndex = 0;
        render();
      });
      tabs.appendChild(tab);
    }
  }

  function render() {
    for (const tab of document.querySelectorAll("#reader-tabs .tab")) {
      tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
    }
    const isFeed = mode === "feed";
    $("book").hidden = isFeed;
    $("feed").hidden = !isFeed;
    if (isFeed) renderFeed(); else renderPage();
  }

  function renderPage() {
    stopFeed();
    const b = book();
    const all = pages(b);
    pageIndex = Math.max(0, Math.min(pageIndex, all.length - 1));
    const {page, chapter} = all[pageIndex];
    $("book-title").textContent = b.title;
    $("book-chapter").textContent = b.chapters[chapter].title || "";
    const text = $("page-text");
    text.replaceChildren();
    for (const paragraph of page.text.split(/\n\s*\n/)) {
      const p = document.createElement("p");
      p.textContent = paragraph.trim();
      text.appendChild(p);
    }
    $("page-number").textContent = `${pageIndex + 1} / ${all.length}`;
    $("prev").disabled = pageIndex === 0;
    $("next").disabled = pageIndex === all.length - 1;
    const later = all.slice(pageIndex + 1);
    const after = later.reduce((sum, entry) => sum + entry.page.words, 0);
    const inChapter = later.filter((entry) => entry.chapter === chapter)
      .reduce((sum, entry) => sum + entry.page.words, 0);
    // Wait for layout, then measure the page as the reader sees it.
    requestAnimationFrame(() => report(page, text, after, inChapter));
  }

  function lineCount(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const tops = new Set();
    for (const rect of range.getClientRects()) {
      if (rect.width > 1) tops.add(Math.round(rect.top));
    }
    return Math.max(1, tops.size);
  }

  function report(item, element, wordsAfter, chapterWordsAfter) {
    if (!active) return;
    const lines = lineCount(element);
    const box = element.getBoundingClientRect();
    const body = {
      item: item.id,
      topic: item.topic,
      words: item.words,
      lines: lines,
      words_per_line: Math.max(0.1, item.words / lines),
      box_fraction: Math.min(1, Math.max(0.05, box.width / window.innerWidth)),
      box_left: Math.min(0.95, Math.max(0, box.left / window.innerWidth)),
      words_after: wordsAfter,
      chapter_words_after: chapterWordsAfter === undefined ? null : chapterWordsAfter,
    };
    send(body);
  }

  function send(body) {
    const id = body.item;
    if (id === reported) return;
    reported = id;
    fetch("/api/item", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Onlooker-Token": token()},
      body: JSON.stringify(body),
    }).catch(function () { reported = undefined; });
  }

  function renderFeed() {
    const list = $("feed-list");
    if (list.dataset.lang !== lang) {
      list.replaceChildren();
      for (const post of content.feed) {
        const item = document.createElement("article");
        item.className = "post";
        item.dataset.item = post.id;
        const who = document.createElement("div");
        who.className = "post-author";
        who.textContent = "@" + post.author;
        const text = document.createElement("p");
        text.textContent = post.text;
        item.append(who, text);
        list.appendChild(item);
      }
      list.dataset.lang = lang;
    }
    stopFeed();
    const ratios = new Map();
    observer = new IntersectionObserver(function (entries) {
      for (const entry of entries) ratios.set(entry.target, entry.intersectionRatio);
      let best = null;
      let bestRatio = 0.6; // a post counts as "looked at" when most of it is in view
      for (const [node, ratio] of ratios) {
        if (ratio > bestRatio) { best = node; bestRatio = ratio; }
      }
      if (best && best !== visiblePost) {
        visiblePost = best;
        const post = content.feed.find((p) => p.id === best.dataset.item);
        for (const node of list.children) node.classList.toggle("current", node === best);
        report(post, best.querySelector("p"), 0);
      }
    }, {threshold: [0, 0.25, 0.5, 0.6, 0.75, 1]});
    for (const node of list.children) observer.observe(node);
  }

  function stopFeed() {
    if (observer) observer.disconnect();
    observer = null;
    visiblePost = null;
  }

  function turn(step) {
    if (mode === "feed") return;
    const count = pages(book()).length;
    const next = Math.max(0, Math.min(count - 1, pageIndex + step));
    if (next !== pageIndex) {
      pageIndex = next;
      renderPage();
    }
  }

  function setActive(on) {
    if (on === active) return;
    active = on;
    if (!on) {
      stopFeed();
      send({item: null});
    } else if (content) {
      reported = undefined;
      render();
    }
  }

  function wire() {
    $("prev").addEventListener("click", () => turn(-1));
    $("next").addEventListener("click", () => turn(1));
    $("page-text").addEventListener("click", () => turn(1));
    document.addEventListener("keydown", function (event) {
      if (!active || mode === "feed" || event.target.closest("input, textarea")) return;
      // Space on a focused button presses that button; elsewhere it turns the page.
      const space = event.key === " " && !event.target.closest("button");
      if (event.key === "ArrowRight" || event.key === "PageDown" || space) {
        event.preventDefault();
        turn(1);
      } else if (event.key === "ArrowLeft" || event.key === "PageUp") {
        event.preventDefault();
        turn(-1);
      }
    });
    let startX = null;
    $("book").addEventListener("touchstart", (e) => { startX = e.touches[0].clientX; }, {passive: true});
    $("book").addEventListener("touchend", function (e) {
      if (startX === null) return;
      const dx = e.changedTouches[0].clientX - startX;
      if (Math.abs(dx) > 50) turn(dx < 0 ? 1 : -1);
      startX = null;
    });
  }

  wire();
  return {
    load: load,
    setActive: setActive,
    language: function (language) {
      if (language !== lang) {
        reported = undefined;
        load(language);
      }
    },
  };
})();
