// fanout dashboard: live updates, log following, cell selection, the start page's preview.
// Plain JavaScript (no framework, nothing fetched from elsewhere): docs/decisions/0005.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  // A live page asks for itself again this long after its last request began (slower only
  // when the server takes longer to answer).
  const LIVE_MS = 1000;

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body),
    });
  }

  // Pages of running runs refresh their main part in place, without a reload, until the
  // page says the run (or item) has ended.
  function live(previous) {
    const main = document.getElementById("live");
    if (!main || !main.dataset.live) return;
    const wait = previous === undefined ? LIVE_MS
      : Math.max(0, LIVE_MS - (performance.now() - previous));
    setTimeout(async function tick() {
      const began = performance.now();
      try {
        const response = await fetch(location.href, {credentials: "same-origin"});
        if (response.ok) {
          const doc = new DOMParser().parseFromString(await response.text(), "text/html");
          const fresh = doc.getElementById("live");
          if (fresh) {
            const opened = new Set([...main.querySelectorAll("details[open] pre[data-log]")]
              .map((p) => p.dataset.log));
            main.replaceWith(fresh);
            fresh.querySelectorAll("details pre[data-log]").forEach((p) => {
              if (opened.has(p.dataset.log)) p.parentElement.open = true;
            });
            setup(fresh, began);
            return;  // setup() starts the next tick when the page is still live
          }
        }
      } catch (e) { /* the server may be restarting: try again */ }
      setTimeout(tick, LIVE_MS);
    }, wait);
  }

  // The timeline is fetched after the grid is up (it can be large).
  async function timeline(root) {
    const box = root.querySelector("#timeline[data-src]");
    if (!box) return;
    const response = await fetch(box.dataset.src, {credentials: "same-origin"});
    if (response.ok) {
      const doc = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
      box.replaceChildren(document.importNode(doc.documentElement, true));
    } else {
      box.textContent = "timeline unavailable";
    }
  }

  // Each attempt's log; a running attempt's log is followed until it stops.
  function logs(root) {
    root.querySelectorAll("pre[data-log]").forEach((pre) => {
      let timer = null;
      async function load() {
        const response = await fetch(pre.dataset.log, {credentials: "same-origin"});
        if (!response.ok) { pre.textContent = "log unavailable"; return; }
        const data = await response.json();
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent = data.lines.length ? data.lines.join("\n") : "(no output yet)";
        if (atEnd) pre.scrollTop = pre.scrollHeight;
        if (pre.dataset.follow && data.running && pre.isConnected) timer = setTimeout(load, 1000);
      }
      load();
      return timer;
    });
  }

  // On a finished run's page, "select cells" turns clicks into a selection to rerun.
  function selection(root) {
    const toggle = root.querySelector("#select-mode");
    const grid = root.querySelector("#grid");
    const form = root.querySelector("#rerun-selected-form");
    if (!grid) return;
    // A click on a cell opens its item (one listener for every cell).
    grid.addEventListener("click", (event) => {
      const cell = event.target.closest("a[data-index]");
      if (!cell || (toggle && toggle.checked)) return;
      event.preventDefault();
      location.href = grid.dataset.items + cell.dataset.index;
    });
    if (!toggle || !form) return;
    const chosen = new Set();
    function show() {
      form.hidden = chosen.size === 0;
      form.querySelector("span").textContent = String(chosen.size);
      form.querySelector('input[name="indexes"]').value = [...chosen].join(",");
    }
    grid.addEventListener("click", (event) => {
      const cell = event.target.closest("a[data-index]");
      if (!cell || !toggle || !toggle.checked) return;
      event.preventDefault();
      const index = cell.dataset.index;
      if (chosen.has(index)) { chosen.delete(index); cell.classList.remove("chosen"); }
      else { chosen.add(index); cell.classList.add("chosen"); }
      show();
    });
  }

  function confirms(root) {
    root.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  // The start page: the spec's expansion as it is typed (POST /api/expand).
  function preview(root) {
    const spec = root.querySelector("#spec");
    const box = root.querySelector("#preview");
    const job = root.querySelector("#job");
    if (!spec || !box) return;
    let timer = null;
    let asked = 0;
    function el(tag, text, cls) {
      const node = document.createElement(tag);
      if (text !== undefined) node.textContent = text;
      if (cls) node.className = cls;
      return node;
    }
    function params(p) {
      return Object.entries(p).map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v))).join(", ");
    }
    function render(data) {
      const out = [];
      if (data.problems.length) {
        const head = el("p", "The spec would be rejected:", "bad"); head.id = "preview-status";
        const list = el("ul", undefined, "problems"); list.id = "problems";
        for (const p of data.problems) {
          const li = el("li"); li.append(el("code", p.field, "field"), " " + p.message);
          list.append(li);
        }
        out.push(head, list);
      } else {
        const head = el("p", undefined, "good"); head.id = "preview-status";
        if (data.count === null) head.textContent = data.note;
        else {
          const b = el("b", String(data.count)); b.id = "count";
          head.append(b, data.count === 1 ? " item" : " items");
        }
        out.push(head);
        if (data.items.length) {
          const table = el("table", undefined, "preview-items");
          const thead = el("thead"); const tr = el("tr");
          tr.append(el("th", "#"), el("th", "params"), el("th", "command"));
          thead.append(tr);
          const body = el("tbody");
          for (const i of data.items) {
            const row = el("tr"); const cmd = el("td"); cmd.append(el("code", i.command.join(" ")));
            row.append(el("td", String(i.index)), el("td", params(i.params)), cmd);
            body.append(row);
          }
          table.append(thead, body);
          out.push(table);
        }
      }
      box.replaceChildren(...out);
    }
    async function ask() {
      const mine = ++asked;
      const response = await post("/api/expand", {spec: spec.value});
      if (mine !== asked || !response.ok) return;  // a newer question is on its way
      render(await response.json());
    }
    spec.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(ask, 250); });
    if (job) {
      job.addEventListener("change", () => {
        try {
          const doc = JSON.parse(spec.value);
          doc.job = job.value;
          spec.value = JSON.stringify(doc, null, 2);
        } catch (e) { /* leave a spec being typed alone */ }
        ask();
      });
      try { const doc = JSON.parse(spec.value); if (doc.job) job.value = doc.job; } catch (e) {}
    }
  }

  function setup(root, refreshed) {
    // The timeline waits for the page's first paint: a large run's grid shows first.
    requestAnimationFrame(() => setTimeout(() => timeline(root), 0));
    logs(root);
    selection(root);
    confirms(root);
    preview(root);
    live(refreshed);
  }

  setup(document);
})();
