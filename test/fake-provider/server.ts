import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createAnthropicFormat } from './anthropic';
import { RuleBook } from './faults';
import type { ProviderFormat } from './format';
import { createOpenAIFormat } from './openai';
import { routeOf, wireOf } from './platforms';
import { respond } from './respond';
import {
  DEFAULT_RESPONSE_DEFAULTS,
  type FakeProvider,
  type FaultRule,
  type ProviderName,
  type RecordedRequest,
  type ResponseDefaults,
} from './types';

export interface StartOptions {
  /** 0 (default) picks an ephemeral port. */
  port?: number;
  defaults?: Partial<ResponseDefaults>;
}

function flattenHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Resolves with the body text, or undefined if the connection went away first. */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.once('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.once('close', () => resolve(undefined)); // no-op when 'end' already resolved
  });
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function parseRetryCount(v: string | undefined): number | undefined {
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

export async function startFakeProvider(opts: StartOptions = {}): Promise<FakeProvider> {
  const formats: Record<ProviderName, ProviderFormat> = {
    openai: createOpenAIFormat(),
    anthropic: createAnthropicFormat(),
  };
  let defaults: ResponseDefaults = { ...DEFAULT_RESPONSE_DEFAULTS, ...opts.defaults };
  const rules = new RuleBook();
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const inflight = new Set<AbortController>();
  let closed: Promise<void> | undefined;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const controller = new AbortController();
    inflight.add(controller);
    res.once('close', () => {
      inflight.delete(controller);
      controller.abort();
    });
    // Errors from client-side aborts surface as 'close'; never let them crash the process.
    req.on('error', () => {});
    res.on('error', () => {});

    const text = await readBody(req);
    if (text === undefined || closed) return;

    const url = req.url ?? '/';
    const path = url.split('?', 1)[0] ?? '/';
    const method = (req.method ?? 'GET').toUpperCase();
    const route = routeOf(path);
    const { provider, platform } = route;
    const body = parseBody(text) as any;
    const model = typeof body?.model === 'string' ? (body.model as string) : route.urlModel;
    const stream = route.urlStream ?? body?.stream === true;
    const headers = flattenHeaders(req.headers);
    const retryCount = parseRetryCount(headers['x-stainless-retry-count']);

    requests.push({
      method,
      path,
      url,
      provider,
      ...(platform !== undefined ? { platform } : {}),
      ...(model !== undefined ? { model } : {}),
      stream,
      headers,
      body,
      ...(retryCount !== undefined ? { retryCount } : {}),
      at,
    });

    await respond({
      req,
      res,
      signal: controller.signal,
      format: formats[provider],
      wire: wireOf(platform),
      info: { method, path: route.endpointPath, body, model: model ?? 'unknown', stream },
      defaults,
      fault: rules.take({ path, model, provider, ...(platform !== undefined ? { platform } : {}), stream }),
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake provider: unexpected server address');
  const port = address.port;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    port,
    openaiBaseURL: `${url}/v1`,
    anthropicBaseURL: url,
    azureBaseURL: `${url}/openai`,
    bedrockBaseURL: url,
    vertexBaseURL: `${url}/v1`,
    requests,
    script: (...newRules: FaultRule[]) => rules.add(newRules),
    clearRules: () => rules.clear(),
    reset() {
      rules.clear();
      requests.length = 0;
    },
    setDefaults(d) {
      defaults = { ...defaults, ...d };
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Aborting first cancels pending sleeps/drain waits (and their timers).
        for (const c of inflight) c.abort();
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
