"use strict";
// The preview page. Each card side is parsed into its own shadow root: a fragment parse cannot close or swallow
// anything outside its root, and the deck's CSS (or a <style> in a card) applies to that card alone. Then MathJax
// 3.2.2, configured as Anki configures it, typesets each root, and the toolbar drives the filters and night mode.
(() => {
  const data = JSON.parse(document.getElementById("deck-data").textContent);
  const NIGHT_CLASSES = ["nightMode", "night_mode"];   // Anki desktop / AnkiMobile, and AnkiDroid

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
  const deckCss = forPhoneFrame(data.css) + "\n.viewport { container-type: inline-size; }";

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
    return { host, root, viewport, body, math: [], mathProblems: [] };
  }
  const sides = [...document.querySelectorAll(".phone")].map(mount);

  // --- night mode and filters ---
  const nightSwitch = document.getElementById("night-mode");
  function setNight(on) {
    document.documentElement.classList.toggle("night", on);
    for (const side of sides) for (const name of NIGHT_CLASSES) side.body.classList.toggle(name, on);
  }
  nightSwitch.addEventListener("change", () => setNight(nightSwitch.checked));
  setNight(nightSwitch.checked);   // a reload may keep the box checked

  const deckFilter = document.getElementById("deck-filter");
  const tagFilter = document.getElementById("tag-filter");
  const count = document.getElementById("count");
  const within = (name, parent) => name === parent || name.startsWith(parent + "::");
  function applyFilters() {
    let notes = 0;
    let cards = 0;
    for (const note of document.querySelectorAll(".note")) {
      const tags = JSON.parse(note.dataset.tags);
      const shown = (!deckFilter.value || within(note.dataset.deck, deckFilter.value))
        && (!tagFilter.value || tags.some((tag) => within(tag, tagFilter.value)));
      note.hidden = !shown;
      notes += shown;
      cards += shown ? note.querySelectorAll(".card-view").length : 0;
    }
    count.textContent = `${notes} notes, ${cards} cards`;
  }
  deckFilter.addEventListener("change", applyFilters);
  tagFilter.addEventListener("change", applyFilters);
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

  function typesetAll() {
    // The page's MathJax document does not look inside shadow trees by itself, but it typesets any element it is
    // handed, inside a shadow tree or not, in one pass (one layout for all the measuring).
    return MathJax.typesetPromise(sides.map((side) => side.viewport)).then(() => {
      // MathJax put its CSS in the page's <head>. The @font-face rules work from there (shadow trees cannot declare
      // fonts); every other rule has to be inside each shadow tree to reach the formulas. First, as in Anki, where
      // MathJax's CSS is in the <head> and the card's below.
      const rules = document.getElementById("MJX-CHTML-styles").sheet.cssRules;
      const mathCss = cssText([...rules].filter((rule) => !(rule instanceof CSSFontFaceRule)));
      const byRoot = new Map(sides.map((side) => [side.root, side]));
      for (const item of MathJax.startup.document.math) {
        byRoot.get(item.start.node.getRootNode())?.math.push(item);
      }
      for (const side of sides) {
        side.root.prepend(style(mathCss));
        side.mathProblems = mathProblems(side.math, side.root);
        if (side.mathProblems.length) {
          const badge = side.host.closest(".note").querySelector(".problems");
          badge.hidden = false;
          badge.textContent = "math problem";
          badge.title = side.mathProblems.join("\n");
        }
      }
      preview.typeset = true;
    }).catch((error) => {
      preview.failed = String(error.stack || error);
    });
  }

  const preview = { sides, setNight, applyFilters, typeset: false, failed: null };
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
        MathJax.startup.promise.then(typesetAll);
      },
    },
  };
})();
