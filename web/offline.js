// Offline use, for every page of the site (index.html and album.html each call keepOffline): registers the service
// worker (sw.js) for this build. The build is named by the start of manifest.json's sha256, read fresh from the
// network (a query string the service worker passes through): when it differs from the installed worker's, the new
// worker installs the new build's files and replaces the old cache.
// State for scripts and tests: document.documentElement.dataset.offline = "installing" | "ready" |
// "unavailable" | "failed".

const HASH_CHARS = 16;
// After the page's start, successful or not: an install reads what the page downloaded from the HTTP cache, and a
// new build's activation takes over the page's requests (its files would not match the build the page started).
const AFTER_START_MS = 1500;

function setState(state) {
  document.documentElement.dataset.offline = state;
}

function buildOf(worker) {
  return worker ? new URL(worker.scriptURL).searchParams.get("m") : null;
}

function stdlibOf(worker) {
  return worker ? new URL(worker.scriptURL).searchParams.get("stdlib") : null;
}

async function latestBuild(siteUrl) {
  try {
    const response = await fetch(new URL(`manifest.json?latest=${Date.now()}`, siteUrl), { cache: "no-store" });
    if (!response.ok) return null;
    const digest = await crypto.subtle.digest("SHA-256", await response.arrayBuffer());
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, HASH_CHARS);
  } catch {
    return null; // offline, or the site is down: keep whatever is installed
  }
}

// ready: the page's start. The copy is brought up to date once it settles, either way: the build the copy holds may
// no longer be the site's (and may be why the start failed). onUpdate(): called once a newer build than the one
// this page runs has replaced the offline copy (in this tab or another). bootTimings(): the worker's boot timings
// (or a promise of them), whose `stdlib` tells the service worker which files a later visit reads (sw.js, unread()).
// idle(): a promise that the page has no work the install would slow down (the album's photos); awaited last.
export async function keepOffline({ ready = Promise.resolve(), onUpdate = () => {}, bootTimings = () => null,
  idle = () => null } = {}) {
  const container = navigator.serviceWorker;
  if (!container || !window.isSecureContext) {
    setState("unavailable");
    return;
  }
  const siteUrl = new URL("./", import.meta.url); // this file sits at the site root, like sw.js
  const running = buildOf(container.controller); // null: this page did not come from the offline copy
  try {
    await ready.catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, AFTER_START_MS));
    const registration = await container.getRegistration(siteUrl.href);
    const installed = buildOf(registration?.active);
    const build = await latestBuild(siteUrl);
    const stdlib = await Promise.resolve().then(bootTimings).then((t) => t?.stdlib ?? null, () => null);
    // Kept: the copy of this build for the set this boot read (a boot that could not tell keeps whichever is there).
    if (!build || (build === installed && (!stdlib || stdlib === stdlibOf(registration?.active)))) {
      setState(installed ? "ready" : "unavailable");
      return;
    }
    await idle();
    setState("installing");
    // Any build's activation counts: another tab may have installed a newer one than this tab asked for.
    container.addEventListener("message", ({ data }) => {
      if (data?.type !== "wasmvision-offline") return;
      setState("ready");
      if (data.updated && data.version !== running) onUpdate();
    });
    container.startMessages();
    const script = new URL(`sw.js?m=${build}`, siteUrl);
    if (stdlib) script.searchParams.set("stdlib", stdlib);
    const fresh = await container.register(script, { scope: siteUrl.pathname });
    const worker = fresh.installing || fresh.waiting;
    if (!worker && buildOf(fresh.active) === build) setState("ready"); // installed meanwhile, by another tab
    worker?.addEventListener("statechange", async () => {
      if (worker.state !== "redundant") return;
      // Redundant also when a newer build (another tab's) replaced it: a failure only if the copy did not move on.
      const now = await container.getRegistration(siteUrl.href);
      const active = buildOf(now?.active);
      setState(active && active !== installed ? "ready" : "failed");
    });
  } catch (err) {
    console.warn("wasmvision: offline copy unavailable:", err.message);
    setState("failed");
  }
}
