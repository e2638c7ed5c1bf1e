// runlog.js: follow a Runlog run from a browser. One ES module, no build step; `runlog serve`
// serves it at /runlog.js, and clients/js/runlog.js is the same file.
//
//   import { followRun } from "/runlog.js";
//   const follower = followRun({ workspace: "ws_1", run: "run_1", onEvent: (event) => show(event) });
//   follower.close();
//
// Unlike a bare EventSource it sends a bearer token (refreshed before each reconnection),
// reconnects with backoff where EventSource gives up for good (any non-200, such as a 503 while
// the server restarts), de-duplicates by sequence, ends on the run's completion (or the
// server's 204), and explains refusals (401, 403, 404, 410) instead of retrying them.

/**
 * @typedef {object} RunEvent
 * @property {number} sequence
 * @property {string} type
 * @property {string} created_at
 * @property {string} [event_id]
 * @property {string} [source]
 * @property {any} [payload]
 */

/**
 * @typedef {object} FollowOptions
 * @property {string} workspace
 * @property {string} run
 * @property {string} [baseUrl] Where the server is ("" for this page's origin).
 * @property {number} [after] Start after this sequence (0: from the beginning).
 * @property {string[]} [types] Only these types (`"run.*"` matches a prefix), as the server's `types`.
 * @property {string | (() => string | Promise<string>)} [token] A bearer token, or a function
 *   called before every connection that returns a fresh one.
 * @property {(event: RunEvent) => void} [onEvent] Each event once, in order.
 * @property {(status: "connecting" | "open" | "reconnecting" | "ended" | "closed") => void} [onStatus]
 * @property {() => void} [onEnd] The run is completed and every event was delivered.
 * @property {(error: {status: number, problem: any}) => void} [onError] A refusal that
 *   retrying cannot fix (400, 401, 403, 404, 410); following stops.
 * @property {number} [maxRetryDelay] The longest pause between reconnections, in ms (5000).
 */

const RETRYABLE = new Set([429, 502, 503, 504]);

/**
 * Follows a run's events: replay, then live, across any number of reconnections.
 * @param {FollowOptions} options
 * @returns {{ close(): void, readonly lastSequence: number }}
 */
export function followRun(options) {
  const { workspace, run, baseUrl = "", types, token, onEvent, onStatus, onEnd, onError } = options;
  const maxRetryDelay = options.maxRetryDelay ?? 5000;
  let last = options.after ?? 0;
  let stopped = false;
  let controller = null;
  let attempt = 0;
  let first = true;

  const status = (value) => { if (onStatus) onStatus(value); };
  const path = `${baseUrl}/v1/workspaces/${encodeURIComponent(workspace)}/runs/${encodeURIComponent(run)}/events`;
  const url = types && types.length ? `${path}?types=${encodeURIComponent(types.join(","))}` : path;

  async function connect() {
    while (!stopped) {
      status(first ? "connecting" : "reconnecting");
      first = false;
      let wait = null;
      try {
        const headers = { Accept: "text/event-stream" };
        if (last > 0) headers["Last-Event-ID"] = String(last);
        const bearer = typeof token === "function" ? await token() : token;
        if (bearer) headers.Authorization = `Bearer ${bearer}`;
        controller = new AbortController();
        const response = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
        if (response.status === 204) return finish();
        if (RETRYABLE.has(response.status)) {
          const after = Number(response.headers.get("Retry-After"));
          wait = Number.isFinite(after) && after > 0 ? after * 1000 : null;
        } else if (!response.ok) {
          let problem = null;
          try { problem = await response.json(); } catch { problem = { detail: response.statusText }; }
          stopped = true;
          status("closed");
          if (onError) onError({ status: response.status, problem });
          return;
        } else {
          status("open");
          if (await read(response.body)) return finish();
        }
      } catch (error) {
        if (stopped) return; // close() aborted the request
        // A network error or a broken stream: reconnect below.
      }
      attempt += 1;
      const delay = wait ?? Math.min(maxRetryDelay, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /** Reads SSE frames until the stream ends; true once run.completed was delivered. */
  async function read(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let id = null;
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (line === "") {
          if (id !== null) {
            const sequence = Number(id);
            if (data.length === 0) {
              last = Math.max(last, sequence); // an id-only frame: a filtered stream passed the end
            } else if (sequence > last) {
              last = sequence;
              attempt = 0;
              const event = JSON.parse(data.join("\n"));
              if (onEvent) onEvent(event);
              if (event.type === "run.completed") return true;
            }
          }
          id = null;
          data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "id") id = value;
          else if (field === "data") data.push(value);
        }
      }
    }
  }

  function finish() {
    stopped = true;
    status("ended");
    if (onEnd) onEnd();
  }

  connect();
  return {
    close() {
      if (stopped) return;
      stopped = true;
      if (controller) controller.abort();
      status("closed");
    },
    get lastSequence() { return last; },
  };
}
