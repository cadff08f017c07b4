// A small seeded PRNG (mulberry32) and the random choices the corpus generator makes.
// Deterministic: the same seed gives the same corpus on every machine.

export function mixSeed(...parts) {
  // FNV-1a over the decimal parts, so (seed, n) pairs map to well-spread 32-bit seeds.
  let h = 0x811c9dc5;
  for (const p of parts) {
    for (const ch of String(p) + "/") {
      h ^= ch.charCodeAt(0);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h >>> 0;
}

export class Rng {
  constructor(seed) {
    this.state = seed >>> 0;
  }
  // Uniform in [0, 1).
  next() {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  // Integer in [lo, hi] inclusive.
  int(lo, hi) {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p) {
    return this.next() < p;
  }
  pick(arr) {
    return arr[Math.floor(this.next() * arr.length)];
  }
  // Picks a key of `weights` ({name: weight}) with probability proportional to weight.
  weighted(weights) {
    let total = 0;
    for (const k in weights) total += weights[k];
    let r = this.next() * total;
    for (const k in weights) {
      r -= weights[k];
      if (r < 0) return k;
    }
    return Object.keys(weights)[0];
  }
  bytes(n) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
  hex(nBytes) {
    return Buffer.from(this.bytes(nBytes)).toString("hex");
  }
  shuffle(arr) {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [arr[i], arr[j]] = [arr[j], arr[i]];
    }
    return arr;
  }
}
