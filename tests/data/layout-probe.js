// Measures the page it is injected into and posts the result to its parent frame (test_html_browser.py).
// Runs inside an iframe of the width under test, because headless Chromium will not make a window narrower
// than 500 px.
(function () {
  var vw = document.documentElement.clientWidth;
  var out = {
    viewport: vw, scroll_width: document.documentElement.scrollWidth, overflowing: [], charts: [],
    min_chart_text_px: null, clipped_chart_text: [], printed_twice: [], extra_rows_in_print: null,
    scrolling_tables: []
  };
  function scrolls(el) {
    for (var p = el.parentElement; p; p = p.parentElement) {
      var ox = getComputedStyle(p).overflowX;
      if (ox === "auto" || ox === "scroll" || ox === "hidden") return true;
    }
    return false;
  }
  document.querySelectorAll("body *").forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width && r.right > vw + 0.5 && !scrolls(el)) {
      out.overflowing.push(el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + " right=" + Math.round(r.right));
    }
  });
  // A table that scrolls within itself (GitHub shows Markdown tables as display:block with overflow:auto).
  document.querySelectorAll("table").forEach(function (t) {
    if (t.scrollWidth > t.clientWidth + 1) out.scrolling_tables.push(t.scrollWidth);
  });
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    out.charts.push(svg.getAttribute("data-chart"));
    var box = svg.viewBox.baseVal;
    svg.querySelectorAll("text").forEach(function (t) {
      var px = parseFloat(getComputedStyle(t).fontSize) * svg.getScreenCTM().a;
      if (out.min_chart_text_px === null || px < out.min_chart_text_px) out.min_chart_text_px = px;
      var b = t.getBBox();
      // 2 px of slack: a glyph's side bearing may reach past the text's own position
      if (b.x < box.x - 2 || b.x + b.width > box.x + box.width + 2) out.clipped_chart_text.push(t.textContent);
    });
  });
  // The print style sheet: which links would print their address after their text, and are hidden rows shown.
  var printRules = [];
  for (var i = 0; i < document.styleSheets.length; i++) {
    var rules = document.styleSheets[i].cssRules;
    for (var j = 0; j < rules.length; j++) {
      if (rules[j].media && rules[j].media.mediaText.indexOf("print") !== -1) {
        for (var k = 0; k < rules[j].cssRules.length; k++) printRules.push(rules[j].cssRules[k]);
      }
    }
  }
  printRules.forEach(function (rule) {
    var sel = rule.selectorText || "";
    if (sel.indexOf("::after") !== -1 && rule.style.content.indexOf("attr(href)") !== -1) {
      document.querySelectorAll(sel.replace("::after", "")).forEach(function (a) {
        var text = a.textContent.trim(), href = a.getAttribute("href");
        if (text === href || href.charAt(0) === "#") out.printed_twice.push(href);
      });
    }
    if (sel === "tr.extra") out.extra_rows_in_print = rule.style.display;
  });
  parent.postMessage(JSON.stringify(out), "*");
})();
