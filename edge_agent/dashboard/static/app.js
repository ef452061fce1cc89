// edge-agent dashboard page: floor plan + fleet heatmap on a canvas, per-forklift and per-zone
// tables, live refresh by polling /api/version. Plain JS, no build step, no network beyond /api.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const PAD_PX = 12;            // margin around the plan on the canvas
  const MAX_MAP_HEIGHT_VH = 0.7; // keep the tables reachable on a tablet
  const RAMP = [[255, 237, 160], [254, 178, 76], [240, 59, 32], [189, 0, 38]];

  const state = {
    sites: [], site: null, shifts: ["06:00", "14:00", "22:00"], pollS: 2,
    range: "shift", metric: "dwell", custom: null, from: null, to: null,
    version: -1, util: null, heat: null, view: null, refreshing: false, loads: 0,
  };

  // --- API ----------------------------------------------------------------------------------
  async function api(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined) q.set(k, v);
    const res = await fetch(path + (q.toString() ? "?" + q : ""), { cache: "no-store" });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    return body;
  }

  function siteInfo() { return state.sites.find((s) => s.site === state.site) || null; }

  // --- time ranges ---------------------------------------------------------------------------
  // "Now" is the newest data of the site (its last window end), so a replayed or delayed fleet
  // still shows its last hour; live, this is within a window length of the wall clock.
  function dataNow() {
    const s = siteInfo();
    return s && s.last_end ? s.last_end : Date.now() / 1000;
  }

  function shiftRange(now) {
    const d = new Date(now * 1000);
    const starts = [];
    for (const dayOffset of [-1, 0, 1]) {
      for (const hm of state.shifts) {
        const [h, m] = hm.split(":").map(Number);
        const t = new Date(d.getFullYear(), d.getMonth(), d.getDate() + dayOffset, h, m, 0);
        starts.push(t.getTime() / 1000);
      }
    }
    starts.sort((a, b) => a - b);
    let i = 0;
    while (i + 1 < starts.length && starts[i + 1] <= now) i++;
    return [starts[i], starts[i + 1]];
  }

  function computeRange() {
    const now = dataNow();
    if (state.range === "hour") return [now - 3600, now];
    if (state.range === "shift") return shiftRange(now);
    if (state.range === "custom" && state.custom) return state.custom;
    return [null, null];
  }

  function fmtTime(t) {
    if (t === null || t === undefined) return "–";
    const d = new Date(t * 1000);
    return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function toLocalInput(t) {
    const d = new Date(t * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  // --- loading -------------------------------------------------------------------------------
  async function loadSites() {
    const body = await api("/api/sites");
    state.sites = body.sites;
    state.shifts = body.shifts;
    state.pollS = body.poll_s;
    const sel = $("site");
    const names = state.sites.map((s) => s.site);
    if (sel.options.length !== names.length || [...sel.options].some((o, i) => o.value !== names[i])) {
      sel.innerHTML = "";
      for (const n of names) sel.add(new Option(n, n));
    }
    const wanted = new URLSearchParams(location.search).get("site");
    if (!state.site || !names.includes(state.site)) {
      state.site = names.includes(wanted) ? wanted : names[0] || null;
    }
    if (state.site) sel.value = state.site;
  }

  async function refresh() {
    if (state.refreshing) { state.again = true; return; }
    state.refreshing = true;
    try {
      await loadSites();
      if (!state.site) { setStatus("No data yet: waiting for the first agent window…"); return; }
      const [from, to] = computeRange();
      state.from = from; state.to = to;
      const q = { site: state.site, from: from, to: to };
      const [util, heat] = await Promise.all([api("/api/utilisation", q), api("/api/heatmap", q)]);
      state.util = util; state.heat = heat;
      syncUrl();
      renderTables(); renderMap();
      $("range-label").textContent = (from === null ? "· all data" : `· ${fmtTime(from)} – ${fmtTime(to)}`) +
        (heat.other_grid_windows ? ` · ${heat.other_grid_windows} windows on another grid not drawn` : "");
      state.loads++;
      setStatus(`Live · ${util.totals.windows} windows in range · updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      setStatus("Error: " + e.message, true);
    } finally {
      state.refreshing = false;
      if (state.again) { state.again = false; refresh(); }
    }
  }

  async function poll() {
    try {
      const v = (await api("/api/version")).version;
      if (v !== state.version) { state.version = v; await refresh(); }
    } catch (e) {
      setStatus("Connection lost, retrying…", true);
    }
    setTimeout(poll, state.pollS * 1000);
  }

  function setStatus(text, error) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", !!error);
  }

  // --- tables --------------------------------------------------------------------------------
  const hours = (s) => (s / 3600).toFixed(2);
  const AGENT_COLS = [
    ["agent", "Forklift", (a) => a.agent],
    ["status", "Status", (a) => a.status],
    ["last_seen", "Last seen", (a) => fmtTime(a.last_seen)],
    ["moving_s", "Moving h", (a) => hours(a.moving_s)],
    ["idle_s", "Idle h", (a) => hours(a.idle_s)],
    ["no_position_s", "No position h", (a) => hours(a.no_position_s)],
    ["utilisation_pct", "Utilisation", (a) => a.utilisation_pct === null ? "–" : a.utilisation_pct.toFixed(1) + " %"],
    ["distance_m", "Distance km", (a) => (a.distance_m / 1000).toFixed(2)],
    ["windows", "Windows", (a) => String(a.windows)],
  ];
  const ZONE_COLS = [
    ["zone", "Zone", (z) => z.zone],
    ["dwell_s", "Dwell h", (z) => hours(z.dwell_s)],
    ["moving_s", "Moving h", (z) => hours(z.moving_s)],
    ["idle_s", "Idle h", (z) => hours(z.idle_s)],
    ["share_pct", "Share of dwell", (z) => z.share_pct === null ? "–" : z.share_pct.toFixed(1) + " %"],
  ];

  function fillBody(tbody, rows, cols, rowKey) {
    tbody.innerHTML = "";
    for (const r of rows) {
      const tr = tbody.insertRow();
      tr.dataset[rowKey] = r[rowKey];
      for (const [key, , fmt] of cols) {
        const td = tr.insertCell();
        td.dataset.key = key;
        const v = r[key];
        td.dataset.value = v === null || v === undefined ? "" : String(v);
        if (key === "status") {
          const b = document.createElement("span");
          b.className = "badge " + (["online", "offline"].includes(v) ? v : "unknown");
          b.textContent = v;
          td.appendChild(b);
        } else {
          td.textContent = fmt(r);
        }
      }
    }
  }

  function zoneRows() {
    const zones = state.util ? state.util.zones : [];
    const total = zones.reduce((s, z) => s + z.dwell_s, 0);
    return zones.map((z) => Object.assign({}, z, { share_pct: total > 0 ? 100 * z.dwell_s / total : null }));
  }

  function renderTables() {
    const u = state.util;
    fillBody($("agents").tBodies[0], u.agents, AGENT_COLS, "agent");
    const t = u.totals;
    const covered = t.dwell_s + t.no_position_s;
    const foot = $("agents").tFoot;
    foot.innerHTML = "";
    fillBody(foot, [Object.assign({ agent: "Fleet", status: "", last_seen: null,
      utilisation_pct: covered > 0 ? 100 * t.moving_s / covered : null }, t)], AGENT_COLS, "agent");
    foot.rows[0].cells[1].textContent = "";
    fillBody($("zones").tBodies[0], zoneRows(), ZONE_COLS, "zone");
  }

  function csv(rows, cols, extra) {
    const keys = cols.map((c) => c[0]).concat(extra || []);
    const esc = (v) => {
      const s = v === null || v === undefined ? "" : String(v);
      return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    };
    const meta = `# site=${state.site} from=${state.from ?? ""} to=${state.to ?? ""}`;
    return [meta, keys.join(",")].concat(rows.map((r) => keys.map((k) => esc(r[k])).join(","))).join("\n") + "\n";
  }

  function download(name, href) {
    const a = document.createElement("a");
    a.href = href; a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
  }

  function downloadText(name, text) {
    const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    download(name, url);
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // --- map -----------------------------------------------------------------------------------
  function worldBounds() {
    const s = siteInfo();
    if (s && s.plan) return s.plan.bounds;
    const g = state.heat && state.heat.grid;
    if (g) return { xmin: g.x0, ymin: g.y0, xmax: g.x0 + g.nx * g.cell_m, ymax: g.y0 + g.ny * g.cell_m };
    return { xmin: 0, ymin: 0, xmax: 100, ymax: 60 };
  }

  function ramp(f) {
    const x = Math.max(0, Math.min(1, f)) * (RAMP.length - 1);
    const i = Math.min(RAMP.length - 2, Math.floor(x));
    const t = x - i;
    const c = RAMP[i].map((a, k) => Math.round(a + (RAMP[i + 1][k] - a) * t));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  function renderMap() {
    const canvas = $("map");
    const b = worldBounds();
    const wM = b.xmax - b.xmin, hM = b.ymax - b.ymin;
    const cssW = canvas.clientWidth || 800;
    const maxH = Math.max(240, window.innerHeight * MAX_MAP_HEIGHT_VH);
    let scale = (cssW - 2 * PAD_PX) / wM;
    if (hM * scale + 2 * PAD_PX > maxH) scale = (maxH - 2 * PAD_PX) / hM;
    const cssH = Math.round(hM * scale + 2 * PAD_PX);
    const dpr = window.devicePixelRatio || 1;
    canvas.style.height = cssH + "px";
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const view = { xmin: b.xmin, ymax: b.ymax, scale: scale, pad: PAD_PX, dpr: dpr };
    state.view = view;
    const px = (x) => PAD_PX + (x - b.xmin) * scale;
    const py = (y) => PAD_PX + (b.ymax - y) * scale;

    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, cssW, cssH);
    ctx.strokeStyle = "#9aa3ae"; ctx.lineWidth = 1;
    ctx.strokeRect(px(b.xmin), py(b.ymax), wM * scale, hM * scale);

    const plan = siteInfo() && siteInfo().plan;
    if (plan) {
      for (const z of plan.zones || []) {
        ctx.beginPath();
        z.polygon.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
        ctx.closePath();
        ctx.fillStyle = z.indoor ? "#eef2f8" : "#eef6ec";
        ctx.fill();
        ctx.strokeStyle = "#8792a2"; ctx.lineWidth = 1.5; ctx.stroke();
      }
      ctx.strokeStyle = "#dde1e6"; ctx.lineCap = "round";
      for (const a of plan.aisles || []) {
        ctx.lineWidth = Math.max(2, a.width_m * scale);
        ctx.beginPath(); ctx.moveTo(px(a.from[0]), py(a.from[1])); ctx.lineTo(px(a.to[0]), py(a.to[1]));
        ctx.stroke();
      }
    }

    const heat = state.heat;
    let vmax = 0;
    const col = state.metric === "moving" ? 3 : 2;
    if (heat && heat.grid) {
      for (const c of heat.cells) vmax = Math.max(vmax, c[col]);
      const g = heat.grid;
      for (const c of heat.cells) {
        const v = c[col];
        if (v <= 0) continue;
        const x0 = g.x0 + c[0] * g.cell_m, y1 = g.y0 + (c[1] + 1) * g.cell_m;
        ctx.fillStyle = ramp(Math.sqrt(v / vmax));  // sqrt: short visits stay visible
        ctx.fillRect(px(x0), py(y1), g.cell_m * scale, g.cell_m * scale);
      }
    }
    $("legend-max").textContent = vmax > 0 ? `${(vmax / 60).toFixed(1)} min ${state.metric} per cell` : "no data in range";

    if (plan) {
      // Aisle centre lines over the heat: where the plan says trucks drive.
      ctx.strokeStyle = "rgba(60, 70, 85, 0.45)"; ctx.lineWidth = 1; ctx.setLineDash([4, 4]);
      for (const a of plan.aisles || []) {
        ctx.beginPath(); ctx.moveTo(px(a.from[0]), py(a.from[1])); ctx.lineTo(px(a.to[0]), py(a.to[1]));
        ctx.stroke();
      }
      ctx.setLineDash([]);
      ctx.fillStyle = "#2b3440"; ctx.font = "13px system-ui, sans-serif"; ctx.textBaseline = "top";
      for (const z of plan.zones || []) {
        const xs = z.polygon.map((p) => p[0]), ys = z.polygon.map((p) => p[1]);
        ctx.fillText(z.name, px(Math.min(...xs)) + 4, py(Math.max(...ys)) + 4);
      }
      for (const ap of plan.wifi_aps || []) {
        const x = px(ap.x), y = py(ap.y);
        ctx.beginPath(); ctx.moveTo(x, y - 6); ctx.lineTo(x + 5, y + 4); ctx.lineTo(x - 5, y + 4); ctx.closePath();
        ctx.fillStyle = "#1f5fbf"; ctx.fill();
      }
      for (const bc of plan.ble_beacons || []) {
        ctx.beginPath(); ctx.arc(px(bc.x), py(bc.y), 3.5, 0, 2 * Math.PI);
        ctx.fillStyle = "#6a3fb5"; ctx.fill();
      }
    }
    // Scale bar: a round number of metres near a fifth of the width.
    const target = wM / 5, pow = Math.pow(10, Math.floor(Math.log10(target)));
    const bar = [1, 2, 5, 10].map((k) => k * pow).filter((v) => v <= target).pop() || pow;
    ctx.strokeStyle = "#2b3440"; ctx.lineWidth = 2; ctx.beginPath();
    ctx.moveTo(px(b.xmin) + 8, py(b.ymin) - 10); ctx.lineTo(px(b.xmin) + 8 + bar * scale, py(b.ymin) - 10);
    ctx.stroke();
    ctx.fillStyle = "#2b3440"; ctx.textBaseline = "bottom";
    ctx.fillText(`${bar} m`, px(b.xmin) + 8, py(b.ymin) - 12);
  }

  // --- wiring --------------------------------------------------------------------------------
  function selectIn(groupId, attr, value) {
    for (const btn of $(groupId).querySelectorAll("button")) btn.classList.toggle("on", btn.dataset[attr] === value);
  }

  $("range").addEventListener("click", (ev) => {
    const r = ev.target.dataset && ev.target.dataset.range;
    if (!r) return;
    state.range = r;
    selectIn("range", "range", r);
    $("custom").hidden = r !== "custom";
    if (r === "custom") {
      const [f, t] = state.custom || [dataNow() - 3600, dataNow()];
      $("from").value = toLocalInput(f); $("to").value = toLocalInput(t);
      if (!state.custom) return;
    }
    refresh();
  });
  $("apply").addEventListener("click", () => {
    const f = new Date($("from").value).getTime() / 1000, t = new Date($("to").value).getTime() / 1000;
    if (!isFinite(f) || !isFinite(t) || t <= f) { setStatus("Custom range: 'To' must be after 'From'", true); return; }
    state.custom = [f, t];
    refresh();
  });
  $("metric").addEventListener("click", (ev) => {
    const m = ev.target.dataset && ev.target.dataset.metric;
    if (!m) return;
    state.metric = m; selectIn("metric", "metric", m); renderMap();
  });
  $("site").addEventListener("change", (ev) => { state.site = ev.target.value; refresh(); });
  $("png").addEventListener("click", () => download(`heatmap-${state.site}.png`, $("map").toDataURL("image/png")));
  $("csv-agents").addEventListener("click", () => state.util && downloadText(`forklifts-${state.site}.csv`,
    csv(state.util.agents, AGENT_COLS, ["dwell_s"])));
  $("csv-zones").addEventListener("click", () => state.util && downloadText(`zones-${state.site}.csv`,
    csv(zoneRows(), ZONE_COLS)));
  let resizeTimer = null;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => state.heat && renderMap(), 150); });

  // The URL keeps the site and range (?site=plant-a&range=hour): a supervisor can bookmark a view.
  function syncUrl() {
    const q = new URLSearchParams(location.search);
    if (state.site) q.set("site", state.site);
    q.set("range", state.range);
    history.replaceState(null, "", "?" + q.toString());
  }
  const wantedRange = new URLSearchParams(location.search).get("range");
  if (["hour", "shift", "all"].includes(wantedRange)) state.range = wantedRange;
  selectIn("range", "range", state.range);

  // For tests and the curious: the state and the map transform (canvas px = (pad + (x - xmin) *
  // scale) * dpr, (pad + (ymax - y) * scale) * dpr).
  window.dashboard = { state: state, refresh: refresh };
  poll();
})();
