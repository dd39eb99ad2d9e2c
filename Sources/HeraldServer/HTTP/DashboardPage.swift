/// The dashboard at `GET /` (issue #5): one self-contained page — no CDN, no external file — built on the
/// WebSocket and the API. The live event stream (the last stored events first, then live ones) with a topic
/// filter and pause; events per second over the last five minutes (from `/metrics`); modules; subscribers
/// with their delivery statistics, drops in red; consumer groups with lag bars and dead letters. A token is
/// taken from the page's `?token=` and sent with every request.
enum DashboardPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Herald</title>
        <style>
          :root { --bg:#0f1419; --panel:#171d24; --line:#252d37; --text:#d7dde4; --dim:#7d8893; --accent:#4fb3ff;
                  --good:#3ecf8e; --warn:#f5b942; --bad:#ff5c5c; --mono: ui-monospace, SFMono-Regular, Menlo, monospace; }
          * { box-sizing: border-box; }
          body { margin:0; background:var(--bg); color:var(--text); font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
          header { display:flex; align-items:center; gap:18px; padding:14px 22px; border-bottom:1px solid var(--line); }
          header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
          .pill { display:inline-flex; align-items:center; gap:6px; padding:3px 10px; border-radius:999px; background:var(--panel);
                  border:1px solid var(--line); color:var(--dim); font-size:12px; }
          .dot { width:8px; height:8px; border-radius:50%; background:var(--dim); }
          .dot.good { background:var(--good); } .dot.bad { background:var(--bad); } .dot.warn { background:var(--warn); }
          .kpi { margin-left:auto; display:flex; gap:22px; }
          .kpi div { text-align:right; } .kpi b { display:block; font-size:18px; font-variant-numeric:tabular-nums; }
          .kpi span { color:var(--dim); font-size:11px; text-transform:uppercase; letter-spacing:.6px; }
          main { display:grid; grid-template-columns: minmax(0,3fr) minmax(0,2fr); gap:16px; padding:16px 22px; }
          section { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:14px 16px; min-width:0; }
          section h2 { margin:0 0 10px; font-size:12px; color:var(--dim); text-transform:uppercase; letter-spacing:.8px;
                       display:flex; align-items:center; gap:10px; }
          section h2 .right { margin-left:auto; text-transform:none; letter-spacing:0; }
          .col { display:flex; flex-direction:column; gap:16px; min-width:0; }
          canvas { width:100%; height:150px; display:block; }
          .controls { display:flex; gap:8px; margin-bottom:10px; }
          input { flex:1; background:var(--bg); border:1px solid var(--line); color:var(--text); border-radius:6px; padding:6px 9px;
                  font-family:var(--mono); font-size:13px; }
          button { background:var(--line); color:var(--text); border:0; border-radius:6px; padding:6px 14px; cursor:pointer; font-size:13px; }
          button.on { background:var(--warn); color:#1b1b1b; }
          #events { list-style:none; margin:0; padding:0; height:440px; overflow:auto; font-family:var(--mono); font-size:12px; }
          #events li { display:grid; grid-template-columns: 96px 210px 1fr; gap:10px; padding:4px 6px; border-bottom:1px solid var(--line); }
          #events li:nth-child(odd) { background:rgba(255,255,255,.015); }
          #events .time { color:var(--dim); } #events .type { color:var(--accent); overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
          #events .body { color:var(--dim); overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
          table { width:100%; border-collapse:collapse; font-size:13px; }
          th { text-align:left; color:var(--dim); font-weight:500; font-size:11px; text-transform:uppercase; letter-spacing:.5px;
               padding:4px 6px; border-bottom:1px solid var(--line); }
          td { padding:5px 6px; border-bottom:1px solid var(--line); font-variant-numeric:tabular-nums; }
          td.num, th.num { text-align:right; }
          .bad { color:var(--bad); font-weight:600; } .muted { color:var(--dim); }
          .badge { padding:1px 8px; border-radius:999px; font-size:11px; background:var(--line); }
          .badge.good { background:rgba(62,207,142,.15); color:var(--good); } .badge.warn { background:rgba(245,185,66,.15); color:var(--warn); }
          .badge.bad { background:rgba(255,92,92,.15); color:var(--bad); }
          .group { padding:8px 0; border-bottom:1px solid var(--line); } .group:last-child { border-bottom:0; }
          .group .name { display:flex; gap:10px; align-items:baseline; } .group .name b { font-family:var(--mono); }
          .bars { display:grid; grid-template-columns: 34px 1fr 70px; gap:4px 8px; align-items:center; margin-top:6px; font-size:12px; }
          .bar { height:8px; background:var(--line); border-radius:4px; overflow:hidden; }
          .bar i { display:block; height:100%; background:var(--accent); }
          .bar i.warn { background:var(--warn); } .bar i.bad { background:var(--bad); }
          .empty { color:var(--dim); font-style:italic; padding:6px; }
          #error { color:var(--bad); font-size:12px; min-height:16px; }
        </style>
        </head>
        <body>
        <header>
          <h1>Herald</h1>
          <span class="pill"><span id="ready-dot" class="dot"></span><span id="ready">connecting…</span></span>
          <span class="pill"><span id="ws-dot" class="dot"></span><span id="ws">stream closed</span></span>
          <div class="kpi">
            <div><b id="rate">–</b><span>events/s</span></div>
            <div><b id="stored">–</b><span>log size</span></div>
            <div><b id="conns">–</b><span>connections</span></div>
          </div>
        </header>
        <main>
          <div class="col">
            <section>
              <h2>Events per second <span class="right muted" id="window">last 5 minutes</span></h2>
              <canvas id="chart" width="900" height="150"></canvas>
            </section>
            <section>
              <h2>Live events <span class="right muted"><span id="count">0</span> shown<span id="held"></span></span></h2>
              <div class="controls">
                <input id="filter" value="#" spellcheck="false" aria-label="topic filter" title="A topic pattern: block.new.*, tx.#, #">
                <button id="apply">Filter</button>
                <button id="pause">Pause</button>
              </div>
              <div id="error"></div>
              <ul id="events"></ul>
            </section>
          </div>
          <div class="col">
            <section>
              <h2>Modules</h2>
              <table><thead><tr><th>name</th><th>version</th><th>state</th><th>health</th><th class="num">restarts</th></tr></thead>
              <tbody id="modules"></tbody></table>
            </section>
            <section>
              <h2>Subscribers</h2>
              <table><thead><tr><th>module</th><th class="num">delivered</th><th class="num">failed</th><th class="num">dropped</th></tr></thead>
              <tbody id="subscribers"></tbody></table>
            </section>
            <section>
              <h2>Consumer groups</h2>
              <div id="groups"></div>
            </section>
          </div>
        </main>
        <script>
        "use strict";
        const token = new URLSearchParams(location.search).get("token");
        const headers = token ? { Authorization: "Bearer " + token } : {};
        const $ = (id) => document.getElementById(id);
        const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&":"&amp;", "<":"&lt;", ">":"&gt;", '"':"&quot;", "'":"&#39;" }[c]));
        const fmt = (n) => n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : n > 0 && n < 10 && n % 1 ? n.toFixed(1) : String(Math.round(n));
        const bytes = (n) => n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + " GiB" : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MiB" : (n / 1024).toFixed(0) + " KiB";
        const MAX_EVENTS = 300;
        let paused = false, held = [], shown = 0, socket = null;

        async function api(path) {
          const response = await fetch(path, { headers });
          if (!response.ok) throw new Error(path + ": " + response.status);
          return path === "/metrics" ? response.text() : response.json();
        }

        function addEvent(event, live) {
          if (paused && live) { held.push(event); $("held").textContent = " · " + held.length + " held"; return; }
          const list = $("events");
          const li = document.createElement("li");
          li.className = "event";
          li.dataset.id = event.event_id;
          const time = (event.timestamp || "").slice(11, 23);
          const where = event.chain_id != null ? event.event_type + "." + event.chain_id : event.event_type;
          const payload = event.payload === undefined ? "" : JSON.stringify(event.payload);
          li.innerHTML = `<span class="time">${esc(time)}</span><span class="type" title="${esc(where)}">${esc(where)}</span>` +
            `<span class="body" title="${esc(event.event_id)}">${esc(event.event_id)} ${esc(payload)}</span>`;
          list.prepend(li);
          while (list.children.length > MAX_EVENTS) list.lastChild.remove();
          shown = list.children.length;
          $("count").textContent = shown;
        }

        // The newest 50 stored events of the filter: the API reads forward from a time, so windows of the last
        // 2 s, 15 s, 2 min and 15 min are tried, narrowest first, until one holds 50. A window is read to the
        // end of the log: until a page leaves the cursor where it was (a short page is not the end, a page
        // looks at 100 000 records at most), 20 pages at most; beyond that, the narrower window's events,
        // which are the newest.
        async function lastStored(pattern) {
          const read = (from) => api("/v1/events?topic=" + encodeURIComponent(pattern) + "&from=" + encodeURIComponent(from) + "&limit=1000");
          let newest = [];
          for (const seconds of [2, 15, 120, 900]) {
            let from = new Date(Date.now() - seconds * 1000).toISOString(), events = [], ended = false;
            for (let pages = 0; pages < 21 && !ended; pages++) {
              const page = await read(from);
              events = events.concat(page.events).slice(-50);
              ended = page.events.length === 0 && page.next === from;
              from = page.next;
            }
            if (!ended) return newest.length ? newest : events;
            if (events.length >= 50) return events;
            newest = events;
          }
          return newest;
        }

        async function connect() {
          if (socket) { socket.onclose = null; socket.close(); }
          $("events").innerHTML = ""; $("error").textContent = "";
          const pattern = $("filter").value.trim() || "#";
          try {
            for (const event of await lastStored(pattern)) addEvent(event, false);
          } catch (error) { $("error").textContent = "stored events: " + error.message; }
          const url = new URL("/v1/ws", location.href);
          url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
          url.searchParams.set("topics", pattern);
          url.searchParams.set("buffer", "1000");
          if (token) url.searchParams.set("token", token);
          socket = new WebSocket(url);
          socket.onopen = () => { $("ws").textContent = "streaming " + pattern; $("ws-dot").className = "dot good"; };
          socket.onmessage = (message) => {
            const frame = JSON.parse(message.data);
            if (frame.op === "event") addEvent(frame.event, true);
            else if (frame.op === "error") $("error").textContent = frame.code + ": " + frame.message;
          };
          socket.onclose = () => { $("ws").textContent = "stream closed, retrying"; $("ws-dot").className = "dot bad"; setTimeout(connect, 3000); };
        }

        $("apply").onclick = connect;
        $("filter").onkeydown = (e) => { if (e.key === "Enter") connect(); };
        $("pause").onclick = () => {
          paused = !paused;
          $("pause").textContent = paused ? "Resume" : "Pause";
          $("pause").className = paused ? "on" : "";
          if (!paused) { const backlog = held; held = []; $("held").textContent = ""; for (const e of backlog) addEvent(e, true); }
        };

        // Events per second from herald_events_published_total, one point per poll, five minutes kept.
        const points = []; let lastTotal = null, lastTime = null;
        function metric(text, name) {
          let sum = 0, found = false;
          for (const line of text.split("\n")) {
            if (line.startsWith(name + " ") || line.startsWith(name + "{")) { sum += parseFloat(line.slice(line.lastIndexOf(" ") + 1)); found = true; }
          }
          return found ? sum : null;
        }
        function drawChart() {
          const canvas = $("chart"), ctx = canvas.getContext("2d");
          const w = canvas.width = canvas.clientWidth * devicePixelRatio, h = canvas.height = 150 * devicePixelRatio;
          ctx.clearRect(0, 0, w, h);
          const max = Math.max(1, ...points.map((p) => p.rate)) * 1.15, now = Date.now(), span = 5 * 60 * 1000;
          ctx.strokeStyle = "#252d37"; ctx.lineWidth = 1; ctx.fillStyle = "#7d8893"; ctx.font = (11 * devicePixelRatio) + "px system-ui";
          for (let i = 0; i <= 3; i++) {
            const y = h - 14 * devicePixelRatio - (h - 24 * devicePixelRatio) * i / 3;
            ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
            ctx.fillText(fmt(max * i / 3), 4, y - 3);
          }
          if (points.length < 2) return;
          const x = (t) => w - (now - t) / span * w, y = (r) => h - 14 * devicePixelRatio - (h - 24 * devicePixelRatio) * r / max;
          const gradient = ctx.createLinearGradient(0, 0, 0, h);
          gradient.addColorStop(0, "rgba(79,179,255,.35)"); gradient.addColorStop(1, "rgba(79,179,255,0)");
          ctx.beginPath(); ctx.moveTo(x(points[0].t), y(0));
          for (const p of points) ctx.lineTo(x(p.t), y(p.rate));
          ctx.lineTo(x(points[points.length - 1].t), y(0)); ctx.fillStyle = gradient; ctx.fill();
          ctx.beginPath(); for (const [i, p] of points.entries()) (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(p.t), y(p.rate));
          ctx.strokeStyle = "#4fb3ff"; ctx.lineWidth = 2 * devicePixelRatio; ctx.stroke();
        }

        function render(modules, stats, groups) {
          $("modules").innerHTML = modules.modules.length ? modules.modules.map((m) => {
            const health = m.health === null ? "" : m.health === "healthy" ? "good" : m.health === "degraded" ? "warn" : "bad";
            const loaded = m.state === "running" || (m.state === "external" && m.loaded_at !== null);
            const state = loaded ? "good" : m.state === "failed" ? "bad" : "warn";
            return `<tr data-module="${esc(m.name)}"><td>${esc(m.name)}</td><td class="muted">${esc(m.version)}</td>` +
              `<td><span class="badge ${state}">${esc(m.state)}</span></td><td><span class="badge ${health}">${esc(m.health ?? "–")}</span></td>` +
              `<td class="num ${m.restarts ? "bad" : ""}">${m.restarts}</td></tr>`;
          }).join("") : `<tr><td colspan="5" class="empty">no module connected</td></tr>`;
          const names = Object.keys(stats.stats).sort();
          $("subscribers").innerHTML = names.length ? names.map((name) => {
            const s = stats.stats[name];
            return `<tr data-subscriber="${esc(name)}"><td>${esc(name)}</td><td class="num">${fmt(s.successful)}</td>` +
              `<td class="num ${s.failed ? "bad" : ""}">${fmt(s.failed)}</td><td class="num ${s.channel_full ? "bad" : ""}">${fmt(s.channel_full)}</td></tr>`;
          }).join("") : `<tr><td colspan="4" class="empty">no subscriber yet</td></tr>`;
          $("groups").innerHTML = groups.groups.length ? groups.groups.map((g) => {
            const most = Math.max(1, ...g.partitions.map((p) => p.head));
            const bars = g.partitions.map((p) => {
              const level = p.lag > 1000 ? "bad" : p.lag > 100 ? "warn" : "";
              const width = p.lag ? Math.max(2, 100 * p.lag / Math.max(most, p.lag)) : 0;
              return `<span class="muted">p${p.partition}</span><span class="bar"><i class="${level}" style="width:${width}%"></i></span>` +
                `<span class="num ${level}">${fmt(p.lag)} behind</span>`;
            }).join("");
            return `<div class="group" data-group="${esc(g.name)}"><div class="name"><b>${esc(g.name)}</b>` +
              `<span class="muted">${esc(g.topics.join(", "))} · ${g.members} member${g.members === 1 ? "" : "s"}</span>` +
              `<span class="${g.dead_letters ? "bad" : "muted"}" style="margin-left:auto">${g.dead_letters} dead letter${g.dead_letters === 1 ? "" : "s"}</span></div>` +
              `<div class="bars">${bars}</div></div>`;
          }).join("") : `<div class="empty">no consumer group</div>`;
        }

        async function poll() {
          try {
            const [ready, modules, stats, groups, metrics] = await Promise.all([
              fetch("/readyz", { headers }), api("/v1/modules"), api("/v1/stats"), api("/v1/groups"), api("/metrics").catch(() => "")]);
            $("ready").textContent = ready.ok ? "ready" : "not ready"; $("ready-dot").className = "dot " + (ready.ok ? "good" : "warn");
            render(modules, stats, groups);
            const total = metric(metrics, "herald_events_published_total"), now = Date.now();
            if (total !== null && lastTotal !== null) points.push({ t: now, rate: Math.max(0, (total - lastTotal) / ((now - lastTime) / 1000)) });
            if (total !== null) { lastTotal = total; lastTime = now; }
            while (points.length && now - points[0].t > 5 * 60 * 1000) points.shift();
            $("rate").textContent = points.length ? fmt(points[points.length - 1].rate) : "0";
            const size = metric(metrics, "herald_log_bytes"); $("stored").textContent = size === null ? "–" : bytes(size);
            const conns = metric(metrics, "herald_connections"); $("conns").textContent = conns === null ? "–" : fmt(conns);
            drawChart();
          } catch (error) {
            $("ready").textContent = "unreachable"; $("ready-dot").className = "dot bad";
          }
        }

        connect();
        // A second sample a second after the first, so the rate shows at once.
        poll().then(() => setTimeout(() => { poll(); setInterval(poll, 2000); }, 1000));
        </script>
        </body>
        </html>
        """#
}
