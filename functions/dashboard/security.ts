// Response headers for the dashboard. The page handles API keys and renders tenant-controlled text (job
// names, users, log output), so it is locked down by the browser as well as by careful code:
// - scripts, styles and connections only from this origin: no inline script to inject into, no CDN;
// - Trusted Types with no policy: assigning a string to innerHTML (or any other HTML/script sink) throws,
//   so every value reaches the DOM as text, enforced by the browser rather than by review;
// - form-action 'none': if the script ever failed to load, the sign-in form still cannot submit the key
//   into a URL (a GET form would put it in the query string, the history and the access logs);
// - no framing (clickjacking), no referrer (hash routes carry job ids), no MIME sniffing.
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

const COMMON = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
} as const;

/** The HTML page: revalidated on every load so a deploy is picked up at once. */
export const PAGE_HEADERS = {
  ...COMMON,
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cache-control": "no-cache",
} as const;

/** Scripts and styles: unversioned URLs, so revalidated by ETag (a 304 costs one tiny round trip) rather
 * than cached for a fixed time, which could mix module versions across a deploy. */
export const ASSET_HEADERS = { ...COMMON, "cache-control": "no-cache" } as const;
