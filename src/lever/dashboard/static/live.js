// Live updates: the server sends an `index` event each time the index moves to a new block;
// the page then fetches its own fragment (?fragment=1) and swaps it in. No framework needed.
(function () {
  const main = document.getElementById("live");
  if (!main || !window.EventSource) return;
  const block = document.getElementById("indexed-block");
  const status = document.getElementById("live-status");
  let busy = false, again = false;
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const url = new URL(window.location.href);
      url.searchParams.set("fragment", "1");
      const response = await fetch(url, { headers: { "Accept": "text/html" } });
      if (response.ok) main.innerHTML = await response.text();
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }
  const source = new EventSource("/events");
  source.addEventListener("index", (e) => {
    const [b] = e.data.split(":");
    if (block && block.textContent !== b) { block.textContent = b; }
    status.classList.add("on");
    refresh();
  });
  source.onerror = () => status.classList.remove("on");
})();
