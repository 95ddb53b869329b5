// Offline use: registers the service worker (sw.js) for this build. The build is named by the start of
// manifest.json's sha256, read fresh from the network (a query string the service worker passes through): when it
// differs from the installed worker's, the new worker installs the new build's files and replaces the old cache.
// State for scripts and tests: document.documentElement.dataset.offline = "installing" | "ready" |
// "unavailable" | "failed".

const HASH_CHARS = 16;

function setState(state) {
  document.documentElement.dataset.offline = state;
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

// onUpdate(): called once a new build has replaced an older one in the offline copy.
export async function keepOffline({ onUpdate = () => {} } = {}) {
  const container = navigator.serviceWorker;
  if (!container || !window.isSecureContext) {
    setState("unavailable");
    return;
  }
  const siteUrl = new URL("./", import.meta.url); // this file sits at the site root, like sw.js
  try {
    const registration = await container.getRegistration(siteUrl.href);
    const installed = registration?.active ? new URL(registration.active.scriptURL).searchParams.get("m") : null;
    const build = await latestBuild(siteUrl);
    if (!build || build === installed) {
      setState(installed ? "ready" : "unavailable");
      return;
    }
    setState("installing");
    container.addEventListener("message", ({ data }) => {
      if (data?.type !== "wasmvision-offline" || data.version !== build) return;
      setState("ready");
      if (data.updated) onUpdate();
    });
    container.startMessages();
    const fresh = await container.register(new URL(`sw.js?m=${build}`, siteUrl), { scope: siteUrl.pathname });
    const worker = fresh.installing || fresh.waiting;
    worker?.addEventListener("statechange", () => {
      if (worker.state === "redundant") setState("failed");
    });
  } catch (err) {
    console.warn("wasmvision: offline copy unavailable:", err.message);
    setState("failed");
  }
}
