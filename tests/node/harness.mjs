// Runs flagedge's Worker bundle in Pyodide 0.28.2 under Node, with the real
// `workers` module (workers-runtime-sdk, vendored in the bundle), the way the
// Python Workers runtime runs it:
//
// - the bundle's modules are mounted at /session/metadata, its vendored
//   packages at /session/metadata/python_modules, and main.py is imported;
// - a Durable Object namespace whose objects keep `ctx.storage.sql` in a real
//   SQLite (sql.js) that, like the runtime, rejects BEGIN/COMMIT/SAVEPOINT in
//   SQL and offers `transactionSync`;
// - an ExecutionContext whose waitUntil promises outlive the response;
// - `fetch` refused for every host but loopback.
//
// pytest drives it over stdin/stdout, one JSON object per line:
//   {"id", "op": "start", "bundle": dir, "env": {...}}
//   {"id", "op": "fetch", "method", "url", "headers", "body"}   -> response, before waitUntil work ends
//   {"id", "op": "drain"}                                       -> waits for every waitUntil promise
//   {"id", "op": "scheduled", "cron"}
//   {"id", "op": "rpc", "method", "args"}                        -> a method of the entry point
//   {"id", "op": "python", "code"}                               -> runs code, returns `result`
//   {"id", "op": "stats"}
// Each answer carries the Python log lines printed since the last answer.

import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import path from "node:path";

// -- only loopback, before anything else can fetch ----------------------------------
const nodeFetch = globalThis.fetch;
const fetchLog = [];
globalThis.fetch = async (input, init) => {
  const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    fetchLog.push({ url: url.href, refused: true });
    throw new TypeError(`harness: fetch to ${url.origin} refused; only loopback is allowed`);
  }
  fetchLog.push({ url: url.href, method: (init && init.method) || (input.method ?? "GET") });
  return nodeFetch(input, init);
};

const { loadPyodide } = await import("pyodide");
const initSqlJs = (await import("sql.js")).default;

const logs = [];
let py;
let SQL;
let call; // Python: dispatch like workerd's introspection.wrapper_func
let mainModule;
let env;
let waitUntilPending = [];
let preloaded = {}; // Durable Object databases to start from, by object name (base64 SQLite)
const stats = { durableObjectCalls: 0, durableObjectCallsByMethod: {} };

// -- the runtime's JavaScript objects, named as workerd names them ------------------

class ExecutionContext {
  constructor() {
    this.promises = [];
  }
  waitUntil(promise) {
    const settled = Promise.resolve(promise).then(
      (value) => ({ ok: true, value: String(value) }),
      (error) => ({ ok: false, error: String(error && error.message ? error.message : error) }),
    );
    this.promises.push(settled);
    waitUntilPending.push(settled);
  }
  passThroughOnException() {}
  get [Symbol.toStringTag]() {
    return "ExecutionContext";
  }
}

class SqlStorageCursor {
  constructor(columns, rows, rowsRead, rowsWritten) {
    this.columnNames = columns;
    this._rows = rows;
    this.rowsRead = rowsRead;
    this.rowsWritten = rowsWritten;
    this._index = 0;
  }
  raw() {
    const rows = this._rows;
    return rows[Symbol.iterator]();
  }
  toArray() {
    return this._rows.map((row) => Object.fromEntries(this.columnNames.map((c, i) => [c, row[i]])));
  }
  one() {
    if (this._rows.length !== 1) throw new Error(`Expected exactly one result from SQL query, but got ${this._rows.length}.`);
    return this.toArray()[0];
  }
  next() {
    if (this._index >= this._rows.length) return { done: true, value: undefined };
    const row = this._rows[this._index++];
    return { done: false, value: Object.fromEntries(this.columnNames.map((c, i) => [c, row[i]])) };
  }
  [Symbol.iterator]() {
    return this;
  }
}

const FORBIDDEN = /^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i;

class SqlStorage {
  constructor(db) {
    this._db = db;
  }
  exec(query, ...bindings) {
    if (FORBIDDEN.test(query)) {
      throw new Error(
        "To execute a transaction, please use the state.storage.transaction() or " +
          "state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements.",
      );
    }
    const before = this._db.getRowsModified();
    const statement = this._db.prepare(query);
    try {
      statement.bind(bindings.map((b) => (b === undefined ? null : typeof b === "bigint" ? Number(b) : b)));
      const rows = [];
      while (statement.step()) rows.push(statement.get());
      return new SqlStorageCursor(statement.getColumnNames(), rows, rows.length, this._db.getRowsModified() - before);
    } finally {
      statement.free();
    }
  }
  get databaseSize() {
    return this._db.export().length;
  }
}

class DurableObjectStorage {
  constructor(db) {
    this._db = db;
    this.sql = new SqlStorage(db);
  }
  transactionSync(fn) {
    this._db.run("SAVEPOINT harness_tx");
    try {
      const result = fn();
      this._db.run("RELEASE harness_tx");
      return result;
    } catch (error) {
      this._db.run("ROLLBACK TO harness_tx");
      this._db.run("RELEASE harness_tx");
      throw error;
    }
  }
}

class DurableObjectId {
  constructor(hex, name) {
    this._hex = hex;
    this.name = name;
  }
  toString() {
    return this._hex;
  }
  equals(other) {
    return String(other) === this._hex;
  }
}

class DurableObjectState {
  constructor(id, storage) {
    this.id = id;
    this.storage = storage;
  }
  waitUntil() {}
  blockConcurrencyWhile(fn) {
    return fn();
  }
}

class DurableObjectNamespace {
  constructor(className) {
    this._className = className;
    this._objects = new Map();
    this._databases = new Map();
  }
  export() {
    return Object.fromEntries(
      [...this._databases].map(([name, db]) => [name, Buffer.from(db.export()).toString("base64")]),
    );
  }
  idFromName(name) {
    return new DurableObjectId(createHash("sha256").update(name).digest("hex"), name);
  }
  getByName(name) {
    return this.get(this.idFromName(name));
  }
  get(id) {
    const key = String(id);
    const namespace = this;
    // Stand-in for RPC: any method name becomes a call into the Python object, whose
    // result is structured-cloned as RPC would copy it.
    return new Proxy(
      {},
      {
        get(_, prop) {
          if (typeof prop === "symbol" || prop === "then") return undefined;
          return async (...args) => {
            stats.durableObjectCalls += 1;
            stats.durableObjectCallsByMethod[prop] = (stats.durableObjectCallsByMethod[prop] || 0) + 1;
            const instance = namespace._instance(key, id);
            const result = await call(false, instance, prop, ...args);
            return structuredClone(result);
          };
        },
      },
    );
  }
  _instance(key, id) {
    let instance = this._objects.get(key);
    if (!instance) {
      const saved = preloaded[id.name];
      const db = saved ? new SQL.Database(Buffer.from(saved, "base64")) : new SQL.Database();
      const state = new DurableObjectState(id, new DurableObjectStorage(db));
      this._databases.set(id.name, db);
      instance = mainModule[this._className](state, env);
      this._objects.set(key, instance);
    }
    return instance;
  }
}

// For tests of the SQL seam itself: a fresh storage like a Durable Object's.
globalThis.harnessStorage = () => new DurableObjectStorage(new SQL.Database());

// -- start ---------------------------------------------------------------------------

async function start({ bundle, env: bindings, storeBinding = "FLAG_STORE", storeClass = "FlagStore", stores = {} }) {
  preloaded = stores;
  const started = performance.now();
  SQL = await initSqlJs();
  py = await loadPyodide({
    stdout: (line) => logs.push(line),
    stderr: (line) => logs.push(line),
  });
  const loaded = performance.now();
  py.mountNodeFS("/session/metadata", path.resolve(bundle));

  env = { ...bindings, [storeBinding]: new DurableObjectNamespace(storeClass) };
  py.registerJsModule("_cloudflare_compat_flags", {
    python_workflows_implicit_dependencies: false,
    python_request_headers_preserve_commas: true,
  });
  py.registerJsModule("_pyodide_entrypoint_helper", {
    cloudflareWorkersModule: { env, waitUntil: (p) => waitUntilPending.push(Promise.resolve(p)) },
    cloudflareSocketsModule: {},
    doAnImport: async (name) => {
      throw new Error(`harness: import of ${name} is not available`);
    },
    patchWaitUntil(ctx) {
      // What workerd does: a Python awaitable handed to waitUntil is copied, so it
      // outlives the call that passed it, and destroyed once settled.
      if (Object.prototype.toString.call(ctx) !== "[object ExecutionContext]" || ctx._patched) return;
      const original = ctx.waitUntil.bind(ctx);
      ctx.waitUntil = (promise) => {
        const owned = promise && typeof promise.copy === "function" ? promise.copy() : promise;
        original(
          (async () => {
            try {
              return await owned;
            } finally {
              if (owned && typeof owned.destroy === "function") owned.destroy();
            }
          })(),
        );
      };
      ctx._patched = true;
    },
    *patch_env_helper(patch) {
      const saved = { ...env };
      Object.assign(env, patch);
      try {
        yield;
      } finally {
        for (const key of Object.keys(env)) delete env[key];
        Object.assign(env, saved);
      }
    },
  });

  py.runPython(`
import site, sys
sys.path[:0] = ["/session/metadata"]
site.addsitedir("/session/metadata/python_modules")
sys.path.remove("/session/metadata/python_modules")
sys.path.insert(1, "/session/metadata/python_modules")

import inspect
import workers
from pyodide.code import relaxed_call

async def _harness_call(relaxed, instance, name, *args):
    method = getattr(instance, name)
    args = [workers.python_from_rpc(a) for a in args]
    result = relaxed_call(method, *args) if relaxed else method(*args)
    if inspect.isawaitable(result):
        result = await result
    return workers.python_to_rpc(result)
`);
  call = py.globals.get("_harness_call");
  const sdkReady = performance.now();
  mainModule = py.pyimport("main");
  const imported = performance.now();
  return {
    python: py.runPython("import sys; sys.version.split()[0]"),
    pyodide: py.version,
    timings: {
      loadPyodideMs: loaded - started,
      sdkMs: sdkReady - loaded,
      importMainMs: imported - sdkReady,
      sinceProcessStartMs: performance.now(),
    },
  };
}

// -- operations ----------------------------------------------------------------------

async function fetchOp({ method = "GET", url, headers = {}, body = null }) {
  const init = { method, headers };
  if (body !== null && method !== "GET" && method !== "HEAD") init.body = body;
  const request = new Request(url, init);
  const ctx = new ExecutionContext();
  const doCallsBefore = stats.durableObjectCalls;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const instance = mainModule.Default(ctx, env);
  const response = await call(true, instance, "fetch", request);
  const text = await response.text();
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  instance.destroy();
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers.entries()),
    body: text,
    waitUntil: ctx.promises.length,
    durableObjectCalls: stats.durableObjectCalls - doCallsBefore,
    ms: elapsed,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

async function drain() {
  const settled = [];
  while (waitUntilPending.length) {
    const batch = waitUntilPending;
    waitUntilPending = [];
    settled.push(...(await Promise.all(batch)));
  }
  return settled;
}

async function scheduled({ cron = "* * * * *" }) {
  const ctx = new ExecutionContext();
  const instance = mainModule.Default(ctx, env);
  const controller = { scheduledTime: Date.now(), cron, noRetry() {} };
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await call(false, instance, "scheduled", controller, env, ctx);
  const cpu = process.cpuUsage(cpuBefore);
  instance.destroy();
  return {
    waitUntil: await Promise.all(ctx.promises),
    ms: performance.now() - started,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

async function rpc({ method, args = [] }) {
  const ctx = new ExecutionContext();
  const instance = mainModule.Default(ctx, env);
  const result = await call(false, instance, method, ...args);
  instance.destroy();
  return structuredClone(result?.toJs ? result.toJs({ dict_converter: Object.fromEntries }) : result);
}

async function python({ code }) {
  const result = await py.runPythonAsync(code);
  if (result && typeof result.toJs === "function") {
    const value = result.toJs({ dict_converter: Object.fromEntries });
    result.destroy();
    return value;
  }
  return result;
}

const OPS = {
  start,
  fetch: fetchOp,
  drain,
  scheduled,
  rpc,
  python,
  stats: async () => ({ ...stats, fetches: fetchLog.slice() }),
  exportStores: async () => env.FLAG_STORE.export(),
};

process.on("uncaughtException", (error) => process.stderr.write(`harness: uncaught ${error.message}\n`));
process.on("unhandledRejection", (error) => process.stderr.write(`harness: unhandled ${error?.message ?? error}\n`));

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const message = JSON.parse(line);
  let answer;
  try {
    answer = { id: message.id, ok: true, result: await OPS[message.op](message) };
  } catch (error) {
    // Pyodide errors carry the Python traceback in .message; never dump the minified runtime.
    answer = { id: message.id, ok: false, error: String(error?.message ?? error).slice(-4000) };
  }
  answer.logs = logs.splice(0);
  process.stdout.write(JSON.stringify(answer) + "\n");
}
