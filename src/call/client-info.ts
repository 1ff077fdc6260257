import type { ProviderAdapter, ProviderName } from "../providers/types.js";

/** What a call needs to know about its client, worked out once per client. */
export interface ClientInfo {
  address?: string;
  port?: number;
  provider: ProviderName;
  /** The client's credentials, read when an error message is recorded (never recorded themselves). */
  secrets: () => string[];
}

const clients = new WeakMap<object, ClientInfo>();

export function clientInfo(client: any, adapter: ProviderAdapter): ClientInfo {
  let info = clients.get(client);
  if (info) return info;
  info = {
    provider: adapter.provider(client),
    secrets: () => [client?.apiKey, client?.authToken].filter((v): v is string => typeof v === "string" && v.length >= 8),
  };
  try {
    const url = new URL(String(client.baseURL));
    info.address = url.hostname;
    info.port = url.port ? Number(url.port) : url.protocol === "http:" ? 80 : 443;
  } catch {
    // no usable baseURL: leave the server attributes out
  }
  clients.set(client, info);
  return info;
}
