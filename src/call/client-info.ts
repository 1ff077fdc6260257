import type { ProviderAdapter, ProviderName } from "../providers/types.js";

/** Where a call goes: the provider and the server (`server.address`, `server.port`, the breaker key). */
export interface Endpoint {
  provider: ProviderName;
  address?: string;
  port?: number;
}

/** What a call needs to know about its client, worked out once per client. */
export interface ClientInfo extends Endpoint {
  /** The client's credentials, read when an error message is recorded (never recorded themselves). */
  secrets: () => string[];
}

/** The host and port of a base URL (the scheme's default port when it names none); nothing for an unusable URL. */
export function serverOf(baseURL: unknown): { address?: string; port?: number } {
  try {
    const url = new URL(String(baseURL));
    return { address: url.hostname, port: url.port ? Number(url.port) : url.protocol === "http:" ? 80 : 443 };
  } catch {
    return {};
  }
}

const clients = new WeakMap<object, ClientInfo>();

export function clientInfo(client: any, adapter: ProviderAdapter): ClientInfo {
  let info = clients.get(client);
  if (info) return info;
  info = {
    provider: adapter.provider(client),
    secrets: () => [client?.apiKey, client?.authToken].filter((v): v is string => typeof v === "string" && v.length >= 8),
    ...serverOf(client?.baseURL),
  };
  clients.set(client, info);
  return info;
}
