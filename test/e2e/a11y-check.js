// Evaluated in the demo page by the browser test: WCAG contrast of the page's text against its
// effective background, for each kind of text the page shows. Returns
// [{selector, color, background, ratio}]; the test asserts the ratios. (An expression, not a
// module: page.evaluate runs it as is.)
(() => {
  const parse = (css) => {
    const match = /rgba?\(([^)]+)\)/.exec(css);
    if (match === null) return null;
    const [r, g, b, a = 1] = match[1]
      .split(/[\s,/]+/)
      .filter(Boolean)
      .map(Number);
    return { r, g, b, a };
  };
  // WCAG 2.x relative luminance of an sRGB colour.
  const luminance = ({ r, g, b }) => {
    const channel = (v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const backgroundOf = (element) => {
    for (let node = element; node !== null; node = node.parentElement) {
      const color = parse(getComputedStyle(node).backgroundColor);
      if (color !== null && color.a > 0) return color;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const selectors = [
    "h1",
    ".lead",
    ".fact dt",
    "#status",
    "#speaking",
    "#latency",
    "#latency-speech",
    "#transcript",
    "#interim",
    ".placeholder",
    "#message",
    "#hint",
    "button.primary",
    "button.danger",
    "#copy",
  ];
  return selectors.map((selector) => {
    const element = document.querySelector(selector);
    if (element === null) return { selector, missing: true };
    const fg = parse(getComputedStyle(element).color);
    const bg = backgroundOf(element);
    const [light, dark] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
    return {
      selector,
      color: getComputedStyle(element).color,
      background: `rgb(${bg.r}, ${bg.g}, ${bg.b})`,
      ratio: Math.round(((light + 0.05) / (dark + 0.05)) * 100) / 100,
    };
  });
})();
