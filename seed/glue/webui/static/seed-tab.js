/* kanta-seed's "Seeding" tab in Locust's web UI: the run as a picture.
 *
 * Plain JS, no build step, no library, no network but kanta-seed's own JSON (./kanta-seed/progress.json)
 * and the thumbnails Kanta serves. Locust's extended tab (no table) leaves its panel empty; this script
 * keeps one <section> of its own and puts it after Locust's tab bar while the "Seeding" tab is selected
 * (a MutationObserver follows React's re-renders), polls every 1.5 s while it is visible, and draws from
 * each answer afresh, so a new run (Locust's NEW) shows its own figures, never the last run's.
 *
 * What it draws: a progress bar (images at the run's end stage of all images), the stage counts, a chart
 * of the three stages over time (the backlog is the gap between the lines), one tile per image (subjects
 * x conditions for the Yale set), and the end-of-run summary with its downloads. The badge beside the
 * title says where the run is (running, stopping), then the summary's own result (pass, stopped, ...).
 *
 * Locust's start form too (wherever it opens: the first page, or NEW's dialog): kanta-seed's fields get
 * their labels (the server orders them and sends the labels as JSON in #kanta-seed-form), a head per
 * group, and one line above "Custom parameters" saying what the next START fills (./kanta-seed/target.json:
 * seed or bench, which event, what it holds now), refreshed when the form opens and, debounced, when the
 * host, event code, bench, fresh-event or loops fields change.
 */
(() => {
  'use strict';
  if (window.__kantaSeedTab) return; // injected twice? keep the first one
  window.__kantaSeedTab = true;

  const me = document.currentScript;
  const TAB_TITLE = (me && me.dataset.tabTitle) || 'Seeding';
  // The script is served from <base>/kanta-seed/static/: the JSON is beside that (--web-base-path safe).
  const HERE = new URL('../', (me && me.src) || new URL('kanta-seed/static/', window.location.href));
  const ENDPOINT = new URL('progress.json', HERE);
  const POLL_MS = 1500;
  const SVGNS = 'http://www.w3.org/2000/svg';
  // Tile states, in pipeline order, with what each means (the legend and the hover text say it).
  const STATES = [
    ['pending', 'pending', 'not sent yet'],
    ['sending', 'sending', 'upload in flight'],
    ['accepted', 'accepted', 'Kanta answered 202; not listed yet'],
    ['stored', 'stored', 'listed by Kanta (GET /pics)'],
    ['processed', 'processed', 'faces detected, or settled as faceless'],
    ['retrying', 'retrying', 'an attempt failed; it is tried again'],
    ['repaired', 'repaired', 'lost after its 202; it is sent again'],
    ['failed', 'failed', 'given up'],
  ];
  const MEANING = Object.fromEntries(STATES.map(([k, , m]) => [k, m]));
  const SERIES = [
    { key: 'accepted', i: 1, label: 'accepted (202)' },
    { key: 'stored', i: 2, label: 'stored' },
    { key: 'processed', i: 3, label: 'processed' },
  ];
  const END_INDEX = { accepted: 1, stored: 2, faces: 3 }; // chart column of the run's end stage
  const END_WORD = { accepted: 'accepted', stored: 'stored', faces: 'processed' };

  const el = (tag, attrs = {}, parent = null) => {
    const n = tag.startsWith('svg:') ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined) continue;
      if (k === 'text') n.textContent = v;
      else n.setAttribute(k, v);
    }
    if (parent) parent.appendChild(n);
    return n;
  };
  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };
  const setAttr = (node, k, v) => { if (node.getAttribute(k) !== v) node.setAttribute(k, v); };
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : 0);
  const secs = (s) => {
    if (s === null || s === undefined || !isFinite(s)) return '–';
    if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
    const m = Math.floor(s / 60), r = Math.round(s - 60 * m);
    return `${m} min ${String(r).padStart(2, '0')} s`;
  };
  const baseName = (member) => String(member).split('/').pop().replace(/\.[a-z0-9]+$/i, '');

  /* ---------- the view, built once ---------- */
  const root = el('section', { class: 'ks-root', 'data-kanta-seed': '', 'aria-label': 'Seeding progress' });

  const head = el('div', { class: 'ks-head' }, root);
  el('h2', { class: 'ks-title', text: 'Seeding' }, head);
  const runState = el('span', { class: 'ks-badge', 'data-state': 'idle', text: 'no run yet' }, head);
  const where = el('span', { class: 'ks-where' }, head);
  const status = el('span', { class: 'ks-status', 'data-ok': 'true', text: 'waiting for data…' }, head);

  // 1. the progress bar: images at the run's end stage out of all images; the stage counts beside it
  const top = el('div', { class: 'ks-top' }, root);
  const barBox = el('div', { class: 'ks-barbox' }, top);
  const headline = el('div', { class: 'ks-headline' }, barBox);
  const bigDone = el('b', { class: 'ks-big' }, headline);
  const bigText = el('span', { class: 'ks-big-text' }, headline);
  const timing = el('span', { class: 'ks-timing' }, headline);
  const bar = el('div', {
    class: 'ks-progress', role: 'progressbar', 'aria-label': 'Images done',
    'aria-valuemin': '0', 'aria-valuemax': '0', 'aria-valuenow': '0',
  }, barBox);
  const barDone = el('div', { class: 'ks-seg ks-seg-done' }, bar);
  const barPipe = el('div', { class: 'ks-seg ks-seg-pipe' }, bar);
  const barFailed = el('div', { class: 'ks-seg ks-seg-failed' }, bar);
  const barKey = el('div', { class: 'ks-barkey' }, barBox);
  const keyDone = el('span', { class: 'ks-key ks-key-done' }, barKey);
  const keyPipe = el('span', { class: 'ks-key ks-key-pipe' }, barKey);
  const keyLeft = el('span', { class: 'ks-key ks-key-left' }, barKey);
  const stats = el('div', { class: 'ks-stats' }, top);
  const stat = (key, label) => {
    const box = el('div', { class: 'ks-stat', 'data-stat': key }, stats);
    el('span', { class: 'ks-stat-label', text: label }, box);
    const value = el('b', { class: 'ks-stat-value', text: '0' }, box);
    const sub = el('span', { class: 'ks-stat-sub', text: '' }, box);
    return { box, value, sub };
  };
  const statAccepted = stat('accepted', 'accepted');
  const statStored = stat('stored', 'stored');
  const statProcessed = stat('processed', 'processed');
  const statFailed = stat('failed', 'failed');

  const body = el('div', { class: 'ks-body' }, root);

  // 2. the chart of the three stages over time
  const chartCard = el('figure', { class: 'ks-card ks-chart' }, body);
  const chartHead = el('figcaption', { class: 'ks-chart-head' }, chartCard);
  el('span', { class: 'ks-card-title', text: 'Kanta\u2019s pipeline' }, chartHead);
  el('span', { class: 'ks-card-note', text: 'images over time since the first upload' }, chartHead);
  const legend = el('div', { class: 'ks-legend' }, chartCard);
  for (const s of SERIES) {
    const item = el('span', { class: 'ks-legend-item', 'data-series': s.key }, legend);
    el('i', { 'aria-hidden': 'true' }, item);
    item.append(s.label + ' ');
    s.value = el('b', { text: '0' }, item);
  }
  const backlogKey = el('span', { class: 'ks-legend-item', 'data-series': 'backlog' }, legend);
  el('i', { 'aria-hidden': 'true' }, backlogKey);
  backlogKey.append('backlog (in Kanta\u2019s pipeline)');
  const plot = el('div', { class: 'ks-plot' }, chartCard);
  const svg = el('svg:svg', {
    class: 'ks-svg', role: 'img', viewBox: '0 0 760 360', preserveAspectRatio: 'none',
    'aria-label': 'Images accepted, stored and processed over time',
  }, plot);
  const gridG = el('svg:g', { class: 'ks-gridlines' }, svg);
  const backlogArea = el('svg:polygon', { class: 'ks-backlog', points: '' }, svg);
  const totalLine = el('svg:line', { class: 'ks-total' }, svg);
  const totalText = el('svg:text', { class: 'ks-total-text', 'text-anchor': 'start' }, svg);
  for (const s of SERIES) s.line = el('svg:polyline', { class: 'ks-line', 'data-series': s.key, points: '' }, svg);
  const axisG = el('svg:g', { class: 'ks-axis' }, svg);
  const emptyText = el('svg:text', { class: 'ks-empty', 'text-anchor': 'middle', text: 'waiting for the first upload' }, svg);
  const pace = el('div', { class: 'ks-pace' }, chartCard);
  const paceRate = el('span', { class: 'ks-pace-item' }, pace);
  const paceDone = el('span', { class: 'ks-pace-item' }, pace);
  const paceBacklog = el('span', { class: 'ks-pace-item' }, pace);
  // Kanta loads the whole event on every request: its processed rate against the event's size.
  const paceSize = el('span', { class: 'ks-pace-item', 'data-kanta-seed-by-size': '' }, pace);
  const verdict = el('div', { class: 'ks-verdict', 'data-tone': 'none', 'aria-live': 'polite' }, chartCard);

  // 3. one tile per image
  const tilesCard = el('div', { class: 'ks-card ks-tiles-card' }, body);
  const tilesHead = el('div', { class: 'ks-tiles-head' }, tilesCard);
  el('span', { class: 'ks-card-title', text: 'Images' }, tilesHead);
  const facelessKey = el('span', { class: 'ks-faceless-key' }, tilesHead);
  el('i', { 'aria-hidden': 'true' }, facelessKey);
  facelessKey.append('no face found');
  const tileLegend = el('div', { class: 'ks-tile-legend' }, tilesCard);
  const legendCount = {};
  for (const [key, label, meaning] of STATES) {
    const item = el('span', { class: 'ks-tl-item', 'data-state': key, title: meaning }, tileLegend);
    el('i', { class: 'ks-swatch', 'data-state': key, 'aria-hidden': 'true' }, item);
    item.append(label + ' ');
    legendCount[key] = el('b', { text: '0' }, item);
  }
  const grid = el('div', { class: 'ks-tiles', role: 'group', 'aria-label': 'One tile per image' }, tilesCard);
  const details = el('div', { class: 'ks-details', 'aria-live': 'polite' }, tilesCard);
  const tip = el('div', { class: 'ks-tip', role: 'tooltip', hidden: '' }, root);

  // 4. the end of the run: the summary, failures and faceless images by name, the downloads
  const result = el('section', { class: 'ks-card ks-result', 'aria-label': 'Summary', hidden: '' }, root);
  const resultHead = el('div', { class: 'ks-result-head' }, result);
  el('span', { class: 'ks-card-title', text: 'Summary' }, resultHead);
  const resultBadge = el('span', { class: 'ks-result-badge' }, resultHead);
  const resultVerdict = el('span', { class: 'ks-result-verdict' }, resultHead);
  const downloads = el('span', { class: 'ks-downloads' }, resultHead);
  el('a', { href: new URL('summary.json', HERE).href, download: '', class: 'ks-button', text: 'Download summary JSON' }, downloads);
  el('a', { href: new URL('summary.md', HERE).href, download: '', class: 'ks-button', text: 'Download summary Markdown' }, downloads);
  const resultRows = el('table', { class: 'ks-rows' }, result);
  const resultLists = el('div', { class: 'ks-lists' }, result);

  /* ---------- state ---------- */
  let doc = null;
  let selected = null; // image pinned by a click
  const tiles = new Map(); // image -> {node, img, row, r, c}
  let order = []; // images in tile order, for the arrow keys
  let gridCols = 1;

  /* ---------- 1. progress bar and counts ---------- */
  function renderTop(s) {
    const total = num(s.total), done = num(s.done), failed = num(s.failed), accepted = num(s.accepted);
    const word = END_WORD[s.end_stage] || 'done';
    const pipe = Math.max(0, accepted - done);
    const pct = (n) => `${total ? (100 * n) / total : 0}%`;
    setAttr(bar, 'aria-valuemax', String(total));
    setAttr(bar, 'aria-valuenow', String(done));
    setAttr(bar, 'aria-valuetext', `${done} of ${total} images ${word}` + (failed ? `, ${failed} failed` : ''));
    barDone.style.width = pct(done);
    barPipe.style.width = pct(pipe);
    barFailed.style.width = pct(failed);
    setText(bigDone, `${done} / ${total}`);
    setText(bigText, `images ${word}` + (total ? ` (${Math.floor((100 * done) / total)} %)` : ''));
    const eta = s.state === 'finished' ? 'ended' : s.eta_s === null || s.eta_s === undefined ? 'ETA –' : `ETA ${secs(s.eta_s)}`;
    setText(timing, `${secs(num(s.elapsed_s))} elapsed · ${eta}`);
    setText(keyDone, `${done} ${word}`);
    setText(keyPipe, `${pipe} in Kanta\u2019s pipeline`);
    setText(keyLeft, `${Math.max(0, total - accepted - failed)} not accepted yet` + (failed ? ` · ${failed} failed` : ''));

    const readBack = s.end_stage !== 'accepted';
    setText(statAccepted.value, String(accepted));
    setText(statAccepted.sub, s.in_flight ? `${s.in_flight} sending` : `of ${total}`);
    setText(statStored.value, readBack ? String(num(s.stored)) : '–');
    setText(statStored.sub, readBack ? `of ${total}` : 'not read back');
    setText(statProcessed.value, readBack ? String(num(s.processed)) : '–');
    setText(statProcessed.sub, readBack ? `of ${total}` : 'not read back');
    setText(statFailed.value, String(failed));
    const again = num(s.retrying) + num(s.doubt); // still tried, or settled by what the event holds
    setText(statFailed.sub, again ? `${again} to retry` : 'given up');
    setAttr(statFailed.box, 'title', `${failed} given up, ${num(s.retrying)} retrying, ${num(s.doubt)} in doubt`);
    statFailed.box.dataset.bad = failed ? 'true' : 'false';
  }

  /* ---------- 2. chart ---------- */
  let W = 760, H = 360;
  const PAD = { l: 46, r: 58, t: 14, b: 30 };
  const STEPS = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  const niceY = (total) => {
    const raw = total / 4;
    const p = Math.pow(10, Math.floor(Math.log10(Math.max(1, raw))));
    return [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= raw) || raw;
  };

  function renderChart(points, s) {
    const total = Math.max(1, num(s.total));
    const series = [[0, 0, 0, 0], ...(points || []).filter((p) => p[0] >= 0)];
    const last = series[series.length - 1];
    const endIndex = END_INDEX[s.end_stage] || 3;
    const span = Math.max(10, last[0] * 1.05);
    const step = STEPS.find((st) => span / st <= 8) || Math.ceil(span / 8 / 3600) * 3600;
    const tMax = Math.ceil(span / step) * step;
    const iw = W - PAD.l - PAD.r, ih = H - PAD.t - PAD.b;
    const x = (t) => (PAD.l + (t / tMax) * iw).toFixed(1);
    const y = (v) => (PAD.t + ih - (Math.min(v, total) / total) * ih).toFixed(1);

    const scale = `${W}x${H}/${total}/${tMax}`;
    if (svg.dataset.scale !== scale) { // axes change only with the scale
      svg.dataset.scale = scale;
      setAttr(svg, 'viewBox', `0 0 ${W} ${H}`);
      gridG.textContent = '';
      axisG.textContent = '';
      const ys = niceY(total);
      for (let v = 0; v < total; v += ys) {
        el('svg:line', { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }, gridG);
        el('svg:text', { x: PAD.l - 6, y: y(v), 'text-anchor': 'end', 'dominant-baseline': 'middle', text: String(Math.round(v)) }, axisG);
      }
      for (let t = 0; t <= tMax + 1e-9; t += step) {
        el('svg:line', { x1: x(t), x2: x(t), y1: PAD.t, y2: H - PAD.b, class: 'ks-vgrid' }, gridG);
        el('svg:text', { x: x(t), y: H - PAD.b + 18, 'text-anchor': 'middle', text: `${Math.round(t)} s` }, axisG);
      }
      setAttr(totalLine, 'x1', String(PAD.l)); setAttr(totalLine, 'x2', String(W - PAD.r));
      setAttr(totalLine, 'y1', y(total)); setAttr(totalLine, 'y2', y(total));
      setAttr(totalText, 'x', String(W - PAD.r + 6)); setAttr(totalText, 'y', String(Number(y(total)) + 4));
      setText(totalText, `${total} all`);
    }
    const readBack = s.end_stage !== 'accepted';
    for (const sr of SERIES) {
      const shown = sr.i === 1 || readBack;
      setAttr(sr.line, 'points', shown ? series.map((p) => `${x(p[0])},${y(p[sr.i])}`).join(' ') : '');
      setText(sr.value, shown ? String(num(s[sr.key])) : '–'); // now; the lines end at the last look
    }
    // The backlog: accepted but not yet at the end stage, the area between the two lines.
    const area = endIndex === 1 ? '' : [
      ...series.map((p) => `${x(p[0])},${y(p[1])}`),
      ...series.slice().reverse().map((p) => `${x(p[0])},${y(p[endIndex])}`),
    ].join(' ');
    setAttr(backlogArea, 'points', area);
    backlogKey.hidden = endIndex === 1;
    emptyText.style.display = points && points.length ? 'none' : '';
    setAttr(emptyText, 'x', String(PAD.l + iw / 2)); setAttr(emptyText, 'y', String(PAD.t + ih / 2));
    renderPace(series, s, endIndex);
  }

  // Rates over the last few seconds of samples: does Kanta keep up with the uploads?
  function recentRate(series, i, window = 5) {
    if (series.length < 2) return null;
    const last = series[series.length - 1];
    let j = series.length - 2;
    while (j > 0 && last[0] - series[j][0] < window) j--;
    const dt = last[0] - series[j][0];
    return dt > 0 ? (last[i] - series[j][i]) / dt : null;
  }

  function renderPace(series, s, endIndex) {
    const word = END_WORD[s.end_stage] || 'processed';
    const last = series[series.length - 1];
    const backlogs = series.map((p) => p[1] - p[endIndex]);
    const backlog = num(s.accepted) - num(s.done);
    const peak = Math.max(0, ...backlogs, backlog);
    const sentRate = recentRate(series, 1), doneRate = recentRate(series, endIndex);
    const p = (s.summary && s.summary.pipeline) || {};
    setText(paceRate, `202 rate ${num(s.rate_per_s).toFixed(1)} uploads/s`);
    const steady = s.state === 'finished' && p.processed_per_s && endIndex === 3;
    const doneText = steady ? `${p.processed_per_s.toFixed(1)}/s (steady)` : `${doneRate === null ? '–' : doneRate.toFixed(1)}/s (last 5 s)`;
    setText(paceDone, endIndex === 1 ? '' : `${word} ${doneText}`);
    setText(paceBacklog, endIndex === 1 ? '' : `backlog ${backlog} now, peak ${peak}`);
    const bySize = Array.isArray(s.by_size) ? s.by_size : [];
    if (bySize.length >= 3) {
      const [n0, r0] = bySize[0], [n1, r1] = bySize[bySize.length - 1];
      const slower = r1 > 0 ? r0 / r1 : 0;
      setText(paceSize, `processed ${r0.toFixed(1)}/s at ${n0.toLocaleString()} images in the event,`
        + ` ${r1.toFixed(1)}/s at ${n1.toLocaleString()}` + (slower >= 1.5 ? ` (${slower.toFixed(1)}x slower)` : ''));
    } else {
      setText(paceSize, '');
    }

    let tone = 'ok', text;
    const total = num(s.total), failed = num(s.failed);
    const uploading = num(s.accepted) + failed < total;
    const endAt = { 1: p.accepted_s, 2: p.stored_s, 3: p.processed_s }[endIndex];
    if (s.state === 'idle') { tone = 'none'; text = 'No run yet.'; }
    else if (s.state === 'finished') {
      const complete = s.summary ? s.summary.exit_code === 0 : num(s.done) === total;
      tone = complete ? 'ok' : 'bad';
      text = complete
        ? `Done: all ${total} images ${word}` + (endAt ? ` ${secs(endAt)} after the first upload.` : '.')
        : `Ended with ${num(s.done)} of ${total} images ${word}` + (failed ? `, ${failed} failed.` : '.');
    } else if (s.outage_s !== null && s.outage_s !== undefined) {
      tone = 'bad'; text = `Kanta at ${s.host} is not answering (for ${secs(s.outage_s)}); the uploads wait and retry.`;
    } else if (!last[1] && !s.accepted) {
      tone = 'none'; text = 'Starting: no upload accepted yet.';
    } else if (endIndex === 1) {
      text = uploading ? 'Uploading (no read-back: --wait-for accepted).' : 'All uploads answered.';
    } else if (s.held_back) {
      tone = 'warn'; text = `Kanta is behind: uploads held back by --max-backlog until it catches up (backlog ${backlog}).`;
    } else if (uploading) {
      const behind = sentRate !== null && doneRate !== null && backlog >= 10 && doneRate < 0.8 * sentRate;
      tone = behind ? 'warn' : 'ok';
      text = behind
        ? `Kanta falls behind: it ${word} ${doneRate.toFixed(1)}/s of ${sentRate.toFixed(1)}/s accepted; the backlog grows.`
        : `Kanta keeps up: backlog ${backlog}.`;
    } else {
      tone = backlog ? 'warn' : 'ok';
      text = backlog ? `Uploads done; Kanta is working off its backlog: ${backlog} to go.` : `Uploads done; settling the last images.`;
    }
    verdict.dataset.tone = tone;
    setText(verdict, text);
  }

  /* ---------- 3. tiles ---------- */
  function buildTiles(rows, g) {
    grid.textContent = '';
    tiles.clear();
    order = [];
    const gridded = !!(g && g.cells && g.rows && g.cols);
    grid.dataset.layout = gridded ? 'grid' : 'plain';
    if (gridded) {
      gridCols = g.cols.length;
      grid.style.gridTemplateColumns = `var(--ks-label-w) repeat(${g.cols.length}, var(--ks-tile))`;
      grid.style.gridTemplateRows = `var(--ks-head-h) repeat(${g.rows.length}, var(--ks-tile))`;
      g.cols.forEach((name, c) => {
        const h = el('span', { class: 'ks-col', title: name, 'aria-hidden': 'true' }, grid);
        el('span', { text: name }, h);
        h.style.gridColumn = String(c + 2); h.style.gridRow = '1';
      });
      g.rows.forEach((name, r) => {
        const h = el('span', { class: 'ks-row', title: name, 'aria-hidden': 'true', text: name }, grid);
        h.style.gridColumn = '1'; h.style.gridRow = String(r + 2);
      });
    } else {
      gridCols = 15;
      grid.style.gridTemplateColumns = `repeat(${gridCols}, var(--ks-tile))`;
      grid.style.gridTemplateRows = '';
    }
    rows.forEach((row, i) => {
      const node = el('button', { type: 'button', class: 'ks-tile', 'data-image': row.image, tabindex: '-1' }, grid);
      let r = Math.floor(i / gridCols), c = i % gridCols;
      if (gridded && g.cells[row.image]) {
        [r, c] = g.cells[row.image];
        node.style.gridRow = String(r + 2); node.style.gridColumn = String(c + 2);
      }
      tiles.set(row.image, { node, img: null, thumb: '', row, r, c });
      order.push(row.image);
    });
    order.sort((a, b) => { const A = tiles.get(a), B = tiles.get(b); return A.r - B.r || A.c - B.c; });
    if (order.length) tiles.get(order[0]).node.tabIndex = 0;
    grid.dataset.key = rows.map((t) => t.image).join('|') + (gridded ? '#g' : '#p');
  }

  const describe = (row) => {
    const lines = [`${baseName(row.image)}: ${row.state}`, MEANING[row.state] || '', row.image].filter(Boolean);
    if (row.uuid) lines.push(`uuid ${row.uuid}`);
    if (row.state === 'processed') lines.push(row.faces === 1 ? '1 face' : `${row.faces} faces`);
    if (row.attempts > 1 || row.repairs) lines.push(`${row.attempts} attempts` + (row.repairs ? `, ${row.repairs} repaired` : ''));
    if (row.error) lines.push(`last error: ${row.error}`);
    return lines;
  };

  function setThumb(t, url) {
    if (t.thumb === url) return;
    t.thumb = url;
    if (t.img) { t.img.remove(); t.img = null; }
    t.node.removeAttribute('data-thumb');
    if (!url) return;
    const img = el('img', { alt: '', decoding: 'async', draggable: 'false', 'aria-hidden': 'true' });
    img.addEventListener('error', () => { img.hidden = true; t.node.dataset.thumb = 'broken'; });
    img.addEventListener('load', () => { t.node.dataset.thumb = 'shown'; });
    img.src = new URL(url, window.location.href).href;
    t.img = img;
    t.node.appendChild(img);
  }

  function renderTiles(rows, g) {
    rows = rows || [];
    const key = rows.map((t) => t.image).join('|') + (g && g.cells ? '#g' : '#p');
    if (key !== grid.dataset.key) buildTiles(rows, g);
    const counts = Object.fromEntries(STATES.map(([k]) => [k, 0]));
    for (const row of rows) {
      const t = tiles.get(row.image);
      t.row = row;
      counts[row.state] = (counts[row.state] || 0) + 1;
      setAttr(t.node, 'data-state', row.state);
      setAttr(t.node, 'aria-label', `${baseName(row.image)}: ${row.state}`);
      setAttr(t.node, 'data-faceless', row.state === 'processed' && !row.faces ? 'true' : 'false');
      setAttr(t.node, 'data-retried', row.attempts > 1 || row.repairs ? 'true' : 'false');
      setThumb(t, (row.state === 'stored' || row.state === 'processed') && row.thumb ? row.thumb : '');
    }
    for (const [k, b] of Object.entries(legendCount)) setText(b, String(counts[k] || 0));
    if (selected && !tiles.has(selected)) selected = null;
    renderDetails();
  }

  function renderDetails() {
    for (const [image, t] of tiles) setAttr(t.node, 'aria-pressed', image === selected ? 'true' : 'false');
    const t = selected && tiles.get(selected);
    details.dataset.state = t ? t.row.state : '';
    setText(details, t ? describe(t.row).join(' · ') : 'Hover over a tile, or click it, for its name, uuid and last error.');
  }

  function showTip(node) {
    const t = tiles.get(node.dataset.image);
    if (!t) return;
    tip.textContent = '';
    describe(t.row).forEach((line, i) => el(i ? 'div' : 'b', { text: line }, tip));
    tip.hidden = false;
    const rb = root.getBoundingClientRect(), nb = node.getBoundingClientRect();
    const left = Math.max(0, Math.min(nb.left - rb.left - 140 + nb.width / 2, rb.width - tip.offsetWidth));
    tip.style.left = `${left}px`;
    tip.style.top = `${nb.bottom - rb.top + 6}px`;
  }
  const tileOf = (ev) => (ev.target.closest ? ev.target.closest('.ks-tile') : null);
  root.addEventListener('click', (ev) => {
    const chip = ev.target.closest && ev.target.closest('[data-goto]');
    const node = chip ? tiles.get(chip.dataset.goto)?.node : tileOf(ev);
    if (!node) return;
    selected = selected === node.dataset.image && !chip ? null : node.dataset.image;
    renderDetails();
    if (chip) { node.focus(); node.scrollIntoView({ block: 'nearest' }); }
  });
  root.addEventListener('mouseover', (ev) => { const n = tileOf(ev); if (n) showTip(n); });
  root.addEventListener('mouseout', (ev) => { if (tileOf(ev) && !(ev.relatedTarget && ev.relatedTarget.closest && ev.relatedTarget.closest('.ks-tile'))) tip.hidden = true; });
  root.addEventListener('focusin', (ev) => { const n = tileOf(ev); if (n) showTip(n); });
  root.addEventListener('focusout', () => { tip.hidden = true; });
  grid.addEventListener('keydown', (ev) => { // one tab stop for the tiles; arrows move between them
    const n = tileOf(ev);
    if (!n) return;
    const move = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] }[ev.key];
    if (ev.key === 'Escape') { tip.hidden = true; selected = null; renderDetails(); return; }
    if (!move) return;
    ev.preventDefault();
    const t = tiles.get(n.dataset.image);
    const r = t.r + move[0], c = t.c + move[1];
    const next = order.map((k) => tiles.get(k)).find((o) => o.r === r && o.c === c);
    if (!next) return;
    n.tabIndex = -1;
    next.node.tabIndex = 0;
    next.node.focus();
  });

  /* ---------- 4. the summary ---------- */
  function renderResult(rows, s) {
    rows = rows || [];
    const key = JSON.stringify(rows);
    if (result.dataset.key === key) return;
    result.dataset.key = key;
    result.hidden = !rows.length;
    resultRows.textContent = '';
    resultLists.textContent = '';
    if (!rows.length) return;
    const summary = s.summary || {};
    result.dataset.result = summary.exit_code === 0 ? 'pass' : 'fail';
    const first = rows[0] && rows[0][0] === 'result' ? rows[0][1] : '';
    setText(resultBadge, String(summary.result || (summary.exit_code === 0 ? 'pass' : 'not complete')));
    setText(resultVerdict, first.replace(/^[^:]*:\s*/, ''));
    const tb = el('tbody', {}, resultRows);
    for (const [label, value] of rows) {
      const tr = el('tr', { 'data-row': label }, tb);
      el('th', { scope: 'row', text: label }, tr);
      el('td', { text: value }, tr);
    }
    const list = (title, items, cls) => {
      const box = el('div', { class: `ks-list ${cls}` }, resultLists);
      el('h3', { text: `${title}: ${items.length}` }, box);
      if (!items.length) { el('span', { class: 'ks-none', text: 'none' }, box); return; }
      const ul = el('ul', {}, box);
      for (const [member, extra] of items) {
        const li = el('li', {}, ul);
        el('button', { type: 'button', class: 'ks-chip', 'data-goto': member, title: member, text: baseName(member) }, li);
        if (extra) el('span', { class: 'ks-why', text: extra }, li);
      }
    };
    list('Failed images', (summary.failed_images || []).map((f) => [f.member, `${f.status || 'no answer'} ${f.error || ''}`.trim()]), 'ks-list-failed');
    list('Images with no face found', ((summary.faces && summary.faces.faceless) || []).map((m) => [m, '']), 'ks-list-faceless');
  }

  /* ---------- drawing a poll's answer ---------- */
  function render() {
    if (!doc || !doc.snapshot) return;
    const s = doc.snapshot;
    syncTheme();
    // The badge: where the run is, then the summary's own result: never a word of its own.
    const phase = doc.phase || (s.state === 'finished' ? 'ended' : s.state);
    const result = doc.result || (s.summary && s.summary.result) || '';
    setAttr(runState, 'data-state', phase);
    setAttr(runState, 'data-result', phase === 'ended' ? result : '');
    setText(runState, phase === 'idle' ? 'no run yet' : phase === 'ended' ? result || 'ended' : phase);
    setText(where, s.event_code ? `event ${s.event_code} at ${s.host}` : '');
    renderTop(s);
    renderChart(doc.chart, s);
    renderTiles(doc.tiles, doc.grid);
    renderResult(doc.rows, s);
  }

  /* ---------- the start form: labels, group heads, and what the next START fills ---------- */
  const FORM = (() => {
    try { return JSON.parse(document.getElementById('kanta-seed-form')?.textContent || '{}'); } catch (e) { return {}; }
  })();
  const FIELDS = FORM.fields || {}; // field name (Locust's camelCase of the dest) -> {dest, label, group}
  const NAME_OF = Object.fromEntries(Object.entries(FIELDS).map(([name, f]) => [f.dest, name]));
  // target.json's query args -> the form fields they come from (host is Locust's own field)
  const TARGET_ARGS = [['host', 'host'], ...['event_code', 'bench', 'bench_cleanup', 'fresh_event', 'loops', 'images']
    .filter((d) => NAME_OF[d]).map((d) => [d, NAME_OF[d]])];
  const WATCHED = new Set(TARGET_ARGS.filter(([arg]) => arg !== 'images').map(([, name]) => name));
  const TARGET = new URL('target.json', HERE);
  const TARGET_DEBOUNCE_MS = 400;
  const forms = new WeakMap(); // the "Custom parameters" accordion -> its target line and fetch state
  const ours = (n) => !!(n && n.nodeType === 1 && n.closest && n.closest('[data-kanta-seed-target], [data-kanta-seed-group]'));

  function customAccordions() { // the first page's form, and NEW's dialog (a portal outside #root)
    return [...document.querySelectorAll('.MuiAccordion-root')].filter((a) => {
      const summary = a.querySelector('.MuiAccordionSummary-root');
      return summary && summary.textContent.trim() === 'Custom parameters';
    });
  }
  function layoutFields(acc) {
    const column = acc.querySelector('.MuiAccordionDetails-root')?.firstElementChild;
    if (!column) return;
    const rows = [];
    for (const input of column.querySelectorAll('input[name], select[name], textarea[name]')) {
      const f = FIELDS[input.name];
      let row = input;
      while (row && row.parentElement !== column) row = row.parentElement;
      if (!f || !row || rows.some(([r]) => r === row)) continue;
      rows.push([row, f, input.name]);
      // Locust labels a field from its dest ("Check P5 0Ms"): the label element and the outline's notch.
      for (const n of [row, ...row.querySelectorAll('label, legend > span, .MuiFormControlLabel-label')]) {
        if (n.childElementCount === 0 && n.textContent.trim() && n.textContent !== f.label) n.textContent = f.label;
      }
    }
    // Group heads, only when the fields came in the server's order (else a head would mislead).
    const shown = rows.map(([, , name]) => name);
    const expected = (FORM.order || []).filter((name) => shown.includes(name));
    if (shown.join() !== expected.join()) return;
    for (const [row, f] of rows) {
      if (!f.group) continue;
      const prev = row.previousElementSibling;
      if (prev && prev.dataset && prev.dataset.kantaSeedGroup === f.group) continue;
      row.before(el('div', { class: 'ks-form-group', 'data-kanta-seed-group': f.group, role: 'heading', 'aria-level': '3', text: f.group }));
    }
  }
  function targetQuery(acc) {
    const form = acc.closest('form') || document;
    const q = new URLSearchParams();
    for (const [arg, name] of TARGET_ARGS) {
      const n = form.querySelector(`[name="${name}"]`);
      if (n) q.set(arg, n.type === 'checkbox' ? String(n.checked) : n.value);
    }
    return q;
  }
  function refreshTarget(acc, delay) {
    const st = forms.get(acc);
    if (!st) return;
    clearTimeout(st.timer);
    st.timer = setTimeout(async () => {
      const q = targetQuery(acc);
      if (st.ctrl) st.ctrl.abort();
      const ctrl = st.ctrl = new AbortController();
      st.line.dataset.loading = 'true';
      try {
        const url = new URL(TARGET);
        url.search = q.toString();
        const r = await fetch(url, { cache: 'no-store', credentials: 'same-origin', signal: ctrl.signal });
        if (r.redirected || !r.ok) throw new Error(r.redirected ? 'login required' : `HTTP ${r.status}`);
        const t = await r.json();
        if (ctrl !== st.ctrl) return;
        st.line.dataset.mode = t.mode;
        st.line.dataset.holds = t.holds === null || t.holds === undefined ? '' : String(t.holds);
        st.line.dataset.ok = t.mode === 'bench' || (t.holds !== null && t.holds !== undefined) ? 'true' : 'false';
        st.mode.textContent = t.mode === 'bench' ? 'bench' : 'seed';
        setText(st.text, t.mode === 'bench' ? t.note : `event ${t.event}${t.host ? ` at ${t.host}` : ''}: ${t.note}`);
      } catch (e) {
        if (e.name === 'AbortError' || ctrl !== st.ctrl) return;
        st.line.dataset.ok = 'false';
        setText(st.text, `cannot tell what START fills (${e.message})`);
      } finally {
        if (ctrl === st.ctrl) delete st.line.dataset.loading;
      }
    }, delay);
  }
  function syncForms() {
    for (const acc of customAccordions()) {
      layoutFields(acc);
      let st = forms.get(acc);
      if (!st) { // a form just opened: say what it fills at once
        const line = el('div', { class: 'ks-target', 'data-kanta-seed-target': '', role: 'status', 'aria-live': 'polite' });
        const mode = el('b', { class: 'ks-target-mode' }, line);
        line.append(' ');
        st = { line, mode, text: el('span', { text: 'looking at the event…' }, line), timer: null, ctrl: null };
        forms.set(acc, st);
        refreshTarget(acc, 0);
      }
      if (acc.previousElementSibling !== st.line) acc.before(st.line);
    }
  }
  const onField = (ev) => {
    const t = ev.target;
    if (!t || !t.name || !WATCHED.has(t.name)) return;
    for (const acc of customAccordions()) if (acc.closest('form') === t.form) refreshTarget(acc, TARGET_DEBOUNCE_MS);
  };
  document.addEventListener('input', onField, true);
  document.addEventListener('change', onField, true);

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
  let headerStatus = '';
  function locustStatus() { // Locust's header: "Status" over the runner's state
    const header = document.querySelector('#root header');
    if (!header) return '';
    for (const n of header.querySelectorAll('p, span, h6')) {
      if (n.textContent.trim() === 'Status' && n.nextElementSibling) return n.nextElementSibling.textContent.trim();
    }
    return '';
  }
  function sync() {
    syncForms();
    const tab = ourTab();
    const isActive = !!tab && tab.getAttribute('aria-selected') === 'true';
    if (isActive) {
      // Locust's layout: Container > Box > .MuiTabs-root; its (empty) panel follows that Box.
      const anchor = tab.closest('.MuiTabs-root')?.parentElement;
      if (anchor && anchor.nextElementSibling !== root) anchor.after(root);
      syncTheme();
    } else if (root.isConnected) {
      root.remove();
      tip.hidden = true;
    }
    const now = locustStatus();
    const changed = now !== headerStatus;
    headerStatus = now;
    // Fresh figures on (re)entry, and as soon as Locust's header changes (the run ended): the badge and
    // the summary follow the header within one request, not a poll later.
    if (isActive && (!active || changed)) { active = true; poll(); }
    active = isActive;
  }
  let queued = false;
  const schedule = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; sync(); });
  };
  new MutationObserver((records) => {
    if (records.some((r) => !root.contains(r.target) && !ours(r.target))) schedule(); // React's changes, not ours
  }).observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ['class', 'aria-selected'] });
  window.addEventListener('popstate', schedule);
  // The chart is drawn in its own pixels (no stretched text): follow its box's size.
  if (window.ResizeObserver) {
    new ResizeObserver(() => {
      const w = Math.round(svg.clientWidth), h = Math.round(svg.clientHeight);
      if (w > 100 && h > 100 && (w !== W || h !== H)) { W = w; H = h; if (doc) renderChart(doc.chart, doc.snapshot); }
    }).observe(svg);
  }

  /* ---------- polling, only while the tab is visible ---------- */
  let timer = null, inflight = false;
  async function poll() {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
    if (!active || document.hidden || inflight) return;
    inflight = true;
    try {
      const r = await fetch(ENDPOINT, { cache: 'no-store', credentials: 'same-origin', signal: AbortSignal.timeout(5000) });
      if (r.redirected || !r.ok) throw new Error(r.redirected ? 'login required' : `HTTP ${r.status}`);
      doc = await r.json();
      status.dataset.ok = 'true';
      setText(status, `updated ${new Date().toLocaleTimeString()}`);
      render();
    } catch (e) {
      status.dataset.ok = 'false';
      setText(status, `no data (${e.message}); retrying`);
    } finally {
      inflight = false;
    }
  }
  document.addEventListener('visibilitychange', () => { if (!document.hidden && active) poll(); });
  // Locust's Start (also after NEW) begins a new run: fetch it at once, not up to 1.5 s later.
  document.addEventListener('submit', () => setTimeout(() => { if (active) poll(); }, 300), true);

  renderDetails();
  schedule();
})();
