import { execFile } from "node:child_process";

/** What another process of the fleet saw: test/fixtures/fleet/sdk-replica.cjs's one chat call. */
export interface ReplicaOutcome {
  ok: boolean;
  breakerOpen?: boolean;
  store?: string;
  name?: string;
}

/**
 * Runs one replica of an app (the library registered from the environment, one chat call to `model`
 * against `fakeUrl`, the fleet's state in `redisUrl`); `env` adds settings such as the breaker's.
 */
export function runSdkReplica(redisUrl: string, fakeUrl: string, model: string, env: Record<string, string> = {}): Promise<ReplicaOutcome> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["test/fixtures/fleet/sdk-replica.cjs"],
      {
        env: {
          ...process.env,
          LLM_RESILIENCE_REDIS_URL: redisUrl,
          LLM_RESILIENCE_LOG_LEVEL: "silent",
          OTEL_SDK_DISABLED: "true",
          FAKE_URL: fakeUrl,
          MODEL: model,
          ...env,
        },
        timeout: 20_000,
      },
      (err, stdout) => {
        const line = stdout.split("\n").find((l) => l.startsWith("REPLICA "));
        if (!line) return reject(err ?? new Error(`no result: ${stdout}`));
        resolve(JSON.parse(line.slice("REPLICA ".length)));
      },
    );
  });
}
