// splitgate dashboard: polls the admin API every 2 s with the operator's bearer token and acts
// through the same API (dry-run preview before every weight change, If-Match on the version it
// showed, so a stale page gets 409 and reloads instead of overwriting someone's change).
// The DOM is built with createElement/textContent only: nothing from the API is parsed as HTML.
'use strict';

const TOKEN_KEY = 'splitgate.admin_token';
const POLL_MS = 2000;
const SERIES_EVERY = 5; // polls: the series moves in 10 s steps
const SVG_NS = 'http://www.w3.org/2000/svg';

const state = { token: sessionStorage.getItem(TOKEN_KEY), version: null, timer: null, polls: 0, status: null, series: null, pending: null };

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

const pct = (x, digits = 1) => (x === null || x === undefined ? '–' : (x * 100).toFixed(digits) + '%');
const ms = (x) => (x === null || x === undefined ? '–' : x < 10 ? x.toFixed(2) + ' ms' : x.toFixed(0) + ' ms');
const num = (x) => (x === null || x === undefined ? '–' : Number(x).toLocaleString('en-US'));
const fixed = (x, d = 2) => (x === null || x === undefined ? '–' : Number(x).toFixed(d));
function duration(secs) {
  if (secs === null || secs === undefined) return '–';
  const s = Math.max(0, Math.round(secs));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${r}s` : `${r}s`;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, token) {
  const headers = { Authorization: 'Bearer ' + (token || state.token) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  // Changes are conditional on the version this page showed: a stale page gets 409.
  if (method !== 'GET' && state.version !== null) headers['If-Match'] = String(state.version);
  const r = await fetch(path, {
    method, headers, cache: 'no-store', credentials: 'omit',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  if (!r.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(r.status, e.code, e.message);
  }
  return data;
}

// ---------- session ----------

function showLogin(message) {
  stopPolling();
  $('dash').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('meta').textContent = '';
  $('live').textContent = '';
  $('login-error').textContent = message || '';
  $('token').value = '';
  $('token').focus();
}

function showDash() {
  $('login').hidden = true;
  $('dash').hidden = false;
  $('logout').hidden = false;
  startPolling();
}

function signOut(message) {
  state.token = null;
  state.version = null;
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

async function signIn(ev) {
  ev.preventDefault();
  const token = $('token').value.trim();
  if (!token) return;
  $('login-button').disabled = true;
  try {
    await api('GET', '/admin/status', undefined, token);
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    showDash();
  } catch (e) {
    $('login-error').textContent = e.status === 401 ? 'That token was refused.' : `Cannot reach the admin API: ${e.message}`;
  } finally {
    $('login-button').disabled = false;
  }
}

// ---------- polling ----------

function startPolling() {
  stopPolling();
  state.polls = 0;
  refresh();
  state.timer = setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
}

function stopPolling() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

let refreshing = false;
async function refresh() {
  if (refreshing || !state.token) return;
  refreshing = true;
  try {
    const event = $('event').value;
    const wantSeries = state.polls % SERIES_EVERY === 0;
    const [status, guard, experiment, shadow, audit, series] = await Promise.all([
      api('GET', '/admin/status'),
      api('GET', '/admin/guard'),
      api('GET', '/admin/experiment?event=' + encodeURIComponent(event)),
      api('GET', '/admin/shadow'),
      api('GET', '/admin/audit?limit=20'),
      wantSeries ? api('GET', '/admin/series') : Promise.resolve(state.series),
    ]);
    state.polls += 1;
    state.series = series;
    renderStatus(status);
    renderSeries(series, status);
    renderGuard(guard);
    renderExperiment(experiment);
    renderShadows(shadow, series);
    renderAudit(audit);
    $('live').textContent = 'updated ' + new Date().toLocaleTimeString();
    if ($('banner').dataset.kind === 'unreachable') hideBanner();
  } catch (e) {
    if (e.status === 401) signOut('The token is no longer accepted; sign in again.');
    else showBanner(`Cannot load from the admin API: ${e.message}`, 'unreachable');
  } finally {
    refreshing = false;
  }
}

function showBanner(text, kind) {
  const b = $('banner');
  b.textContent = text;
  b.dataset.kind = kind || 'error';
  b.className = kind === 'info' ? 'info' : '';
  b.hidden = false;
}

function hideBanner() {
  $('banner').hidden = true;
  $('banner').dataset.kind = '';
}

// ---------- rendering ----------

function colour(variants, name) {
  const i = variants.findIndex((v) => v.name === name);
  if (i < 0) return 'c1';
  if (variants[i].champion) return 'c0';
  const others = variants.filter((v) => !v.champion).findIndex((v) => v.name === name);
  return 'c' + (1 + (others % 4));
}

function fillSelect(select, names) {
  const keep = select.value;
  const current = [...select.options].map((o) => o.value).join('\u0000');
  if (current !== names.join('\u0000')) {
    select.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
  }
  if (names.includes(keep)) select.value = keep;
}

function renderStatus(s) {
  state.status = s;
  state.version = s.version;
  $('meta').textContent = `config version ${s.version} · ${s.source}`;
  $('split-version').textContent = `version ${s.version}`;
  const bar = $('split-bar');
  bar.replaceChildren(...s.variants.map((v) => {
    const seg = el('div', { class: 'seg ' + colour(s.variants, v.name), 'data-variant': v.name, title: `${v.name}: ${v.weight}% → ${v.model} ${v.version}` },
      `${v.name} ${v.weight}%`);
    seg.style.flexGrow = String(v.weight);
    return seg;
  }));
  const rows = s.variants.map((v) => el('tr', { 'data-variant': v.name },
    el('td', {}, el('span', { class: 'swatch ' + colour(s.variants, v.name) }), v.name, v.champion ? el('span', { class: 'badge', text: 'champion' }) : null),
    el('td', { text: v.model }),
    el('td', { text: v.version }),
    el('td', { class: 'num weight', text: v.weight + '%' }),
    el('td', { class: 'num', text: num(v.requests) }),
    el('td', { class: 'num' + (v.error_rate > 0.05 ? ' bad' : ''), text: pct(v.error_rate, 2) }),
    el('td', { class: 'num', text: ms(v.mean_latency_ms) })));
  $('variants').tBodies[0].replaceChildren(...rows);
  const challengers = s.variants.filter((v) => !v.champion).map((v) => v.name);
  fillSelect($('weight-variant'), challengers);
  fillSelect($('promote-variant'), challengers);
  const weightInput = $('weight-value');
  if (document.activeElement !== weightInput && weightInput.value === '') {
    const v = s.variants.find((x) => x.name === $('weight-variant').value);
    if (v) weightInput.placeholder = String(v.weight);
  }
}

function sparkline(values, max, cls) {
  const w = 180, h = 36, n = 90;
  const pts = [];
  values.forEach((v, i) => {
    if (v === null || v === undefined) return;
    const x = ((n - values.length + i) / (n - 1)) * w;
    const y = h - 2 - (max > 0 ? (v / max) * (h - 4) : 0);
    pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  });
  const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', role: 'img' });
  if (pts.length) s.append(svg('polyline', { class: 'line ' + cls, points: pts.join(' ') }));
  // The newest point as a dot, so a single point (the first 20 s) is visible too.
  if (pts.length) {
    const [x, y] = pts[pts.length - 1].split(',');
    s.append(svg('circle', { class: 'dot ' + cls, cx: Math.min(Number(x), w - 2.5), cy: y, r: 2.5 }));
  }
  return s;
}

const METRICS = [
  ['requests/s', (p) => p.rps, (x) => fixed(x, 1)],
  ['error rate', (p) => p.error_rate, (x) => pct(x, 2)],
  ['p50', (p) => p.p50_ms, ms],
  ['p99', (p) => p.p99_ms, ms],
];

function renderSeries(series, status) {
  if (!series) return;
  const variants = series.variants;
  const max = METRICS.map(([, f]) => Math.max(0, ...variants.flatMap((v) => v.points.map(f).filter((x) => x !== null && x !== undefined))));
  const header = el('div', { class: 'spark' }, el('span', { class: 'cell', text: '' }), ...METRICS.map(([name]) => el('span', { class: 'cell', text: name })));
  const rows = variants.map((v) => {
    const cls = colour(status.variants, v.name);
    const last = v.points.length ? v.points[v.points.length - 1] : null;
    return el('div', { class: 'spark', 'data-variant': v.name },
      el('span', { class: 'label' }, el('span', { class: 'swatch ' + cls }), v.name),
      ...METRICS.map(([name, f, fmt], i) => el('div', {},
        sparkline(v.points.map(f), max[i], cls),
        el('span', { class: 'cell' }, 'now ', el('b', { text: last ? fmt(f(last)) : '–' })))));
  });
  const note = variants.every((v) => v.points.length === 0)
    ? el('p', { class: 'muted', text: `The first point appears ${series.step_seconds} s after start; the ring keeps ${series.capacity} points (${series.window_seconds / 60} min).` })
    : null;
  $('sparklines').replaceChildren(header, ...rows, ...(note ? [note] : []));
}

function meter(r) {
  const w = 160, h = 14;
  // Scale so the threshold sits at 2/3 of the width; values beyond it are clipped at the end.
  const scale = r.threshold > 0 ? (w * 2) / 3 / r.threshold : 1;
  const x = Math.min(w, (r.value || 0) * scale);
  const state = !r.armed ? 'unarmed' : r.breached ? 'breached' : '';
  return svg('svg', { class: 'meter', viewBox: `0 0 ${w} ${h}`, role: 'img' },
    svg('rect', { class: 'value ' + state, x: 0, y: 3, width: x.toFixed(1), height: h - 6, rx: 2 }),
    svg('line', { class: 'threshold', x1: (w * 2) / 3, x2: (w * 2) / 3, y1: 0, y2: h }));
}

function triggerValue(r) {
  if (r.value === null || r.value === undefined) return '–';
  if (r.unit === 'ratio') return pct(r.value, 2);
  if (r.unit === 'ms') return ms(r.value);
  return `${r.value}/min`;
}

function triggerThreshold(r) {
  if (r.unit === 'ratio') return '> ' + pct(r.threshold, 1);
  if (r.unit === 'ms') return '> ' + ms(r.threshold);
  return `> ${r.threshold}/min`;
}

function renderGuard(g) {
  const out = [];
  if (!g.enabled) {
    out.push(el('p', { class: 'muted', text: 'No [guard] is configured: nothing rolls back by itself.' }));
  }
  for (const v of g.variants || []) {
    out.push(el('h3', {}, `${v.name} `, el('span', { class: 'muted', text: `${v.model} at ${v.weight}%${v.watched ? '' : ' (not watched at 0%)'}` })));
    const rows = v.triggers.map((r) => el('tr', { 'data-trigger': r.trigger },
      el('td', { text: r.trigger.replace('_', ' ') }),
      el('td', { class: 'num', text: triggerValue(r) }),
      el('td', { class: 'num', text: triggerThreshold(r) }),
      el('td', {}, meter(r)),
      el('td', { class: r.breached ? 'bad' : r.armed ? 'ok' : 'muted',
        text: r.breached ? 'BREACHED' : r.armed ? 'ok' : `needs ${num(g.min_requests)} requests (${num(r.requests)} in ${duration(r.window_secs)})` })));
    out.push(el('table', {}, el('thead', {}, el('tr', {}, ...['trigger', 'now', 'threshold', '', 'state'].map((t) => el('th', { text: t })))), el('tbody', {}, ...rows)));
    if (v.ramp) {
      const r = v.ramp;
      const next = r.next_step === null ? 'top step reached' : `next ${r.next_step}% in ${duration(r.time_to_next_secs)}`;
      out.push(el('p', { class: 'ramp' }, `Ramp ${r.steps.join(' → ')}%: at ${r.weight}%, ${next}`,
        el('span', { class: 'muted', text: ` · held ${duration(r.held_secs)} of ${duration(r.hold_secs)}, ${num(r.requests_in_hold)} requests (min ${num(r.min_requests)}) · waiting for: ${r.waiting_for}` })));
    }
  }
  const last = g.last_rollback;
  out.push(el('p', { id: 'last-rollback' }, el('b', { text: 'Last rollback: ' }),
    last ? `${last.time} by ${last.who}${last.reason ? ' — ' + last.reason : ''} (version ${last.old_version} → ${last.new_version})` : 'none since start'));
  $('guard').replaceChildren(...out);
}

function intervalBar(c, max) {
  const w = 160, h = 14, x = (v) => (max > 0 ? (v / max) * (w - 8) + 4 : 4);
  return svg('svg', { class: 'ci', viewBox: `0 0 ${w} ${h}`, role: 'img' },
    svg('line', { class: 'track', x1: 4, x2: w - 4, y1: h / 2, y2: h / 2 }),
    svg('line', { class: 'interval', x1: x(c.ci_low).toFixed(1), x2: Math.max(x(c.ci_high), x(c.ci_low) + 1).toFixed(1), y1: h / 2, y2: h / 2 }),
    svg('circle', { class: 'point', cx: x(c.rate).toFixed(1), cy: h / 2, r: 3 }));
}

function renderExperiment(x) {
  const max = Math.max(0.01, ...x.variants.map((v) => v.conversion.ci_high)) * 1.1;
  const srm = x.srm !== undefined ? x.srm : x.sample_ratio_mismatch;
  const rows = x.variants.map((v) => el('tr', { 'data-variant': v.name },
    el('td', {}, v.name, v.champion ? el('span', { class: 'badge', text: 'champion' }) : null,
      v.srm && (v.srm.flag || v.srm.mismatch) ? el('span', { class: 'badge srm', text: 'SRM' }) : null),
    el('td', { class: 'num', text: num(v.users) }),
    el('td', { class: 'num', text: num(v.events[x.conversion_event]) }),
    el('td', { class: 'num', text: pct(v.conversion.rate, 2) }),
    el('td', { title: `95% interval ${pct(v.conversion.ci_low, 2)} – ${pct(v.conversion.ci_high, 2)}` }, intervalBar(v.conversion, max),
      el('span', { class: 'muted', text: ` ${pct(v.conversion.ci_low, 1)}–${pct(v.conversion.ci_high, 1)}` })),
    el('td', { class: 'num' + (v.significantly_worse ? ' bad' : ''), text: v.p_value_vs_champion === null || v.p_value_vs_champion === undefined ? '–' : fixed(v.p_value_vs_champion, 4) })));
  const out = [el('table', {},
    el('thead', {}, el('tr', {}, ...['variant', 'users', x.conversion_event, 'conversion', '95% interval', 'p vs champion'].map((t) => el('th', { text: t })))),
    el('tbody', {}, ...rows))];
  if (srm !== undefined && srm !== null) {
    const flagged = srm === true || srm.flag === true || srm.mismatch === true;
    out.push(el('p', { class: flagged ? 'bad' : 'ok', id: 'srm' },
      flagged ? 'Sample ratio mismatch: the split is not what the weights say; do not trust the comparison.' : 'No sample ratio mismatch.',
      srm.p_value !== undefined ? el('span', { class: 'muted', text: ` (p = ${fixed(srm.p_value, 4)})` }) : null));
  }
  $('experiment').replaceChildren(...out);
}

function histogram(bins) {
  const w = 140, h = 30, n = bins.length, max = Math.max(1, ...bins.map((b) => b.count));
  return svg('svg', { class: 'hist', viewBox: `0 0 ${w} ${h}`, role: 'img' },
    ...bins.map((b, i) => svg('rect', { class: 'binbar', x: ((i * w) / n + 1).toFixed(1), width: (w / n - 2).toFixed(1),
      y: (h - (b.count / max) * (h - 2)).toFixed(1), height: ((b.count / max) * (h - 2)).toFixed(1) },
    svg('title', {}, document.createTextNode(`≤ ${b.le}: ${b.count}`)))));
}

function renderShadows(s, series) {
  if (!s.shadows.length) {
    $('shadows').replaceChildren(el('p', { class: 'muted', text: 'No [[shadow]] is configured.' }));
    return;
  }
  const dist = new Map(((series && series.shadows) || []).map((d) => [d.model, d]));
  const rows = s.shadows.map((x) => {
    const a = x.since_start, r = x.last_5m, d = dist.get(x.model);
    const delta = (p) => (p.shadow_latency_ms.p50 !== null && p.primary_latency_ms.p50 !== null ? p.shadow_latency_ms.p50 - p.primary_latency_ms.p50 : null);
    const dd = delta(a);
    return el('tr', { 'data-shadow': x.model },
      el('td', {}, x.model, el('span', { class: 'muted', text: ` ${x.version} · ${x.sample_percent}%` })),
      el('td', { class: 'num', text: `${num(a.mirrored)} / ${num(a.dropped)} / ${num(a.failed)}` }),
      el('td', { class: 'num', text: `${num(r.mirrored)} / ${num(r.dropped)} / ${num(r.failed)}` }),
      el('td', { class: 'num', text: fixed(a.mean_overlap_at_k, 3) }), el('td', {}, d ? histogram(d.overlap_at_k) : null),
      el('td', { class: 'num', text: fixed(a.mean_rbo, 3) }), el('td', {}, d ? histogram(d.rbo) : null),
      el('td', { class: 'num', text: dd === null ? '–' : (dd >= 0 ? '+' : '') + ms(dd) }));
  });
  $('shadows').replaceChildren(el('table', {},
    el('thead', {}, el('tr', {}, ...['shadow', 'mirrored / dropped / failed', 'last 5 min', `overlap@${s.shadows[0].k}`, 'distribution', 'RBO', 'distribution', 'p50 delta'].map((t) => el('th', { text: t })))),
    el('tbody', {}, ...rows)));
}

function renderAudit(a) {
  const rows = a.records.slice().reverse().map((r) => el('tr', {},
    el('td', { text: r.time }), el('td', { text: r.who }), el('td', { text: r.action }),
    el('td', {}, el('code', { text: JSON.stringify(r.change) })),
    el('td', { class: 'num', text: `${r.old_version} → ${r.new_version}` }),
    el('td', { text: r.reason || '' })));
  $('audit').tBodies[0].replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 6, class: 'muted', text: 'No changes since start.' }))]));
}

// ---------- actions ----------

function result(text, cls) {
  const p = $('action-result');
  p.textContent = text;
  p.className = cls || 'muted';
}

// Every action ends here on failure: a conflict reloads the live config so the operator sees
// what changed before deciding again.
async function failed(e, what) {
  if (e.status === 401) return signOut('The token is no longer accepted; sign in again.');
  if (e.status === 409) {
    showBanner(`Not applied — ${what}: the config changed since this page showed version ${state.version} (${e.message}). The live config has been reloaded; review it and try again.`, 'conflict');
    result('');
    hidePreview();
    await refresh();
    return;
  }
  result(`${what} failed (${e.status}${e.code ? ' ' + e.code : ''}): ${e.message}`, 'error');
}

function hidePreview() {
  state.pending = null;
  $('preview-box').hidden = true;
}

async function preview(ev) {
  ev.preventDefault();
  const variant = $('weight-variant').value;
  const weight = Number($('weight-value').value);
  if (!variant || !Number.isFinite(weight)) return;
  hideBanner();
  try {
    const d = await api('PUT', '/admin/weights?dry_run=true', { [variant]: weight });
    const from = state.status.variants.find((v) => v.name === variant);
    const others = Object.entries(d.weights).filter(([n]) => n !== variant).map(([n, w]) => `${n} ${w}%`).join(', ');
    const moved = d.last_hour_requests > 0
      ? `${pct(d.share_that_would_change_variant, 1)} of the last hour's traffic would move (${num(d.requests_that_would_change_variant)} of ${num(d.last_hour_requests)} requests change variant).`
      : 'No traffic in the last hour to estimate from.';
    $('preview-text').textContent = `${variant}: ${from ? from.weight : '?'}% → ${d.weights[variant]}% (${others}). ${moved}`;
    state.pending = { variant, weight, version: state.version };
    $('preview-box').hidden = false;
    $('confirm').focus();
  } catch (e) {
    await failed(e, 'Preview');
  }
}

async function confirmWeights() {
  const p = state.pending;
  if (!p) return;
  const reason = $('weight-reason').value.trim() || `dashboard: ${p.variant} to ${p.weight}%`;
  $('confirm').disabled = true;
  try {
    // If-Match carries the version the preview was made against.
    state.version = p.version;
    const r = await api('PUT', '/admin/weights', { [p.variant]: p.weight, reason });
    hidePreview();
    $('weight-value').value = '';
    result(`Applied: version ${r.old_version} → ${r.version}; ${Object.entries(r.weights).map(([n, w]) => `${n} ${w}%`).join(', ')}.`, 'ok');
    await refresh();
  } catch (e) {
    await failed(e, 'Weight change');
  } finally {
    $('confirm').disabled = false;
  }
}

function askPromote(ev) {
  ev.preventDefault();
  if (!$('promote-variant').value) return;
  $('promote-confirm').textContent = `Confirm: ${$('promote-variant').value}'s model becomes the champion's, at 100%`;
  $('promote-confirm').hidden = false;
}

async function promote() {
  const variant = $('promote-variant').value;
  $('promote-confirm').hidden = true;
  try {
    const r = await api('POST', '/admin/promote', { variant, reason: $('promote-reason').value.trim() || undefined });
    result(`Promoted ${variant}: version ${r.old_version} → ${r.version}.`, 'ok');
    await refresh();
  } catch (e) {
    await failed(e, 'Promote');
  }
}

async function rollback(ev) {
  ev.preventDefault();
  const reason = $('rollback-reason').value.trim();
  if (!reason) return;
  try {
    const r = await api('POST', '/admin/rollback', { reason });
    $('rollback-reason').value = '';
    result(`Rolled back: version ${r.old_version} → ${r.version}; ${Object.entries(r.weights).map(([n, w]) => `${n} ${w}%`).join(', ')}.`, 'ok');
    await refresh();
  } catch (e) {
    await failed(e, 'Rollback');
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', signIn);
  $('logout').addEventListener('click', () => signOut(''));
  $('weight-form').addEventListener('submit', preview);
  $('confirm').addEventListener('click', confirmWeights);
  $('cancel').addEventListener('click', hidePreview);
  $('weight-variant').addEventListener('change', hidePreview);
  $('weight-value').addEventListener('input', hidePreview);
  $('promote-form').addEventListener('submit', askPromote);
  $('promote-confirm').addEventListener('click', promote);
  $('rollback-form').addEventListener('submit', rollback);
  $('event').addEventListener('change', refresh);
  if (state.token) showDash(); else showLogin('');
});
