// Sticky bars that never hide content (issue 15). watchHeight keeps a CSS
// variable on the root element equal to a bar's height; the page's CSS
// turns it into scroll-padding, so whatever is scrolled into view (by
// focus, scrollIntoView or a tap's scroll) lands clear of the bar. Used by
// the phone's action bar (phone-review.js) and the desktop's top bar and
// File bar (desktop.js).
export function watchHeight(bar, name) {
  const set = () => document.documentElement.style.setProperty(name, `${Math.ceil(bar.getBoundingClientRect().height)}px`);
  set();
  if (globalThis.ResizeObserver) new ResizeObserver(set).observe(bar);
  window.addEventListener('resize', set);
}
