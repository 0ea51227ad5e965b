// Small helpers shared by Estuary's pages.

export const $ = (id) => document.getElementById(id);

/** Shows a state and a message in a status box (data-state drives its colour). */
export function setStatus(el, state, msg) {
  el.dataset.state = state;
  if (msg !== undefined) el.textContent = msg;
}

export function fmtKbps(kbps) {
  if (!kbps) return '–';
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(2)} Mbit/s` : `${kbps} kbit/s`;
}

/** The page's query string as a plain object. */
export function queryParams() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

/** Explains a getUserMedia failure to a person. */
export function describeMediaError(e) {
  switch (e && e.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera or microphone access was refused. Allow it for this site in the browser (the icon in the address bar) and press Start again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera or microphone was found that can do this. Plug one in or pick a smaller camera size.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera or microphone could not be opened: another program may be using it.';
    default:
      return `The camera or microphone could not be opened: ${e && e.message ? e.message : e}`;
  }
}

/** Explains an HTTP error from WHIP/WHEP, with the status code and the body the server sent. */
export function describeServerError(e, what) {
  const hints = {
    400: 'the request was refused as malformed',
    401: 'this server wants a token',
    403: 'this stream key is not allowed',
    404: what === 'play' ? 'no such stream is live right now' : 'no such endpoint on this server',
    409: 'another publisher is already live on this stream key',
    415: 'the server wanted application/sdp',
    503: 'the server is busy or draining',
  };
  const hint = hints[e.status] ? ` (${hints[e.status]})` : '';
  return `The server answered ${e.status}${hint}: ${e.body || '(empty body)'}`;
}
