// Page life cycle: a page registers what to release when the user leaves it (the router calls
// `leave()` before rendering the next page), e.g. the case viewer's stream.

const cleanups = [];

/** Runs `fn` when the current page is left. */
export function onLeave(fn) {
  cleanups.push(fn);
}

/** Releases everything the current page registered. */
export function leave() {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try {
      fn();
    } catch (err) {
      console.warn("page cleanup failed", err);
    }
  }
}
