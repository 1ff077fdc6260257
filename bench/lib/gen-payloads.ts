// Writes the canned wire payloads the in-process benchmarks replay, produced by the fake provider's own
// formats so they are byte-for-byte what the loopback provider (and so, closely, the real APIs) send.
// Usage: node --import tsx bench/lib/gen-payloads.ts <out.json>
import { writeFileSync } from 'node:fs';
import { createAnthropicFormat } from '../../test/fake-provider/anthropic';
import { createOpenAIFormat } from '../../test/fake-provider/openai';
import { DEFAULT_RESPONSE_DEFAULTS } from '../../test/fake-provider/types';

const out = process.argv[2];
if (!out) throw new Error('usage: gen-payloads.ts <out.json>');
const defaults = { ...DEFAULT_RESPONSE_DEFAULTS, chunks: 1 };

function dump(format: any, path: string, body: any, model: string, streamBody: any) {
  const ep = format.endpoint('POST', path);
  const info = { method: 'POST', path, body, model, stream: false, defaults };
  const s = ep.stream({ ...info, stream: true, body: streamBody });
  return {
    json: JSON.stringify(ep.json(info)),
    headers: format.headers(),
    // Chunk i of a stream is chunk0 with "tok0 " replaced by `tok${i} ` (see textChunk in format.ts).
    stream: { head: s.head(), chunk0: s.chunk(0), tail: s.tail() },
  };
}

const oBody = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }] };
const aBody = { model: 'claude-haiku-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Say hi' }] };
writeFileSync(
  out,
  JSON.stringify({
    openai: dump(createOpenAIFormat(), '/v1/chat/completions', oBody, 'gpt-4o-mini', { ...oBody, stream: true, stream_options: { include_usage: true } }),
    anthropic: dump(createAnthropicFormat(), '/v1/messages', aBody, 'claude-haiku-4-5', { ...aBody, stream: true }),
  }),
);
