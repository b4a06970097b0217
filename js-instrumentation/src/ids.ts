const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push((i < 16 ? '0' : '') + i.toString(16));

const cryptoObj: { getRandomValues?<T extends ArrayBufferView>(a: T): T } | undefined =
  typeof globalThis !== 'undefined' ? (globalThis as { crypto?: { getRandomValues?<T extends ArrayBufferView>(a: T): T } }).crypto : undefined;

// One pooled buffer refilled in blocks: getRandomValues per id is the dominant cost otherwise.
const POOL = new Uint8Array(4096);
let poolPos = POOL.length;

function randomHex(bytes: number): string {
  if (poolPos + bytes > POOL.length) {
    if (cryptoObj && typeof cryptoObj.getRandomValues === 'function') {
      cryptoObj.getRandomValues(POOL);
    } else {
      for (let i = 0; i < POOL.length; i++) POOL[i] = Math.floor(Math.random() * 256);
    }
    poolPos = 0;
  }
  let out = '';
  let allZero = true;
  for (let i = 0; i < bytes; i++) {
    const b = POOL[poolPos++];
    if (b !== 0) allZero = false;
    out += HEX[b];
  }
  // All-zero ids are invalid in W3C trace context; the chance is negligible but the fix is free.
  return allZero ? out.slice(0, -2) + '01' : out;
}

export function newTraceId(): string {
  return randomHex(16);
}

export function newSpanId(): string {
  return randomHex(8);
}
