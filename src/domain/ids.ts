// Identifiers and secrets. Uses only Web Crypto (present in workerd and Node ≥ 20), so it runs in both.
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function randomChars(alphabet: string, n: number): string {
  // Rejection sampling keeps every character uniformly likely.
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < n) {
    const buf = crypto.getRandomValues(new Uint8Array(n * 2));
    for (const b of buf) {
      if (b < limit) out += alphabet[b % alphabet.length];
      if (out.length === n) break;
    }
  }
  return out;
}

let lastTime = 0;
let lastRandom = "";

/** Lexicographically time-ordered id (ULID layout): newest-first listing is an index scan. */
export function ulid(now = Date.now()): string {
  let t = now;
  let time = "";
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  // Monotonic within one millisecond so ids minted in a burst stay in submit order.
  if (now === lastTime && lastRandom) {
    lastRandom = incrementBase32(lastRandom);
  } else {
    lastTime = now;
    lastRandom = randomChars(CROCKFORD, 16);
  }
  return time + lastRandom;
}

function incrementBase32(s: string): string {
  const chars = s.split("");
  for (let i = chars.length - 1; i >= 0; i--) {
    const v = CROCKFORD.indexOf(chars[i]!);
    if (v < 31) {
      chars[i] = CROCKFORD[v + 1]!;
      return chars.join("");
    }
    chars[i] = "0";
  }
  return chars.join("");
}

export const newId = (prefix: string) => `${prefix}_${ulid().toLowerCase()}`;

/** 190 bits of entropy; base62 so it never contains the "_" used as a separator in tokens. */
export const newSecret = () => randomChars(BASE62, 32);

export const TENANT_ID_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const POOL_ID_RE = TENANT_ID_RE;

/** Token kinds carry the object they belong to, so the gateway can route the check to that object. */
export type TokenKind = "tenant" | "worker" | "join";
const PREFIX: Record<TokenKind, string> = { tenant: "gtk", worker: "gwk", join: "gjt" };

export function makeToken(kind: TokenKind, owner: string): string {
  return `${PREFIX[kind]}_${owner}_${newSecret()}`;
}

export function parseToken(token: string): { kind: TokenKind; owner: string } | null {
  const m = /^(gtk|gwk|gjt)_([a-z0-9][a-z0-9-]{0,80})_([0-9A-Za-z]{32})$/.exec(token);
  if (!m) return null;
  const kind = (Object.keys(PREFIX) as TokenKind[]).find((k) => PREFIX[k] === m[1])!;
  return { kind, owner: m[2]! };
}

export async function sha256Hex(s: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Constant-time comparison of two equal-length hex digests (length is public). */
export function timingSafeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
