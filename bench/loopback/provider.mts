// The fake provider (test/fake-provider) in a process of its own, for the loopback-HTTP benchmark mode:
// clients reach it over real HTTP on 127.0.0.1 with the SDKs' own fetch (undici).
// Started by bench/run.mjs with an IPC channel: sends { url } when listening, exits when the channel closes.
// argv: [streamChunks=20]  (content chunks per streamed answer)
import { startFakeProvider } from '../../test/fake-provider/index.ts';

const chunks = Number(process.argv[2] ?? 20);
if (!Number.isInteger(chunks) || chunks < 1) throw new Error(`provider.mts: streamChunks must be a positive integer, got "${process.argv[2]}"`);

const provider = await startFakeProvider({ defaults: { chunks } });
// The request log is for tests; a benchmark sends hundreds of thousands of requests, so keep it empty.
setInterval(() => {
  provider.requests.length = 0;
}, 1000).unref();

process.on('disconnect', () => {
  void provider.close().then(() => process.exit(0));
});
if (!process.send) throw new Error('provider.mts: start it with an IPC channel (bench/run.mjs does)');
process.send({ url: provider.url, chunks });
