// Real npm automerge-repo clients, behind one small interface so a test can run with
// either stack:
//   "2.5.6"  @automerge/automerge-repo 2.5.6 + WebSocketClientAdapter, automerge 3.5.0
//            (tests/interop)
//   "1.2.1"  @automerge/automerge-repo 1.2.1 + BrowserWebSocketClientAdapter,
//            automerge 2.2.8 (tests/interop/repo1; what today's Groundmist apps run)
import { importFrom, INTEROP_DIR, REPO1_DIR, withTimeout, waitFor } from './util.mjs';

export const STACKS = ['2.5.6', '1.2.1'];

const stacks = new Map();
export async function loadStack(name) {
  if (stacks.has(name)) return stacks.get(name);
  const folder = name === '2.5.6' ? INTEROP_DIR : name === '1.2.1' ? REPO1_DIR : null;
  if (!folder) throw new Error(`unknown client stack ${name}`);
  const repoPkg = await importFrom(folder, '@automerge/automerge-repo');
  const ws = await importFrom(folder, '@automerge/automerge-repo-network-websocket');
  const fsPkg = await importFrom(folder, '@automerge/automerge-repo-storage-nodefs');
  const am = await importFrom(folder, '@automerge/automerge');
  // automerge 2.2.8's default export is the old API (strings as Text objects); the
  // repo 1.2.1 works with its `next` API, as apps do.
  const A = am.next ?? am;
  const BaseAdapter = ws.WebSocketClientAdapter ?? ws.BrowserWebSocketClientAdapter;
  // On reconnect the adapters detach their listeners from the old socket; if that
  // socket then fails (ECONNREFUSED while the server restarts), `ws` throws the
  // unhandled 'error' event. A no-op listener on every socket keeps that quiet.
  // The 1.2.1 adapter also throws from its own error handler for anything but
  // ECONNREFUSED (e.g. ECONNRESET when a server dies): an uncaught exception that
  // would hide what the test checks. Treat every socket error as a failed connection.
  class ClientAdapter extends BaseAdapter {
    onError = () => {};
    // With `recordSendErrors` (an array), a send on a socket that is no longer open is
    // recorded there instead of throwing. The adapters throw "Websocket not ready"
    // then, from inside the repo's message handling: 1.2.1 as an uncaught exception,
    // 2.5.6 inside DocHandle.update, which leaves the handle's document outdated.
    recordSendErrors = null;
    connect(...args) {
      super.connect(...args);
      this.socket?.on?.('error', () => {});
    }
    send(message) {
      if (this.recordSendErrors && this.socket && this.socket.readyState !== 1) {
        this.recordSendErrors.push(`${message.type} for ${message.documentId ?? '-'} on a socket in state ${this.socket.readyState}`);
        return;
      }
      return super.send(message);
    }
  }
  const stack = {
    name,
    v1: name === '1.2.1',
    Repo: repoPkg.Repo,
    repoPkg,
    ClientAdapter,
    ServerAdapter: ws.WebSocketServerAdapter ?? ws.NodeWSServerAdapter,
    NodeFS: fsPkg.NodeFSStorageAdapter,
    A,
  };
  stacks.set(name, stack);
  return stack;
}

const open = new Set();

// Closes every client still open (call from after()).
export async function closeAllClients() {
  await Promise.allSettled([...open].map((c) => c.close()));
}

/**
 * A client Repo. `url` may be null (no network); `connect(url)` adds one later.
 * Options: storageDir (NodeFS storage), retryInterval (ms between reconnects; the
 * adapters' default is 5 s, tests use less), peerId.
 */
export async function makeClient(stackName, url, { storageDir, retryInterval = 250, peerId, recordSendErrors } = {}) {
  const s = await loadStack(stackName);
  const adapters = url ? [new s.ClientAdapter(url, retryInterval)] : [];
  for (const a of adapters) a.recordSendErrors = recordSendErrors ?? null;
  peerId ??= `e2e-${stackName}-${Math.random().toString(36).slice(2, 10)}`;
  const repo = new s.Repo({
    network: [...adapters],
    storage: storageDir ? new s.NodeFS(storageDir) : undefined,
    peerId,
  });
  const client = new Client(s, repo, adapters, retryInterval, peerId);
  open.add(client);
  return client;
}

class Client {
  constructor(stack, repo, adapters, retryInterval, peerId) {
    this.peerId = peerId;
    this.stack = stack;
    this.A = stack.A;
    this.repo = repo;
    this.adapters = adapters;
    this.retryInterval = retryInterval;
    this.name = `${stack.name} client ${peerId}`;
  }

  connect(url) {
    const adapter = new this.stack.ClientAdapter(url, this.retryInterval);
    this.adapters.push(adapter);
    this.repo.networkSubsystem.addNetworkAdapter(adapter);
  }

  // Resolves once the server answered `join` with `peer`.
  async waitPeer(ms = 5000) {
    await waitFor(() => this.repo.peers.length > 0, ms, `${this.name}: peer message from the server`);
    return this.repo.peers[0];
  }

  serverPeerId() {
    return this.repo.peers[0];
  }

  // The storageId the server announced in its `peer` message (undefined if none).
  serverStorageId() {
    const p = this.serverPeerId();
    const sid = p ? this.repo.peerMetadataByPeerId[p]?.storageId : undefined;
    // Remembered, so the server's acknowledgements can be read after it went away.
    if (sid) this.lastServerStorageId = sid;
    return sid ?? this.lastServerStorageId;
  }

  create(value) {
    return this.repo.create(value);
  }

  /**
   * find() as an app does it, bounded by `ms`. Resolves { handle, state, ms } with state
   * "ready" or "unavailable" (2.x rejects find() for unavailable documents; the handle
   * stays in the repo's cache and becomes ready if the document arrives later).
   */
  async find(id, ms = 5000) {
    const t0 = performance.now();
    if (this.stack.v1) {
      const handle = this.repo.find(id);
      await withTimeout(handle.whenReady(['ready', 'unavailable']), ms, `${this.name}: find(${id})`);
      return { handle, state: handle.state, ms: performance.now() - t0 };
    }
    try {
      const handle = await withTimeout(this.repo.find(id), ms, `${this.name}: find(${id})`);
      return { handle, state: handle.state, ms: performance.now() - t0 };
    } catch (e) {
      if (!/unavailable/.test(e.message)) throw e;
      const documentId = this.stack.repoPkg.interpretAsDocumentId(id);
      return { handle: this.repo.handles[documentId], state: 'unavailable', ms: performance.now() - t0 };
    }
  }

  // The live document (undefined unless ready).
  doc(handle) {
    return this.stack.v1 ? handle.docSync() : handle.isReady() ? handle.doc() : undefined;
  }

  // Plain JS view of the live document.
  json(handle) {
    const d = this.doc(handle);
    return d === undefined ? undefined : this.A.toJS(d);
  }

  // Plain JS view of the document reloaded from its saved bytes (automerge 2.2.8 can
  // show a stale value for a conflicted key in a live document; spec §3.4a).
  savedJson(handle) {
    const d = this.doc(handle);
    return d === undefined ? undefined : this.A.toJS(this.A.load(this.A.save(d)));
  }

  // Hex change hashes, sorted.
  heads(handle) {
    const d = this.doc(handle);
    return d === undefined ? [] : [...this.A.getHeads(d)].sort();
  }

  change(handle, fn) {
    handle.change(fn);
  }

  // True once the server's sync state says it has every change of the document
  // (theirHeads from the server's messages equal our heads). Needs the server's
  // storageId in its `peer` message.
  ackedByServer(handle) {
    const sid = this.serverStorageId();
    if (!sid) return false;
    const mine = this.heads(handle);
    if (this.stack.v1) {
      const theirs = handle.getRemoteHeads(sid);
      return !!theirs && sameSet(theirs, mine);
    }
    const info = handle.getSyncInfo(sid);
    if (!info) return false;
    const { decodeHeads } = this.stack.repoPkg;
    const theirs = decodeHeads ? decodeHeads(info.lastHeads) : info.lastHeads;
    return sameSet(theirs, mine);
  }

  // The heads the server last reported for `handle` (hex, sorted; [] if none), from
  // the client's sync state: what the server has acknowledged.
  serverHeads(handle) {
    const sid = this.serverStorageId();
    if (!sid) return [];
    if (this.stack.v1) return [...(handle.getRemoteHeads(sid) ?? [])].sort();
    const info = handle.getSyncInfo(sid);
    if (!info) return [];
    return [...this.stack.repoPkg.decodeHeads(info.lastHeads)].sort();
  }

  // Waits until the server has every change of `handle` (ackedByServer), so another
  // client's find() cannot race ahead of the upload. Without a server storageId
  // there is no way to tell: waits 500 ms instead.
  async waitServerHas(handle, ms = 5000) {
    if (!this.serverStorageId()) {
      await new Promise((r) => setTimeout(r, 500));
      return false;
    }
    await waitFor(() => this.ackedByServer(handle), ms, `${this.name}: the server to acknowledge ${handle.documentId}`);
    return true;
  }

  broadcast(handle, message) {
    handle.broadcast(message);
  }

  onEphemeral(handle, fn) {
    handle.on('ephemeral-message', fn);
  }

  async close() {
    if (!open.has(this)) return;
    open.delete(this);
    try {
      if (this.stack.v1) {
        await withTimeout(this.repo.flush(), 5000, `${this.name}: flush`).catch(() => {});
        for (const a of this.adapters) {
          a.retryInterval = 0; // no reconnect after this close...
          // ...but a retry interval the adapter already runs (the server was down) still
          // calls connect(), and the repo lives on (1.2.1 has no shutdown): a sync it sends
          // after this would throw "Websocket not ready" on the closing socket, uncaught.
          a.connect = () => {};
          a.send = () => {};
          a.socket?.close();
        }
      } else {
        await withTimeout(this.repo.shutdown(), 5000, `${this.name}: shutdown`);
      }
    } catch {
      // best effort: the test process exits anyway
    }
  }
}

export function sameSet(a, b) {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}
