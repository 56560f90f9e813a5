"""WCAG 2.1 AA text contrast of a rendered page, measured in the browser from computed styles.

``low_contrast_text(page)`` walks every visible text node, takes its element's computed colour and the first opaque
background behind it (blending translucent layers), and returns the ones under 4.5:1 (3:1 for large text: 24 px,
or 18.66 px bold). Disabled controls and native ``<option>`` lists are exempt (WCAG 1.4.3, inactive components).
"""

from __future__ import annotations

from typing import Any

CONTRAST_JS = r"""
() => {
  const parse = (value) => {
    const m = value.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const blend = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1,
  });
  const luminance = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const backdrop = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg && bg.a > 0) { layers.push(bg); if (bg.a >= 1) break; }
    }
    let colour = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) colour = blend(layers[i], colour);
    return colour;
  };
  const describe = (el) => {
    const parts = [];
    for (let e = el; e && e !== document.body && parts.length < 4; e = e.parentElement) {
      parts.unshift(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.classList.length ? "." + [...e.classList].join(".") : ""));
    }
    return parts.join(" > ");
  };
  const seen = new Set(), failures = [];
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!el || !node.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    if (el.closest("script, style, option, :disabled, [aria-hidden=true]")) continue;
    const style = getComputedStyle(el), rect = el.getBoundingClientRect();
    if (style.visibility !== "visible" || rect.width === 0 || rect.height === 0 || parseFloat(style.opacity) === 0) continue;
    const bg = backdrop(el), fg = blend(parse(style.color), bg);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked++;
    if (ratio < needed) {
      const behind = `rgb(${Math.round(bg.r)}, ${Math.round(bg.g)}, ${Math.round(bg.b)})`;
      const text = node.textContent.trim().slice(0, 40);
      failures.push(`${describe(el)} "${text}": ${ratio.toFixed(2)}:1 < ${needed}:1 (${style.color} on ${behind})`);
    }
  }
  return {checked, failures};
}
"""


def low_contrast_text(page: Any) -> tuple[int, list[str]]:
    """(text elements checked, descriptions of those under the AA ratio) for the page as rendered now."""
    result = page.evaluate(CONTRAST_JS)
    return int(result["checked"]), list(result["failures"])
