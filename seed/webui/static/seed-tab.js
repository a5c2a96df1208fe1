/* kanta-seed "Seeding" tab for Locust's React web UI.
 * Plain JS, no build step, no network besides our own JSON endpoint.
 * Strategy: Locust's extended tab (registered via template_args.extended_tabs) renders an
 * empty panel. We keep ONE persistent <section> in memory and attach it into Locust's tab
 * container whenever our tab is selected, detach it otherwise. React never owns it, so React
 * re-renders cannot wipe it; a MutationObserver re-attaches it whenever React rebuilds the tabs.
 */
(() => {
  'use strict';
  if (window.__kantaSeedTab) return; // injected twice? keep the first instance
  window.__kantaSeedTab = true;

  const me = document.currentScript;
  const TAB_TITLE = (me && me.dataset.tabTitle) || 'Seeding';
  const POLL_MS = 1500;
  const ENDPOINT = new URL('kanta-seed/progress.json', window.location.href); // relative: --web-base-path safe
  const SVGNS = 'http://www.w3.org/2000/svg';
  const CH = { w: 800, h: 300, l: 44, r: 12, t: 12, b: 28 }; // chart viewBox + padding
  const SERIES = [
    { key: 'started', label: 'Started', cls: 'ks-l-started' },
    { key: 'done', label: 'Done', cls: 'ks-l-done' },
    { key: 'failed', label: 'Failed', cls: 'ks-l-failed' },
  ];

  const el = (tag, attrs = {}, parent) => {
    const n = tag.startsWith('svg:') ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'text') n.textContent = v;
      else n.setAttribute(k, v);
    }
    if (parent) parent.appendChild(n);
    return n;
  };

  /* ---------- persistent view (built once) ---------- */
  const root = el('section', { class: 'ks-root', 'data-kanta-seed': '', 'aria-label': 'Seeding progress' });
  const head = el('div', { class: 'ks-head' }, root);
  el('h2', { class: 'ks-title', text: 'Seeding' }, head);
  const summary = el('div', { class: 'ks-summary', 'aria-live': 'polite' }, head);
  const status = el('div', { class: 'ks-status', 'data-ok': 'true', text: 'Waiting for data…' }, head);

  const bar = el('div', {
    class: 'ks-progress', role: 'progressbar', 'aria-label': 'Images seeded',
    'aria-valuemin': '0', 'aria-valuemax': '0', 'aria-valuenow': '0',
  }, root);
  const barDone = el('div', { class: 'ks-bar ks-bar-done' }, bar);
  const barFailed = el('div', { class: 'ks-bar ks-bar-failed' }, bar);
  const barLabel = el('div', { class: 'ks-bar-label' }, bar);

  const body = el('div', { class: 'ks-body' }, root);
  const chartCard = el('figure', { class: 'ks-card ks-chart' }, body);
  const legend = el('figcaption', { class: 'ks-legend' }, chartCard);
  for (const s of SERIES) {
    const item = el('span', { class: 'ks-legend-item ' + s.cls }, legend);
    el('i', {}, item);
    item.append(s.label + ' ');
    s.legendValue = el('b', { text: '0' }, item);
  }
  const svg = el('svg:svg', {
    viewBox: `0 0 ${CH.w} ${CH.h}`, class: 'ks-svg', role: 'img',
    'aria-label': 'Cumulative started, done and failed images over time',
  }, chartCard);
  const gridG = el('svg:g', { class: 'ks-grid-lines' }, svg);
  const axisG = el('svg:g', { class: 'ks-axis' }, svg);
  for (const s of SERIES) s.line = el('svg:polyline', { class: 'ks-line ' + s.cls, points: '' }, svg);

  const tilesCard = el('div', { class: 'ks-card ks-tiles-card' }, body);
  const grid = el('div', { class: 'ks-tiles', role: 'group', 'aria-label': 'Images' }, tilesCard);
  const details = el('div', { class: 'ks-details', 'aria-live': 'polite' }, root);
  const tip = el('div', { class: 'ks-tip', role: 'tooltip', hidden: '' }, root);

  let data = null;
  let selected = null;
  const tiles = new Map(); // image id -> {node, img, row}

  const fmtBytes = (b) => (b >= 1024 ? (b / 1024).toFixed(1) + ' KiB' : b + ' B');
  const describe = (row) =>
    `${row.id} — ${row.state}` + (row.bytes ? `, ${fmtBytes(row.bytes)}` : '') + (row.error ? ` — ${row.error}` : '');

  function renderTiles(images) {
    const ids = images.map((r) => r.id).join('|');
    if (ids !== grid.dataset.ids) { // image set changed: rebuild once
      grid.textContent = '';
      tiles.clear();
      for (const row of images) {
        const node = el('button', { type: 'button', class: 'ks-tile', 'data-image': row.id }, grid);
        tiles.set(row.id, { node, img: null, row });
      }
      grid.dataset.ids = ids;
    }
    for (const row of images) {
      const t = tiles.get(row.id);
      t.row = row;
      if (t.node.dataset.state !== row.state) t.node.dataset.state = row.state;
      t.node.setAttribute('aria-label', describe(row));
      if (row.thumb && !t.img) {
        t.img = el('img', { alt: '', loading: 'lazy', decoding: 'async', draggable: 'false',
                            src: new URL(row.thumb, window.location.href).href }, t.node);
      }
    }
    renderDetails();
  }

  function renderDetails() {
    const row = selected && tiles.get(selected) ? tiles.get(selected).row : null;
    for (const [id, t] of tiles) t.node.toggleAttribute('aria-pressed', id === selected);
    details.textContent = row ? describe(row) : 'Hover or click a tile for details.';
    details.dataset.state = row ? row.state : '';
  }

  function renderChart(d) {
    const total = Math.max(1, d.total);
    const tMax = Math.max(60, Math.ceil((d.elapsed || 0) / 30) * 30);
    const iw = CH.w - CH.l - CH.r, ih = CH.h - CH.t - CH.b;
    const x = (t) => (CH.l + (t / tMax) * iw).toFixed(1);
    const y = (v) => (CH.t + ih - (v / total) * ih).toFixed(1);
    const key = `${total}/${tMax}`;
    if (svg.dataset.scale !== key) { // axes only change when the scale changes
      svg.dataset.scale = key;
      gridG.textContent = '';
      axisG.textContent = '';
      for (const f of [0, 0.25, 0.5, 0.75, 1]) {
        const yy = y(f * total);
        el('svg:line', { x1: CH.l, x2: CH.w - CH.r, y1: yy, y2: yy }, gridG);
        el('svg:text', { x: CH.l - 6, y: yy, 'text-anchor': 'end', 'dominant-baseline': 'middle',
                         text: String(Math.round(f * total)) }, axisG);
      }
      for (let i = 0; i <= 6; i++) {
        const tt = (tMax / 6) * i;
        el('svg:text', { x: x(tt), y: CH.h - 8, 'text-anchor': 'middle', text: `${Math.round(tt)}s` }, axisG);
      }
    }
    const idx = Object.fromEntries(d.series_fields.map((f, i) => [f, i]));
    for (const s of SERIES) {
      s.line.setAttribute('points', d.series.map((p) => `${x(p[idx.t])},${y(p[idx[s.key]])}`).join(' '));
      s.legendValue.textContent = String(d[s.key]);
    }
  }

  function render() {
    if (!data) return;
    const d = data;
    const finished = d.done + d.failed;
    bar.setAttribute('aria-valuemax', String(d.total));
    bar.setAttribute('aria-valuenow', String(finished));
    bar.setAttribute('aria-valuetext', `${finished} of ${d.total} images processed`);
    barDone.style.width = `${(100 * d.done) / Math.max(1, d.total)}%`;
    barFailed.style.width = `${(100 * d.failed) / Math.max(1, d.total)}%`;
    barLabel.textContent = `${Math.round((100 * finished) / Math.max(1, d.total))}%`;
    summary.textContent = `${d.done} done · ${d.failed} failed · ${d.started - finished} uploading · ${d.total - d.started} queued`;
    renderChart(d);
    renderTiles(d.images);
  }

  /* ---------- interactions (delegated, on the persistent root) ---------- */
  root.addEventListener('click', (ev) => {
    const t = ev.target.closest('.ks-tile');
    if (!t) return;
    selected = selected === t.dataset.image ? null : t.dataset.image;
    renderDetails();
  });
  const showTip = (t) => {
    const r = tiles.get(t.dataset.image);
    if (!r) return;
    tip.textContent = describe(r.row);
    const rb = root.getBoundingClientRect(), tb = t.getBoundingClientRect();
    tip.style.left = `${Math.min(tb.left - rb.left, rb.width - 260)}px`;
    tip.style.top = `${tb.bottom - rb.top + 6}px`;
    tip.hidden = false;
  };
  root.addEventListener('mouseover', (ev) => { const t = ev.target.closest('.ks-tile'); if (t) showTip(t); });
  root.addEventListener('focusin', (ev) => { const t = ev.target.closest('.ks-tile'); if (t) showTip(t); });
  root.addEventListener('mouseout', (ev) => { if (!ev.relatedTarget || !ev.relatedTarget.closest('.ks-tile')) tip.hidden = true; });
  root.addEventListener('focusout', () => { tip.hidden = true; });

  /* ---------- mounting: follow Locust's React tree ---------- */
  let active = false;

  function ourTab() {
    for (const t of document.querySelectorAll('#root [role="tab"]')) {
      if (t.textContent.trim() === TAB_TITLE) return t;
    }
    return null;
  }

  function syncTheme() {
    const m = getComputedStyle(document.body).backgroundColor.match(/\d+(\.\d+)?/g);
    const lum = m ? (0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]) / 255 : 1;
    const theme = lum < 0.5 ? 'dark' : 'light';
    if (root.dataset.theme !== theme) root.dataset.theme = theme;
  }

  function sync() {
    const tab = ourTab();
    const isActive = !!tab && tab.getAttribute('aria-selected') === 'true';
    if (isActive) {
      // Locust layout: Container > Box(mb:2) > .MuiTabs-root ; the panel would follow the Box
      const anchor = tab.closest('.MuiTabs-root')?.parentElement;
      if (anchor && anchor.nextElementSibling !== root) anchor.after(root);
      syncTheme();
    } else if (root.isConnected) {
      root.remove();
      tip.hidden = true;
    }
    if (isActive && !active) { active = true; poll(); } // refresh immediately on (re)entry
    active = isActive;
  }

  let queued = false;
  const schedule = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; sync(); });
  };
  new MutationObserver((records) => {
    // ignore our own updates; react to React's (tab switches, re-renders, theme class changes)
    if (records.some((r) => !root.contains(r.target))) schedule();
  }).observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ['class', 'aria-selected'] });
  window.addEventListener('popstate', schedule);

  /* ---------- polling (only while the tab is visible) ---------- */
  let timer = null, inflight = false;
  async function poll() {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
    if (!active || document.hidden || inflight) return;
    inflight = true;
    try {
      const r = await fetch(ENDPOINT, { cache: 'no-store', credentials: 'same-origin',
                                        signal: AbortSignal.timeout(5000) });
      if (r.redirected || !r.ok) throw new Error(r.redirected ? 'login required' : `HTTP ${r.status}`);
      data = await r.json();
      status.dataset.ok = 'true';
      status.textContent = `updated ${new Date().toLocaleTimeString()}`;
      render();
    } catch (e) {
      status.dataset.ok = 'false';
      status.textContent = `no data (${e.message}); retrying`;
    } finally {
      inflight = false;
    }
  }
  document.addEventListener('visibilitychange', () => { if (!document.hidden && active) poll(); });

  renderDetails();
  schedule();
})();
