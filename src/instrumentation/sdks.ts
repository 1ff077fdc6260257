import type { SdkKit } from "../call/sdk-kit.js";
import { anthropicAdapter } from "../providers/anthropic.js";
import { openaiAdapter } from "../providers/openai.js";
import { silenceAnthropicTracing, silenceClientTracing } from "./anthropic-tracing.js";
import { ownerOf } from "./owner-of.js";
import { patchClientClass } from "./patch-client.js";
import { warnOnce } from "./warn-once.js";

export const SDK_PACKAGES = ["openai", "@anthropic-ai/sdk"] as const;
export type SdkPackage = (typeof SDK_PACKAGES)[number];

/** Supported majors; README "Compatibility" states the same ranges. */
const SUPPORTED: Record<SdkPackage, { min: [number, number]; belowMajor: number; range: string }> = {
  openai: { min: [4, 0], belowMajor: 8, range: ">=4.0.0 <8" },
  "@anthropic-ai/sdk": { min: [0, 30], belowMajor: 2, range: ">=0.30.0 <2" },
};

export function isSupported(pkg: SdkPackage, version: string | undefined): boolean {
  const m = /^(\d+)\.(\d+)\./.exec(version ?? "");
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  const { min, belowMajor } = SUPPORTED[pkg];
  if (major >= belowMajor) return false;
  return major > min[0] || (major === min[0] && minor >= min[1]);
}

export function warnUnsupported(pkg: SdkPackage, version: string | undefined): void {
  warnOnce(
    `version:${pkg}@${version}`,
    `llm-resilience: ${pkg}@${version ?? "unknown"} is outside the supported range ${SUPPORTED[pkg].range}; its calls pass through untouched`,
    {
      package: pkg,
      version,
    },
  );
}

/** The SDK version a client object reports (`getUserAgent()` is "<Class>/JS <version>" in every build checked). */
function clientVersion(client: any): string | undefined {
  try {
    const ua = typeof client?.getUserAgent === "function" ? client.getUserAgent() : undefined;
    return typeof ua === "string" ? /\/JS (\S+)/.exec(ua)?.[1] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Which SDK a client object belongs to. By its User-Agent first: class names are not reliable once a
 * bundler renames them (esbuild turns a second `Anthropic` into `Anthropic2`).
 */
function sdkOfClient(client: any): SdkPackage | undefined {
  try {
    const ua = typeof client?.getUserAgent === "function" ? client.getUserAgent() : undefined;
    if (typeof ua === "string" && /^(Azure)?OpenAI\d*\//.test(ua)) return "openai";
    if (typeof ua === "string" && /^Anthropic\w*\//.test(ua)) return "@anthropic-ai/sdk";
  } catch {
    // fall back to the class names
  }
  for (let p = Object.getPrototypeOf(client); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const name = p.constructor?.name;
    if (typeof name !== "string") continue;
    if (/^OpenAI\d*$/.test(name)) return "openai";
    // "Anthropic": the older 0.x builds (0.30.0 checked) have no BaseAnthropic (Anthropic extends Core.APIClient).
    if (/^(Base)?Anthropic\d*$/.test(name)) return "@anthropic-ai/sdk";
  }
  return undefined;
}

/** `instrument(client)` on a client of a version outside the supported range: warn, leave it alone. */
function unsupportedClient(pkg: SdkPackage, client: any): boolean {
  const version = clientVersion(client);
  if (version === undefined || isSupported(pkg, version)) return false;
  warnUnsupported(pkg, version);
  return true;
}

function kitFor(pkg: SdkPackage, sdkExports: any): SdkKit {
  const adapter = pkg === "openai" ? openaiAdapter : anthropicAdapter;
  // A client module (`<pkg>/client`, what Bedrock and Vertex load) exports no errors: the class carries them.
  const AbortErr = sdkExports?.APIUserAbortError ?? sdkExports?.default?.APIUserAbortError ?? clientClassOf(pkg, sdkExports)?.APIUserAbortError;
  const ConnErr = sdkExports?.APIConnectionError ?? sdkExports?.default?.APIConnectionError ?? clientClassOf(pkg, sdkExports)?.APIConnectionError;
  return {
    adapter,
    abortError: () => (typeof AbortErr === "function" ? new AbortErr() : Object.assign(new Error("Request was aborted."), { name: "AbortError" })),
    connectionError: (cause) =>
      typeof ConnErr === "function"
        ? new ConnErr({ cause })
        : Object.assign(new Error("Connection error.", { cause }), { name: "APIConnectionError" }),
  };
}

function clientClassOf(pkg: SdkPackage, sdkExports: any): any {
  if (pkg === "openai") return sdkExports?.OpenAI ?? sdkExports?.default;
  return sdkExports?.BaseAnthropic ?? sdkExports?.Anthropic ?? sdkExports?.default;
}

/**
 * Instruments one loaded build (CJS exports or ESM namespace) of an SDK. An unsupported version or an
 * unexpected shape gets one warning and is left untouched.
 */
export function instrumentSdk(pkg: SdkPackage, sdkExports: any, version: string | undefined): boolean {
  if (!isSupported(pkg, version)) {
    warnUnsupported(pkg, version);
    return false;
  }
  const ClientClass = clientClassOf(pkg, sdkExports);
  const result = patchClientClass(ClientClass, kitFor(pkg, sdkExports));
  if (result === "unsupported") {
    warnOnce(
      `shape:${pkg}@${version}`,
      `llm-resilience: ${pkg}@${version} does not have the expected client shape; its calls pass through untouched`,
      {
        package: pkg,
        version,
      },
    );
    return false;
  }
  if (pkg === "@anthropic-ai/sdk") silenceAnthropicTracing(ClientClass);
  return true;
}

/**
 * openai 4.0–4.18 resources copy `client.post.bind(client)` when the client is constructed, so a client
 * built before its class was patched keeps calling the original: re-bind those copies to the patched one.
 */
function rebindResources(client: any, node: any = client, seen = new Set<object>()): void {
  for (const key of Object.keys(node)) {
    const r = node[key];
    if (!r || typeof r !== "object" || seen.has(r) || r === client) continue;
    seen.add(r);
    if ((r.client === client || r._client === client) && !Array.isArray(r)) {
      if (Object.hasOwn(r, "post") && typeof r.post === "function") r.post = client.post.bind(client);
      rebindResources(client, r, seen);
    }
  }
}

/** Instruments the class of a client object directly (`instrument(client)`). */
export function instrumentClientObject(client: any): boolean {
  const pkg = sdkOfClient(client);
  // The class that owns `post` is the one to patch: OpenAI, BaseAnthropic, or 0.x's APIClient.
  const owner = ownerOf(Object.getPrototypeOf(client), "post");
  const ClientClass = owner?.constructor;
  if (pkg && typeof ClientClass === "function") {
    if (unsupportedClient(pkg, client)) return false;
    const ok = patchClientClass(ClientClass, kitFor(pkg, client.constructor)) !== "unsupported";
    if (ok && pkg === "openai") rebindResources(client);
    if (ok && pkg === "@anthropic-ai/sdk") {
      silenceAnthropicTracing(ClientClass);
      silenceClientTracing(client);
    }
    return ok;
  }
  warnOnce(
    "instrument:unknown",
    "llm-resilience: instrument() got an object that is not an openai or @anthropic-ai/sdk client; its calls pass through untouched",
    {},
  );
  return false;
}
