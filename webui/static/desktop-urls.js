// The addresses the desktop loads. The server signs image URLs and names
// the QR image under its public URL (--public-url), which phones use. A
// desktop may reach the same server by another address, e.g. 127.0.0.1
// on the laptop running it while --public-url is the laptop's LAN
// address: under the strict CSP (img-src 'self') those absolute URLs are
// another origin and do not load. The page came from this very server, so
// a URL on the public origin is fetched from the page's own origin
// instead, by path; any other origin (an S3 bucket) is left alone.
let publicOrigin = '';

// setPublicOrigin records the server's public origin from a mobileUrl.
export function setPublicOrigin(mobileUrl) {
  try {
    publicOrigin = new URL(mobileUrl).origin;
  } catch {
    publicOrigin = '';
  }
}

// localURL returns url as this page's origin should load it.
export function localURL(url) {
  if (!url || !publicOrigin) return url;
  try {
    const u = new URL(url, location.href);
    if (u.origin === publicOrigin && u.origin !== location.origin) return u.pathname + u.search + u.hash;
  } catch { /* not a URL: leave it */ }
  return url;
}

// loopbackHost returns the host of url when no phone could reach it
// (127.0.0.0/8, ::1, localhost), else ''.
export function loopbackHost(url) {
  let host = '';
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return '';
  }
  if (host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host)) return host;
  return '';
}
