/// A small page at `/` that follows a run with `EventSource`: how a new user sees a live
/// stream in a browser (`/?workspace=ws_1&run=run_1`), and a page for browser tests.
enum ViewerPage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <title>Runlog</title>
    <style>
    body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; }
    #events { font: 12px/1.4 ui-monospace, monospace; white-space: pre-wrap; }
    .state { color: #666; }
    </style>
    </head>
    <body>
    <h1>Runlog</h1>
    <form id="pick"><label>workspace <input name="workspace" value="ws_1"></label>
    <label>run <input name="run" value="run_1"></label> <button>follow</button></form>
    <p class="state" id="state">pick a run</p>
    <div id="events"></div>
    <script>
    const params = new URLSearchParams(location.search);
    const form = document.getElementById("pick");
    const state = document.getElementById("state");
    const list = document.getElementById("events");
    window.received = [];
    window.streamState = "idle";
    if (params.get("workspace") && params.get("run")) {
      form.workspace.value = params.get("workspace");
      form.run.value = params.get("run");
      const url = `/v1/workspaces/${encodeURIComponent(form.workspace.value)}/runs/${encodeURIComponent(form.run.value)}/events`;
      // EventSource cannot send headers: a token travels as access_token (the server never logs it).
      const token = params.get("access_token");
      const source = new EventSource(token ? url + "?access_token=" + encodeURIComponent(token) : url);
      window.streamState = "connecting";
      source.onopen = () => { window.streamState = "open"; state.textContent = "live: " + url; console.log("runlog: open"); };
      const show = (event) => {
        window.received.push(Number(event.lastEventId));
        list.textContent += event.data + "\n";
        console.log("runlog: event " + event.lastEventId);
      };
      source.addEventListener("error", () => {
        // Closed for good (the run completed and was read to the end: 204), or reconnecting.
        window.streamState = source.readyState === EventSource.CLOSED ? "closed" : "reconnecting";
        state.textContent = window.streamState;
        console.log("runlog: " + window.streamState);
      });
      // Frames are named by event type and EventSource has no wildcard: listen to the common
      // lifecycle and console types, plus any listed in ?types=a.b,c.d
      const types = new Set(["run.started", "run.completed", "console.line"]);
      (params.get("types") || "").split(",").filter(Boolean).forEach(t => types.add(t));
      types.forEach(type => source.addEventListener(type, show));
    }
    </script>
    </body>
    </html>
    """#
}
