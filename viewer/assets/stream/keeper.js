// One peer connection per viewer session across cases: leaving a case page parks its viewer
// (detached from the page, connection up) for a moment; the next case page takes it and opens
// its case on the same connection (`open_case`), which skips ICE, DTLS and SCTP. A parked
// viewer nobody takes (the user went to the worklist, signed out, closed the tab) is destroyed
// after PARK_MS, which ends its stream session.

/** How long a parked viewer waits for the next case page. */
const PARK_MS = 1500;

let parked = null;
let timer = null;

/** Parks `viewer` (leaving its case page). */
export function park(viewer) {
  if (parked && parked !== viewer) parked.destroy();
  clearTimeout(timer);
  viewer.detach();
  viewer.parked = true;
  parked = viewer;
  timer = setTimeout(() => {
    if (parked === viewer) {
      parked = null;
      viewer.destroy();
    }
  }, PARK_MS);
}

/** The parked viewer, if there is one (it is no longer parked). */
export function take() {
  const viewer = parked;
  parked = null;
  clearTimeout(timer);
  if (viewer) viewer.parked = false;
  return viewer;
}
