export { startFakeProvider, type StartOptions } from './server';
export {
  DEFAULT_RESPONSE_DEFAULTS,
  type FakeProvider,
  type Fault,
  type FaultRule,
  type Platform,
  type ProviderName,
  type RecordedRequest,
  type ResponseDefaults,
  type RuleMatch,
} from './types';
export { STRUCTURED_ANSWER, fullText as expectedText, textChunk as expectedChunk } from './format';
