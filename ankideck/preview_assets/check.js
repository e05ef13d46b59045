// The render check, run in the preview page once per mode (light, night) after every side is typeset.
// Returns {problems: [{card, ord, face, kind, reason, needle, width, box}], figures: [...], heights: [...]}.
// `needle` is text to find the problem's line in the card's source (a formula's TeX, a code line).
async (wanted) => {   // wanted: the class of the figure images this mode must show (fig-light, fig-dark)
  const preview = window.ankideckPreview;
  const problems = [];
  const figures = [];
  const heights = [];
  const report = (side, kind, reason, extra = {}) => problems.push({ ...side.host.dataset, kind, reason, ...extra });

  const rgba = (css) => {
    const parts = css.match(/rgba?\(([^)]*)\)/)[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return parts.length === 3 ? [...parts, 1] : parts;
  };
  const channel = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const contrast = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const up = (node) => node.parentElement || node.getRootNode().host || null;
  // The colour behind an element: its own and its ancestors' backgrounds (across the shadow boundary), composited.
  const background = (element) => {
    const layers = [];
    for (let node = element; node; node = up(node)) {
      const color = rgba(getComputedStyle(node).backgroundColor);
      if (color[3] > 0) layers.push(color);
      if (color[3] >= 1) break;
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
  };
  const scrolls = (element) => {   // a box that keeps its overflow to itself (overflow does not apply to inlines)
    const style = getComputedStyle(element);
    return style.display !== "inline" && ["auto", "scroll", "hidden", "clip"].includes(style.overflowX);
  };
  const text = (element) => element.textContent.trim().replace(/\s+/g, " ");
  const describe = (element) => `<${element.localName}${element.className ? ` class="${element.className}"` : ""}>`
    + ` "${text(element).slice(0, 60)}"`;
  const px = (value) => Math.round(value);
  // The content box's width: what a line of content may use.
  const innerWidth = (element) => {
    const style = getComputedStyle(element);
    return element.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  };

  // Everything is measured with the Extra open (what is inside a closed <details> has no size), the heights closed.
  for (const side of preview.sides) for (const details of side.root.querySelectorAll("details")) details.open = true;
  await Promise.all(preview.sides.flatMap((side) =>
    [...side.root.querySelectorAll("img")].map((img) => img.decode().catch(() => null))));

  for (const side of preview.sides) {
    const card = side.body;
    const tex = new Map(side.math.map((item) => [item.typesetRoot, item.math]));
    for (const problem of side.mathProblems) report(side, "mathjax", `MathJax: ${problem}`);

    // Formulas: display formulas scroll inside their own box, so measure the formula against the box; an inline
    // formula cannot scroll at all, so measure it against the text column it sits in.
    for (const container of side.root.querySelectorAll("mjx-container")) {
      const math = container.querySelector(":scope > mjx-math");
      if (!math) continue;
      const display = container.getAttribute("display") === "true";
      const box = display ? (container.closest(".arithmatex") || container.parentElement)
        : [...(function* () { for (let n = container.parentElement; n; n = n.parentElement) yield n; })()]
          .find((n) => getComputedStyle(n).display !== "inline") || card;
      const width = math.getBoundingClientRect().width;
      const room = display ? innerWidth(box) : innerWidth(box);
      if (width > room + 1) {
        report(side, "formula", `${display ? "formula" : "inline formula"} ${px(width)} px wide in a ${px(room)} px box`,
          { needle: (tex.get(container) || "").trim(), width, box: room });
      }
    }
    // Code: the longest line against the code box.
    for (const block of side.root.querySelectorAll(".codehilite")) {
      const pre = block.querySelector("pre") || block;
      if (pre.scrollWidth > pre.clientWidth + 1) {
        const lines = pre.textContent.split("\n");
        const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
        report(side, "code", `code ${px(pre.scrollWidth)} px wide in a ${px(pre.clientWidth)} px box`,
          { needle: longest.trim(), width: pre.scrollWidth, box: pre.clientWidth });
      }
    }
    for (const table of side.root.querySelectorAll("table")) {
      if (table.scrollWidth > table.clientWidth + 1) {
        report(side, "table", `table ${px(table.scrollWidth)} px wide in a ${px(table.clientWidth)} px box`,
          { needle: text(table.querySelector("th, td") || table).slice(0, 40), width: table.scrollWidth,
            box: table.clientWidth });
      }
    }
    // A list Markdown did not see: a marker at the start of a line inside a paragraph.
    for (const paragraph of side.root.querySelectorAll("p")) {
      const walker = document.createTreeWalker(paragraph, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.parentElement.closest("mjx-container, code, pre")) continue;
        const marker = node.data.match(/\n[ \t]*([-*+]|\d+\.)[ \t]+(\S.{0,40})/);
        if (marker) {
          report(side, "list", `raw list marker "${marker[1]} " (a list glued to the text above it)`,
            { needle: marker[2].trim() });
          break;
        }
      }
    }

    // Wider than the screen: the card's content overflows it, outside any box that scrolls on its own.
    if (card.getBoundingClientRect().width > window.innerWidth + 0.5) report(side, "overflow", "card wider than the screen");
    if (card.scrollWidth > card.clientWidth + 1) {
      const edge = card.getBoundingClientRect().right;
      const culprit = [...card.querySelectorAll("*")].find((element) => {
        if (element.getBoundingClientRect().right <= edge + 1) return false;
        for (let node = element.parentElement; node && node !== card; node = node.parentElement) {
          if (scrolls(node)) return false;
        }
        return true;
      });
      report(side, "overflow", `overflows the screen by ${card.scrollWidth - card.clientWidth}px`
        + (culprit ? `: ${describe(culprit)}` : ""), { needle: culprit ? text(culprit).slice(0, 40) : "" });
    }

    for (const img of side.root.querySelectorAll("img")) {
      if (img.checkVisibility() && (!img.complete || img.naturalWidth === 0)) {
        report(side, "image", `image failed to load: ${img.getAttribute("src")}`);
      }
    }
    for (const figure of side.root.querySelectorAll(".figure")) {
      const shown = [...figure.querySelectorAll("img")].filter((img) => img.checkVisibility());
      if (shown.length !== 1 || !shown[0].classList.contains(wanted)) {
        report(side, "figure", `figure shows ${shown.map((img) => img.className).join(", ") || "nothing"}, not ${wanted}`);
      } else {
        figures.push({ ...side.host.dataset, src: shown[0].currentSrc, background: background(figure) });
      }
    }

    // Text colour against what is behind it (formulas are drawn by CSS, so check their containers too).
    const seen = new Set();
    const walker = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
    const elements = [...card.querySelectorAll("mjx-container")];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.data.trim() && !node.parentElement.closest("mjx-assistive-mml")) elements.push(node.parentElement);
    }
    for (const element of elements) {
      if (seen.has(element) || !element.checkVisibility({ visibilityProperty: true })) continue;
      seen.add(element);
      const behind = background(element);
      const ink = over(rgba(getComputedStyle(element).color), behind);
      const ratio = contrast(ink, behind);
      if (ratio < 4.5) {   // WCAG AA for normal-size text
        report(side, "contrast", `contrast ${ratio.toFixed(2)} < 4.5 (rgb(${ink.slice(0, 3)}) on `
          + `rgb(${behind.slice(0, 3)})): ${describe(element)}`, { needle: text(element).slice(0, 40) });
      }
    }

  }
  // The answer's height with the Extra closed, as a review shows it (the <details> starts closed).
  for (const side of preview.sides) for (const details of side.root.querySelectorAll("details")) details.open = false;
  for (const side of preview.sides) {
    if (side.host.dataset.face === "back") {
      heights.push({ ...side.host.dataset, height: side.body.getBoundingClientRect().height });
    }
  }
  return { problems, figures, heights, screen: window.innerHeight };
}
