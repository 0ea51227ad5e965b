// /dashboard.html: streams, clients (with a kick button), node summary and the cluster view from the
// API, refreshed every 2 s; a bitrate sparkline per stream from the change of its recv_bytes.
// Test hook: window.estuary = {page, streams, clients, cluster, error, updated, kicked, refresh()}.
import { $, setStatus, queryParams } from './ui.js';

const HISTORY = 60; // samples kept per stream (2 min at 2 s)
const token = queryParams().token || '';
const estuary = (window.estuary = {
  page: 'dashboard', streams: [], clients: [], cluster: null, error: null, updated: 0, kicked: [],
  refresh: () => refresh(),
});
// history[key] = {last: {bytes, at}, kbps: [..]}
const history = new Map();

const text = (v) => (v === undefined || v === null || v === '' ? '–' : String(v));

async function api(path, init = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const res = await fetch(`api/v1/${path}`, { cache: 'no-store', ...init, headers });
  const body = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}: ${body.trim() || '(empty body)'}`);
  const j = JSON.parse(body);
  if (j.code !== undefined && j.code !== 0) throw new Error(`${path}: API code ${j.code}: ${j.message || ''}`);
  return j;
}

function fmtBytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function fmtKbps(k) {
  if (k === undefined || k === null) return '–';
  if (!k) return '0 kbit/s';
  return k >= 1000 ? `${(k / 1000).toFixed(2)} Mbit/s` : `${Math.round(k)} kbit/s`;
}

function fmtDuration(s) {
  s = Math.floor(s || 0);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

function videoText(v) {
  if (!v) return '–';
  const size = v.width && v.height ? ` ${v.width}×${v.height}` : '';
  return `${text(v.codec)}${v.profile ? ' ' + v.profile : ''}${size}`;
}

function audioText(a) {
  if (!a) return '–';
  return `${text(a.codec)}${a.sample_rate ? ` ${a.sample_rate / 1000} kHz` : ''}${a.channel ? ` ${a.channel} ch` : ''}`;
}

/** Records a stream's recv_bytes and returns its kbit/s history. */
function sample(key, bytes, now) {
  let h = history.get(key);
  if (!h) { h = { last: null, kbps: [] }; history.set(key, h); }
  if (h.last && now > h.last.at && bytes >= h.last.bytes) {
    h.kbps.push(((bytes - h.last.bytes) * 8) / (now - h.last.at)); // bytes per ms * 8 = kbit/s
    if (h.kbps.length > HISTORY) h.kbps.shift();
  }
  h.last = { bytes, at: now };
  return h.kbps;
}

function drawSpark(canvas, values) {
  const dpr = window.devicePixelRatio || 1;
  const w = 140, h = 30;
  canvas.width = w * dpr;
  canvas.height = h * dpr;
  const ctx = canvas.getContext('2d');
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, w, h);
  if (values.length < 2) return;
  const max = Math.max(...values, 1);
  const step = w / (HISTORY - 1);
  const x0 = w - (values.length - 1) * step;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = x0 + i * step, y = h - 2 - (v / max) * (h - 4);
    if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  });
  ctx.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue('--accent') || '#3fb6a8';
  ctx.lineWidth = 1.5;
  ctx.stroke();
}

function emptyRow(tbody, cols, msg) {
  const td = tbody.insertRow().insertCell();
  td.colSpan = cols;
  td.className = 'muted';
  td.textContent = msg;
}

function renderStreams(streams, now) {
  const rows = $('stream-rows');
  rows.replaceChildren();
  const live = new Set();
  if (!streams.length) emptyRow(rows, 8, 'No live streams.');
  for (const s of streams) {
    const key = s.key || `${s.app}/${s.name}`;
    live.add(key);
    const spark = sample(key, s.recv_bytes || 0, now);
    const tr = rows.insertRow();
    tr.dataset.key = key;
    tr.insertCell().textContent = key;
    tr.insertCell().textContent = s.publish && s.publish.active ? text(s.protocol) : 'grace';
    tr.insertCell().textContent = videoText(s.video);
    tr.insertCell().textContent = audioText(s.audio);
    const v = s.viewers || {};
    tr.insertCell().textContent = Object.keys(v).length ? Object.entries(v).map(([p, n]) => `${p} ${n}`).join(', ') : '0';
    // The first refresh has no rate of its own yet: the API's 30 s average, if any.
    const last = spark.length ? spark[spark.length - 1] : (s.kbps && s.kbps.recv_30s) || null;
    const inCell = tr.insertCell();
    inCell.className = 'num';
    inCell.textContent = fmtKbps(last);
    const outCell = tr.insertCell();
    outCell.className = 'num';
    outCell.textContent = fmtKbps(s.kbps && s.kbps.send_30s);
    const c = document.createElement('canvas');
    c.className = 'spark';
    c.dataset.samples = String(spark.length);
    tr.insertCell().append(c);
    drawSpark(c, spark);
  }
  for (const k of history.keys()) if (!live.has(k)) history.delete(k);
}

async function kick(id, btn) {
  btn.disabled = true;
  try {
    await api(`clients/${encodeURIComponent(id)}`, { method: 'DELETE' });
    estuary.kicked.push(id);
    await refresh();
  } catch (e) {
    estuary.error = `Kick ${id} failed: ${e.message}`;
    setStatus($('status'), 'error', estuary.error);
    $('status').hidden = false;
    btn.disabled = false;
  }
}

function renderClients(clients) {
  const rows = $('client-rows');
  rows.replaceChildren();
  if (!clients.length) emptyRow(rows, 9, 'No clients.');
  for (const c of clients) {
    const tr = rows.insertRow();
    tr.dataset.id = c.id;
    tr.insertCell().textContent = c.id;
    tr.insertCell().textContent = c.publish ? 'publisher' : 'viewer';
    tr.insertCell().textContent = text(c.protocol);
    tr.insertCell().textContent = text(c.stream);
    tr.insertCell().textContent = text(c.remote_addr || c.ip);
    tr.insertCell().textContent = fmtBytes(c.send_bytes);
    tr.insertCell().textContent = fmtBytes(c.recv_bytes);
    tr.insertCell().textContent = fmtDuration(c.alive);
    const b = document.createElement('button');
    b.className = 'kick';
    b.textContent = 'Kick';
    b.dataset.id = c.id;
    b.title = `Close client ${c.id} (DELETE /api/v1/clients/${c.id})`;
    b.addEventListener('click', () => kick(c.id, b));
    tr.insertCell().append(b);
  }
}

function renderCluster(cl) {
  $('role').textContent = cl && cl.role ? `· ${cl.role}${cl.node_id ? ' ' + cl.node_id : ''}` : '';
  const nodes = $('node-rows'), leases = $('lease-rows'), relays = $('relay-rows');
  nodes.replaceChildren(); leases.replaceChildren(); relays.replaceChildren();
  for (const n of (cl && cl.nodes) || []) {
    const tr = nodes.insertRow();
    tr.insertCell().textContent = n.node_id + (n.self || n.node_id === cl.node_id ? ' (this node)' : '');
    tr.insertCell().textContent = text(n.role);
    tr.insertCell().textContent = text(n.advertise);
    const st = tr.insertCell();
    st.textContent = n.alive === false ? 'down' : 'alive';
    st.className = n.alive === false ? 'down' : 'up';
  }
  if (!nodes.rows.length) emptyRow(nodes, 4, 'No nodes.');
  for (const l of (cl && cl.leases) || []) {
    const tr = leases.insertRow();
    tr.insertCell().textContent = l.key;
    tr.insertCell().textContent = text(l.node_id);
  }
  if (!leases.rows.length) emptyRow(leases, 2, 'No leases.');
  for (const r of (cl && cl.relays) || []) {
    const tr = relays.insertRow();
    tr.insertCell().textContent = r.key;
    tr.insertCell().textContent = 'served';
    tr.insertCell().textContent = `${r.relays} session(s)`;
    tr.insertCell().textContent = 'up';
  }
  for (const p of (cl && cl.pulls) || []) {
    const tr = relays.insertRow();
    tr.insertCell().textContent = p.key;
    tr.insertCell().textContent = 'pulled';
    tr.insertCell().textContent = `${text(p.node_id)} ${text(p.relay_url)}`;
    const st = tr.insertCell();
    st.textContent = p.up ? 'up' : 'down';
    st.className = p.up ? 'up' : 'down';
  }
  if (!relays.rows.length) emptyRow(relays, 4, 'No relays.');
}

function renderSummary(server, d) {
  $('s-node').textContent = text(server);
  if (!d) return;
  $('s-streams').textContent = text(d.streams);
  $('s-clients').textContent = text(d.clients);
  $('s-cpu').textContent = d.self ? `${(d.self.cpu_percent || 0).toFixed(1)} %` : '–';
  $('s-mem').textContent = d.self ? fmtBytes((d.self.mem_kbyte || 0) * 1000) : '–';
  $('s-uptime').textContent = d.self ? fmtDuration(d.self.uptime_seconds) : '–';
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const [st, cl, cluster, sum] = await Promise.all([
      api('streams'), api('clients'), api('cluster').catch(() => null), api('summaries').catch(() => null),
    ]);
    const now = performance.now();
    estuary.streams = Array.isArray(st.streams) ? st.streams : [];
    estuary.clients = Array.isArray(cl.clients) ? cl.clients : [];
    estuary.cluster = cluster ? cluster.cluster : null;
    renderStreams(estuary.streams, now);
    renderClients(estuary.clients);
    renderCluster(estuary.cluster);
    renderSummary(st.server, sum && sum.data);
    estuary.error = null;
    estuary.updated = Date.now();
    $('status').hidden = true;
    $('updated').textContent = `· updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    estuary.error = `Could not read the API: ${e.message}`;
    setStatus($('status'), 'error', estuary.error);
    $('status').hidden = false;
  } finally {
    busy = false;
  }
}

refresh();
setInterval(refresh, 2000);
