// AWS event-stream framing (application/vnd.amazon.eventstream), as Bedrock's
// invoke-with-response-stream sends it. One message:
//   total length (u32) | headers length (u32) | CRC32 of those 8 bytes | headers | payload | CRC32 of all before
// A header: name length (u8) | name | value type (u8, 7 = string) | value length (u16) | value.
import { crc32 } from 'node:zlib';

const STRING = 7;

function encodeHeaders(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(value, 'utf8');
    const h = Buffer.alloc(1 + n.length + 1 + 2 + v.length);
    h.writeUInt8(n.length, 0);
    n.copy(h, 1);
    h.writeUInt8(STRING, 1 + n.length);
    h.writeUInt16BE(v.length, 2 + n.length);
    v.copy(h, 4 + n.length);
    parts.push(h);
  }
  return Buffer.concat(parts);
}

export function encodeMessage(headers: Record<string, string>, payload: Buffer): Buffer {
  const h = encodeHeaders(headers);
  const total = 12 + h.length + payload.length + 4;
  const out = Buffer.alloc(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(h.length, 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  h.copy(out, 12);
  payload.copy(out, 12 + h.length);
  out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4);
  return out;
}

/** A `chunk` event: Bedrock wraps each Anthropic stream event's JSON as base64 `bytes`. */
export function chunkMessage(eventJson: string): Buffer {
  const payload = Buffer.from(JSON.stringify({ bytes: Buffer.from(eventJson, 'utf8').toString('base64') }), 'utf8');
  return encodeMessage({ ':event-type': 'chunk', ':content-type': 'application/json', ':message-type': 'event' }, payload);
}

/** A modeled exception frame (`throttlingException`, `internalServerException`, ...). */
export function exceptionMessage(exceptionType: string, message: string): Buffer {
  const payload = Buffer.from(JSON.stringify({ message }), 'utf8');
  return encodeMessage({ ':exception-type': exceptionType, ':content-type': 'application/json', ':message-type': 'exception' }, payload);
}
