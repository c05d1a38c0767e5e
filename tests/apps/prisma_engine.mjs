// Prisma's query engine for LiteLLM's database in the tests, where its native build cannot be had.
//
// LiteLLM reaches Postgres through prisma-client-py, which spawns the query engine *binary* (the file named by
// PRISMA_QUERY_ENGINE_BINARY) and speaks its HTTP interface in the GraphQL protocol. Prisma publishes that engine
// natively only on its own download host, which this machine cannot reach; the npm registry does carry the same
// engine build compiled to WebAssembly (@prisma/query-engine-wasm, 5.17.0-31.393aa359..., the engine prisma-client-py
// 0.15.0 pins), which reaches Postgres through Prisma's own driver adapter (@prisma/adapter-pg on node-postgres).
//
// This program is the binary's stand-in around that real engine: it serves the binary's routes (prisma-client-py
// 0.15.0, prisma/engine/_query.py and _http.py: GET /status, POST / with X-transaction-id, POST /transaction/start,
// /transaction/{id}/commit|rollback, GET /metrics) and turns each GraphQL request that prisma-client-py builds
// (prisma/_builder.py: `result: <action><Model>(args) { selection }`) into the engine's JSON protocol request
// (the one @prisma/client 5.17 sends), then gives the answer back in the GraphQL protocol's shape: the result under
// the alias `result` and plain values where the JSON protocol tags them ({"$type": "DateTime", "value": ...}).
// Every query, write, transaction and SQL statement is the engine's own; only the envelope is translated.
//
// Run: node prisma_engine.mjs --version | -p PORT [--enable-metrics] [--enable-raw-queries]
// Environment: PRISMA_ENGINE_MODULES (the node_modules folder holding the packages above), PRISMA_DML_PATH (the
// schema, set by prisma-client-py), DATABASE_URL or OVERWRITE_DATASOURCES (the connection string).

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const MODULES = process.env.PRISMA_ENGINE_MODULES;
const ENGINE_COMMIT = '393aa359c9ad4a4bb28630fb5613f9c281cde053';
const TRACE = JSON.stringify({ traceparent: '00-10-10-00' });
const ACTIONS = [
  'findUnique', 'findFirst', 'findMany', 'createOne', 'createMany', 'updateOne', 'updateMany', 'deleteOne',
  'deleteMany', 'upsertOne', 'aggregate', 'groupBy',
];
const RAW = new Set(['queryRaw', 'executeRaw']);

if (process.argv.includes('--version')) {
  process.stdout.write(`query-engine ${ENGINE_COMMIT}\n`);
  process.exit(0);
}

const require = createRequire(path.join(MODULES, 'index.js'));
const { parse, Kind } = require('graphql');
const pg = require('pg');
readNameAsText(pg);
const { PrismaPg } = require('@prisma/adapter-pg');
const { bindAdapter } = require('@prisma/driver-adapter-utils');

// The one difference between the native engine and this one that LiteLLM meets: the native engine reads Postgres's
// `name` type (OID 19, e.g. pg_views.viewname) as text; the 5.17 adapter refuses it ("Failed to deserialize column of
// type 'Unknown'"). Its columns are described to the adapter as text (25) and text[] (1009), which they are.
const AS_TEXT = new Map([[19, 25], [1003, 1009]]);

function describedAsText(result) {
  for (const item of Array.isArray(result) ? result : [result]) {
    for (const field of (item && item.fields) || []) {
      if (AS_TEXT.has(field.dataTypeID)) field.dataTypeID = AS_TEXT.get(field.dataTypeID);
    }
  }
  return result;
}

function readNameAsText(pg) {
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function (...args) {
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const callback = args[last];
      args[last] = (error, result) => callback(error, error ? result : describedAsText(result));
      return query.apply(this, args);
    }
    const answer = query.apply(this, args);
    return answer && typeof answer.then === 'function' ? answer.then(describedAsText) : answer;
  };
}

async function loadEngine() {
  const folder = path.join(MODULES, '@prisma/query-engine-wasm/postgresql');
  const glue = await import(pathToFileURL(path.join(folder, 'query_engine_bg.js')).href);
  const module = new WebAssembly.Module(fs.readFileSync(path.join(folder, 'query_engine_bg.wasm')));
  const instance = new WebAssembly.Instance(module, { './query_engine_bg.js': glue });
  glue.__wbg_set_wasm(instance.exports);
  return glue.QueryEngine;
}

function connectionString() {
  let url = process.env.DATABASE_URL;
  if (process.env.OVERWRITE_DATASOURCES) {
    const overrides = JSON.parse(process.env.OVERWRITE_DATASOURCES);
    if (overrides.length) url = overrides[0].url;
  }
  if (!url) throw new Error('no DATABASE_URL for the query engine');
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema');
  // Prisma's own URL parameters (connection_limit, pool_timeout, ...) mean nothing to node-postgres
  for (const key of [...parsed.searchParams.keys()]) if (key !== 'sslmode') parsed.searchParams.delete(key);
  return { url: parsed.toString(), schema };
}

// --- GraphQL request (prisma-client-py) -> JSON protocol request (the engine) ---

function value(node) {
  switch (node.kind) {
    case Kind.STRING: return node.value;
    case Kind.INT:
      return Number.isSafeInteger(Number(node.value)) ? Number(node.value) : { $type: 'BigInt', value: node.value };
    case Kind.FLOAT: return Number(node.value);
    case Kind.BOOLEAN: return node.value;
    case Kind.NULL: return null;
    case Kind.ENUM: return node.value;
    case Kind.LIST: return node.values.map(value);
    case Kind.OBJECT: return Object.fromEntries(node.fields.map((f) => [f.name.value, value(f.value)]));
    default: throw new Error(`unsupported GraphQL value ${node.kind}`);
  }
}

function args(field) {
  return Object.fromEntries((field.arguments || []).map((a) => [a.name.value, value(a.value)]));
}

function selection(set) {
  const out = {};
  for (const field of set ? set.selections : []) {
    const name = field.name.value;
    if (!field.selectionSet) {
      out[name] = true;
      continue;
    }
    const nested = { selection: selection(field.selectionSet) };
    if (field.arguments && field.arguments.length) nested.arguments = args(field);
    out[name] = nested;
  }
  return out;
}

function translate(body) {
  const document = parse(body.query);
  const operation = document.definitions[0];
  const fields = operation.selectionSet.selections;
  if (fields.length !== 1) throw new Error(`expected one field per request, got ${fields.length}`);
  const field = fields[0];
  const alias = field.alias ? field.alias.value : field.name.value;
  const name = field.name.value;
  if (RAW.has(name)) return { alias, request: { action: name, query: { arguments: args(field), selection: {} } } };
  let action = ACTIONS.find((a) => name.startsWith(a));
  if (!action) throw new Error(`unknown operation ${name}`);
  let model = name.slice(action.length);
  if ((action === 'findUnique' || action === 'findFirst') && model.endsWith('OrThrow')) {
    model = model.slice(0, -'OrThrow'.length);
    action += 'OrThrow';
  }
  const query = { selection: selection(field.selectionSet) };
  const given = args(field);
  if (Object.keys(given).length) query.arguments = given;
  return { alias, request: tagJson(MODELS, { modelName: model, action, query }) };
}

// A Json field's value: prisma-client-py sends its JSON text as a GraphQL string, which the GraphQL protocol parses as
// JSON; the JSON protocol would store that string as a JSON string, so the value is tagged {"$type": "Json"} as
// @prisma/client does. Which fields are Json (and which are relations, to follow nested writes) is read from the
// schema the engine runs.
function schemaFields(datamodel) {
  const models = {};
  const names = [...datamodel.matchAll(/^model\s+(\w+)\s*\{/gm)].map((m) => m[1]);
  for (const block of datamodel.matchAll(/^model\s+(\w+)\s*\{([\s\S]*?)^\}/gm)) {
    const fields = {};
    for (const line of block[2].split('\n')) {
      const found = line.trim().match(/^(\w+)\s+(\w+)(\[\])?\??/);
      if (!found || line.trim().startsWith('//') || line.trim().startsWith('@@')) continue;
      fields[found[1]] = { json: found[2] === 'Json', relation: names.includes(found[2]) ? found[2] : null };
    }
    models[block[1]] = fields;
  }
  return models;
}

function tagData(models, model, data) {
  if (Array.isArray(data)) return data.map((item) => tagData(models, model, item));
  if (!data || typeof data !== 'object') return data;
  const fields = models[model] || {};
  for (const [key, item] of Object.entries(data)) {
    const field = fields[key];
    if (!field) continue;
    if (field.json && typeof item === 'string') data[key] = { $type: 'Json', value: item };
    else if (field.relation && item && typeof item === 'object') tagNested(models, field.relation, item);
  }
  return data;
}

function tagNested(models, model, ops) {
  const withData = (item) => (item && typeof item === 'object' && 'data' in item && 'where' in item
    ? { ...item, data: tagData(models, model, item.data) } : tagData(models, model, item));
  for (const [op, item] of Object.entries(ops)) {
    if (op === 'create') ops[op] = tagData(models, model, item);
    else if (op === 'update' || op === 'updateMany') {
      ops[op] = Array.isArray(item) ? item.map(withData) : withData(item);
    }
    else if (op === 'createMany' && item) item.data = tagData(models, model, item.data);
    else if (op === 'connectOrCreate' || op === 'upsert') {
      for (const one of Array.isArray(item) ? item : [item]) {
        if (one && one.create) one.create = tagData(models, model, one.create);
        if (one && one.update) one.update = tagData(models, model, one.update);
      }
    }
  }
}

function tagWhere(models, model, where) {
  if (Array.isArray(where)) return where.forEach((item) => tagWhere(models, model, item));
  if (!where || typeof where !== 'object') return;
  const fields = models[model] || {};
  for (const [key, item] of Object.entries(where)) {
    if (key === 'AND' || key === 'OR' || key === 'NOT') tagWhere(models, model, item);
    else if (fields[key] && fields[key].json && item && typeof item === 'object') {
      for (const op of ['equals', 'not']) {
        if (typeof item[op] === 'string') item[op] = { $type: 'Json', value: item[op] };
      }
    } else if (fields[key] && fields[key].relation && item && typeof item === 'object') {
      for (const op of ['some', 'every', 'none', 'is', 'isNot']) {
        if (op in item) tagWhere(models, fields[key].relation, item[op]);
      }
    }
  }
}

function tagJson(models, request) {
  const given = request.query.arguments;
  if (!given || !request.modelName) return request;
  const model = request.modelName;
  for (const key of ['data', 'create', 'update']) if (key in given) given[key] = tagData(models, model, given[key]);
  if ('where' in given) tagWhere(models, model, given.where);
  return request;
}

// --- JSON protocol answer (the engine) -> GraphQL protocol answer (prisma-client-py) ---

function untag(data) {
  if (Array.isArray(data)) return data.map(untag);
  if (data && typeof data === 'object') {
    if (typeof data.$type === 'string' && 'value' in data && Object.keys(data).length === 2) return data.value;
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, untag(v)]));
  }
  return data;
}

// A raw query's json columns: the native engine gives their values parsed, this one (through the adapter) as text
// (prisma-client-py's _raw_query.py takes either, but hands the text on as a str where LiteLLM expects a dict).
function rawJson(result) {
  if (!result || !Array.isArray(result.types) || !Array.isArray(result.rows)) return result;
  const parse = (v) => (typeof v === 'string' ? JSON.parse(v) : v);
  const rows = result.rows.map((row) => row.map((v, i) => {
    if (v === null) return v;
    if (result.types[i] === 'json') return parse(v);
    if (result.types[i] === 'json-array' && Array.isArray(v)) return v.map(parse);
    return v;
  }));
  return { ...result, rows };
}

function answer(raw, alias, isRaw) {
  const parsed = JSON.parse(raw);
  if (!parsed.data) return parsed;
  const [key] = Object.keys(parsed.data);
  const result = parsed.data[key];
  return { data: { [alias]: isRaw ? rawJson(result) : untag(result) } };
}

// --- the binary engine's HTTP interface ---

const portIndex = Math.max(process.argv.indexOf('-p'), process.argv.indexOf('--port'));
const port = Number(process.argv[portIndex + 1]);
const QueryEngine = await loadEngine();
const { url, schema } = connectionString();
const pool = new pg.Pool({ connectionString: url, max: 10 });
const adapter = bindAdapter(new PrismaPg(pool, schema ? { schema } : undefined));
const logs = process.env.LOG_QUERIES ? 'info' : 'error';
const DATAMODEL = fs.readFileSync(process.env.PRISMA_DML_PATH, 'utf8');
const MODELS = schemaFields(DATAMODEL);
const engine = new QueryEngine(
  { datamodel: DATAMODEL, logLevel: logs, logQueries: Boolean(process.env.LOG_QUERIES) },
  (line) => { if (process.env.PRISMA_ENGINE_DEBUG) process.stderr.write(`${line}\n`); },
  adapter,
);
await engine.connect(TRACE);

async function run(body, txId) {
  if (body.batch) {
    const items = body.batch.map((item) => translate(item));
    const request = { batch: items.map((i) => i.request) };
    if (body.transaction) request.transaction = typeof body.transaction === 'object' ? body.transaction : {};
    const parsed = JSON.parse(await engine.query(JSON.stringify(request), TRACE, txId));
    if (!parsed.batchResult) return parsed;
    return {
      batchResult: parsed.batchResult.map(
        (r, i) => answer(JSON.stringify(r), items[i].alias, RAW.has(items[i].request.action)),
      ),
    };
  }
  const { alias, request } = translate(body);
  return answer(await engine.query(JSON.stringify(request), TRACE, txId), alias, RAW.has(request.action));
}

function reply(res, status, payload) {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const text = Buffer.concat(chunks).toString('utf8');
    const route = new URL(req.url, 'http://engine').pathname;
    try {
      if (req.method === 'GET' && route === '/status') return reply(res, 200, { status: 'ok' });
      if (req.method === 'GET' && route === '/metrics') {
        return reply(res, 200, (await engine.metrics(JSON.stringify({ format: 'json' }))) || '{}');
      }
      if (req.method === 'POST' && route === '/') {
        return reply(res, 200, await run(JSON.parse(text), req.headers['x-transaction-id']));
      }
      if (req.method === 'POST' && route === '/transaction/start') {
        return reply(res, 200, await engine.startTransaction(text, TRACE));
      }
      const tx = route.match(/^\/transaction\/([^/]+)\/(commit|rollback)$/);
      if (req.method === 'POST' && tx) {
        const done = tx[2] === 'commit'
          ? engine.commitTransaction(tx[1], TRACE) : engine.rollbackTransaction(tx[1], TRACE);
        return reply(res, 200, await done);
      }
      return reply(res, 404, { errors: [{ error: `no route ${req.method} ${route}` }] });
    } catch (error) {
      const message = String((error && error.message) || error);
      const stack = String((error && error.stack) || error);
      const failed = { error: stack, user_facing_error: { is_panic: false, message } };
      return reply(res, 200, { errors: [failed] });
    }
  });
});

function stop() {
  server.close();
  engine.disconnect(TRACE).finally(() => pool.end().finally(() => process.exit(0)));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
server.listen(port, 'localhost');
