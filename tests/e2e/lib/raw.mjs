// A raw automerge-repo WebSocket peer (`ws` + cbor-x, encoded as the npm clients do:
// spec/automerge.md §3.1), for feeding the server frames no real client would send.
import { importFrom, INTEROP_DIR, withTimeout, waitFor } from './util.mjs';

const { default: WebSocket } = await importFrom(INTEROP_DIR, 'ws', 'wrapper.mjs');
const cbor = await importFrom(INTEROP_DIR, 'cbor-x');
const encoder = new cbor.Encoder({ tagUint8Array: false, useRecords: false });

export { WebSocket };
export const encode = (value) => encoder.encode(value);
export const decode = (bytes) => cbor.decode(bytes);

// Opens `url` and resolves { status } for a refused upgrade (e.g. 401) or { ws } once open.
export function openRaw(url, ms = 5000) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
        res.on('error', () => resolve({ status: res.statusCode, body }));
      });
      ws.on('open', () => resolve({ ws }));
      ws.on('error', (e) => reject(e));
    }),
    ms,
    `open ${url}`,
  );
}

/**
 * A joined raw peer: sends `join`, waits for `peer`. Collects every frame the server
 * sends ({ binary, bytes, message }), and the close ({ code, reason }).
 */
export async function joinRaw(url, { peerId = `raw-${Math.random().toString(36).slice(2, 10)}`, ms = 5000 } = {}) {
  const { ws, status } = await openRaw(url, ms);
  if (!ws) throw new Error(`upgrade refused with HTTP ${status}`);
  const peer = {
    ws,
    peerId,
    frames: [],
    closed: null,
    closedPromise: null,
    serverPeerId: null,
    send(value) {
      ws.send(value instanceof Uint8Array || Buffer.isBuffer(value) ? value : encode(value), { binary: true });
    },
    sendText(text) {
      ws.send(text, { binary: false });
    },
    messages() {
      return this.frames.filter((f) => f.message).map((f) => f.message);
    },
    // Resolves the first message (from `from` on) matching `pred`.
    async waitMessage(pred, ms2 = 3000, what = 'a message', from = 0) {
      return waitFor(() => this.frames.slice(from).find((f) => f.message && pred(f.message))?.message, ms2, what);
    },
    close() {
      try {
        ws.terminate();
      } catch {
        // already gone
      }
    },
  };
  peer.closedPromise = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      peer.closed = { code, reason: reason.toString() };
      resolve(peer.closed);
    });
  });
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(data);
    let message;
    let error;
    try {
      message = decode(bytes);
    } catch (e) {
      error = e.message;
    }
    peer.frames.push({ binary: isBinary, bytes, message, error });
  });
  peer.send({ type: 'join', senderId: peerId, peerMetadata: { isEphemeral: true }, supportedProtocolVersions: ['1'] });
  // Fails fast, saying how, if the server answers with `error` or closes instead.
  const outcome = await waitFor(() => {
    const m = peer.messages().find((x) => x.type === 'peer' || x.type === 'error');
    if (m) return m;
    if (peer.closed) return { type: 'closed', ...peer.closed };
    return null;
  }, ms, 'the peer message');
  if (outcome.type !== 'peer') {
    ws.terminate();
    const how = outcome.type === 'error' ? `error message "${outcome.message}"` : `closed ${outcome.code} "${outcome.reason}"`;
    throw Object.assign(new Error(`join refused: ${how}`), { refused: how });
  }
  peer.serverPeerId = outcome.senderId;
  return peer;
}
