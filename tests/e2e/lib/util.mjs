// Small helpers shared by the end-to-end tests: paths, package loading, bounded waits.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(E2E_DIR, '..', '..');
// npm folders: the 2.5.6 stack and the 1.2.1 stack (scripts/install-npm.sh installs both).
export const INTEROP_DIR = path.join(ROOT, 'tests', 'interop');
export const REPO1_DIR = path.join(INTEROP_DIR, 'repo1');

// Imports package `name` installed in `folder`/node_modules, picking the entry point
// node's ESM resolver would pick (exports "node"/"import", else main). The test files
// live outside the npm folders, so bare specifiers would not resolve from here.
export async function importFrom(folder, name, subpath = '') {
  const dir = path.join(folder, 'node_modules', name);
  const pkgFile = path.join(dir, 'package.json');
  if (!fs.existsSync(pkgFile)) {
    throw new Error(`${name} is not installed in ${folder}: run scripts/install-npm.sh`);
  }
  if (subpath) return import(pathToFileURL(path.join(dir, subpath)).href);
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
  let entry = pkg.main ?? 'index.js';
  let exp = pkg.exports;
  if (exp && typeof exp === 'object' && '.' in exp) exp = exp['.'];
  const pick = (e) => {
    if (typeof e === 'string') return e;
    if (e && typeof e === 'object') {
      for (const cond of ['node', 'import', 'default']) {
        if (cond in e) {
          const r = pick(e[cond]);
          if (r) return r;
        }
      }
    }
    return undefined;
  };
  entry = pick(exp) ?? entry;
  return import(pathToFileURL(path.join(dir, entry)).href);
}

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `gm-e2e-${prefix}-`));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// GM_E2E_TIME_SCALE (default 1) multiplies every bounded wait below (withTimeout,
// waitFor, and so every client and harness wait built on them): the sanitizer run
// (tests/e2e.cmake, label e2e-asan) sets 5 for a server built with ASan at -O0.
// Sleeps are not scaled: they give things time to happen, and no test passes because
// something did not happen during one.
export const TIME_SCALE = Number(process.env.GM_E2E_TIME_SCALE) > 0 ? Number(process.env.GM_E2E_TIME_SCALE) : 1;
export const scaled = (ms) => Math.round(ms * TIME_SCALE);

// Rejects with `what` if `promise` does not settle within `ms` (scaled).
export function withTimeout(promise, ms, what) {
  ms = scaled(ms);
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

// Polls `cond` (sync or async) every 20 ms until it is truthy; throws after `ms` (scaled).
export async function waitFor(cond, ms, what) {
  ms = scaled(ms);
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await cond();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(20);
  }
}

// Every file under `dir`, relative, sorted (for folder-layout assertions and messages).
export function listFiles(dir) {
  const out = [];
  const walk = (d, rel) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

// "xyz.groundmist.test" → <data>/xyz/groundmist/test (DESIGN.md "Data folder").
export function groupDir(data, group) {
  return path.join(data, ...group.split('.'));
}

// The NodeFS folder of one document inside a group folder (spec/automerge.md §4.3).
export function docDir(groupFolder, documentId) {
  return path.join(groupFolder, documentId.slice(0, 2), documentId.slice(2));
}
