import type { Agent, AgentOptions } from "node:http";
import type { Socket } from "node:net";

/**
 * The HTTP agents of our OTLP/HTTP exporters, watched: a connection to the collector that fails
 * before it is established (refused, unreachable host, unknown name) is reported to the listeners.
 * At exit this tells "the collector is down" (leave now, counting what is lost) from "the collector
 * is slow" (wait for it, up to the flush limit): the exporters themselves would retry a refused
 * connection with back-off for their whole timeout.
 */
type Listener = (reason: string) => void;
const listeners = new Set<Listener>();

/** For the exporters' `httpAgentOptions`: a keep-alive agent like the exporters' own, watched. */
export function watchedAgent(protocol: string): Agent {
  // Loaded here, not at the top: the exporters' advice, so that an http instrumentation of the
  // application sees the module first.
  const http = (protocol === "https:" ? require("node:https") : require("node:http")) as typeof import("node:http");
  const agent = new http.Agent({ keepAlive: true } satisfies AgentOptions);
  const createConnection = agent.createConnection.bind(agent) as (...args: unknown[]) => Socket;
  (agent as { createConnection: unknown }).createConnection = (...args: unknown[]) => {
    const socket = createConnection(...args);
    let connected = false;
    socket.once("connect", () => {
      connected = true;
    });
    socket.once("error", (err: Error) => {
      if (connected) return;
      for (const listener of [...listeners]) listener(err.message);
    });
    return socket;
  };
  return agent;
}

/** Resolves with the reason at the next failed connection to the collector; `cancel` stops listening. */
export function nextConnectionFailure(): { failed: Promise<string>; cancel: () => void } {
  let listener: Listener = () => {};
  const failed = new Promise<string>((resolve) => {
    listener = (reason) => {
      listeners.delete(listener);
      resolve(reason);
    };
    listeners.add(listener);
  });
  return { failed, cancel: () => listeners.delete(listener) };
}
