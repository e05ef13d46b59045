"use strict";
// The preview page. Each card side is parsed into its own shadow root: a fragment parse cannot close or swallow
// anything outside its root, and the deck's CSS (or a <style> in a card) applies to that card alone. Then MathJax
// 3.2.2, configured as Anki configures it, typesets each root, and the toolbar drives the filters and night mode.
(() => {
  const data = JSON.parse(document.getElementById("deck-data").textContent);
  const NIGHT_CLASSES = data.night;   // Anki desktop / AnkiMobile, and AnkiDroid (from ankideck/theme.py)

  const style = (css) => Object.assign(document.createElement("style"), { textContent: css });
  const cssText = (rules) => [...rules].map((rule) => rule.cssText).join("\n");

  // The deck's CSS is written for a phone's viewport. In a page wider than a phone, a width @media rule would test
  // the page instead, so such rules become container queries on the phone frame (the .viewport element).
  const WIDTH_QUERY = /^\((min-|max-)?width\s*:[^()]*\)(\s+and\s+\((min-|max-)?width\s*:[^()]*\))*$/;
  function forPhoneFrame(css) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    return [...sheet.cssRules].map((rule) => rule instanceof CSSMediaRule && WIDTH_QUERY.test(rule.conditionText)
      ? `@container ${rule.conditionText} { ${cssText(rule.cssRules)} }` : rule.cssText).join("\n");
  }
  // The preview stacks many cards: a card is as tall as its content, not a whole screen (the render check tests the
  // full-screen background on its own page).
  const deckCss = forPhoneFrame(data.css) + "\n.viewport { container-type: inline-size; }\n.card { min-height: 0; }";
  const nightSwitch = document.getElementById("night-mode");

  // Like Anki's reviewer: the note type's CSS, then the card's HTML inside #qa, inside a body with the classes
  // "card cardN". Style elements rather than adopted style sheets keep Anki's cascade: a <style> in a card comes
  // after the note type's CSS.
  function mount(host) {
    const root = host.attachShadow({ mode: "open" });
    const viewport = document.createElement("div");
    viewport.className = "viewport";
    const body = document.createElement("div");
    body.className = `card card${host.dataset.ord}`;
    const qa = document.createElement("div");
    qa.id = "qa";
    qa.innerHTML = data.sides[Number(host.dataset.side)];
    body.append(qa);
    viewport.append(body);
    root.append(style(deckCss), viewport);
    host.classList.add("mounted");
    return { host, root, viewport, body, math: [], mathProblems: [] };
  }
  // Sides are mounted and typeset as they scroll into view (typesetting every formula up front took 12-26 s on a
  // 2-core machine); typesetAll() does the rest at once, for the render check and the screenshots.
  const hosts = [...document.querySelectorAll(".phone")];
  const sides = [];
  const mounted = new Map();   // host -> side
  function sideOf(host) {
    if (!mounted.has(host)) {
      const side = mount(host);
      mounted.set(host, side);
      sides.push(side);
      for (const name of NIGHT_CLASSES) side.body.classList.toggle(name, nightSwitch.checked);
    }
    return mounted.get(host);
  }

  // --- night mode and filters ---
  function setNight(on) {
    document.documentElement.classList.toggle("night", on);
    for (const side of sides) for (const name of NIGHT_CLASSES) side.body.classList.toggle(name, on);
  }
  nightSwitch.addEventListener("change", () => setNight(nightSwitch.checked));
  setNight(nightSwitch.checked);   // a reload may keep the box checked

  const deckFilter = document.getElementById("deck-filter");
  const tagFilter = document.getElementById("tag-filter");
  const search = document.getElementById("search");
  const count = document.getElementById("count");
  const within = (name, parent) => name === parent || name.startsWith(parent + "::");
  // Search text per note: its id, tags and the text of its sides (front and back), without markup.
  const plain = (markup) => new DOMParser().parseFromString(markup, "text/html").body.textContent;
  const searchText = new Map();
  function textOf(note) {
    if (!searchText.has(note)) {
      const sideText = [...note.querySelectorAll(".phone")].map((host) => plain(data.sides[Number(host.dataset.side)]));
      searchText.set(note, [note.querySelector(".note-id").textContent, note.dataset.tags, ...sideText]
        .join("\n").toLowerCase());
    }
    return searchText.get(note);
  }
  function applyFilters() {
    let notes = 0;
    let cards = 0;
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const note of document.querySelectorAll(".note")) {
      const tags = JSON.parse(note.dataset.tags);
      const shown = (!deckFilter.value || within(note.dataset.deck, deckFilter.value))
        && (!tagFilter.value || tags.some((tag) => within(tag, tagFilter.value)))
        && (!words.length || words.every((word) => textOf(note).includes(word)));
      note.hidden = !shown;
      notes += shown;
      cards += shown ? note.querySelectorAll(".card-view").length : 0;
    }
    count.textContent = `${notes} notes, ${cards} cards`;
  }
  deckFilter.addEventListener("change", applyFilters);
  tagFilter.addEventListener("change", applyFilters);
  search.addEventListener("input", applyFilters);
  applyFilters();

  // --- math ---
  // What MathJax shows instead of a formula: an error box (with "noerrors", the TeX source in a box), an unknown
  // macro (with "noundefined", its name in red), or delimiters it never paired, left as text.
  const LEFTOVER_DELIMITER = /\\[()[\]]|\$\$/;
  function mathProblems(mathItems, root) {
    const problems = [];
    for (const item of mathItems) {
      item.root.walkTree((node) => {
        if (node.isKind("merror")) {
          problems.push(`${node.attributes.get("data-mjx-error") || "TeX error"} in ${item.math.trim()}`);
        } else if (node.isKind("mtext") && node.attributes.get("mathcolor") === "red") {
          const text = node.childNodes.map((child) => child.getText?.() ?? "").join("");
          if (/^\\[A-Za-z]+$/.test(text)) problems.push(`unknown macro ${text} in ${item.math.trim()}`);
        }
      });
    }
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      if (text.parentElement.closest("mjx-container, code, pre, style")) continue;
      const match = text.data.match(LEFTOVER_DELIMITER);
      if (match) problems.push(`unbalanced math delimiter ${match[0]} in "${text.data.trim().slice(0, 80)}"`);
    }
    return problems;
  }

  // MathJax typesets the elements it is handed, inside shadow trees too, in one pass (one layout for the measuring).
  // It puts its CSS in the page's <head>: the @font-face rules work from there (shadow trees cannot declare fonts);
  // every other rule has to be inside each shadow tree to reach the formulas. First, as in Anki, where MathJax's CSS
  // is in the <head> and the card's below.
  let queue = Promise.resolve();
  function typeset(batch) {
    const todo = batch.filter((side) => !side.typeset && !side.queued);
    if (!todo.length) return queue;
    for (const side of todo) side.queued = true;
    queue = queue.then(() => MathJax.typesetPromise(todo.map((side) => side.viewport))).then(() => {
      const rules = document.getElementById("MJX-CHTML-styles").sheet.cssRules;
      const mathCss = cssText([...rules].filter((rule) => !(rule instanceof CSSFontFaceRule)));
      const byRoot = new Map(todo.map((side) => [side.root, side]));
      for (const item of MathJax.startup.document.math) {
        byRoot.get(item.start.node.getRootNode())?.math.push(item);
      }
      MathJax.startup.document.math.clear();   // each formula is collected once, by the batch that typeset it
      for (const side of todo) {
        side.root.prepend(style(mathCss));
        side.mathProblems = mathProblems(side.math, side.root);
        side.typeset = true;
        if (side.mathProblems.length) {
          const badge = side.host.closest(".note").querySelector(".problems");
          badge.hidden = false;
          badge.textContent = "math problem";
          badge.title = side.mathProblems.join("\n");
        }
      }
    }).catch((error) => {
      preview.failed = String(error.stack || error);
    });
    return queue;
  }

  function typesetAll() {
    return typeset(hosts.map(sideOf)).then(() => { preview.typeset = true; });
  }

  function startLazy() {
    const observer = new IntersectionObserver((entries) => {
      const visible = entries.filter((entry) => entry.isIntersecting).map((entry) => entry.target);
      for (const host of visible) observer.unobserve(host);
      if (visible.length) typeset(visible.map(sideOf));
    }, { rootMargin: "1200px 0px" });
    for (const host of hosts) observer.observe(host);
    preview.ready = true;
  }

  const preview = { sides, setNight, applyFilters, typesetAll, ready: false, typeset: false, failed: null };
  window.ankideckPreview = preview;

  // Anki's settings (ts/mathjax/index.ts) for tex-chtml-full.js; inline \(..\) is MathJax's default.
  window.MathJax = {
    tex: {
      displayMath: [["\\[", "\\]"]],
      processEscapes: false,
      processEnvironments: false,
      processRefs: false,
      packages: { "[+]": ["noerrors", "mathtools", "mhchem"], "[-]": ["textmacros"] },
    },
    loader: { load: ["[tex]/noerrors", "[tex]/mathtools", "[tex]/mhchem"] },
    startup: {
      typeset: false,
      ready() {
        MathJax.startup.defaultReady();
        MathJax.startup.promise.then(startLazy);
      },
    },
  };
})();
