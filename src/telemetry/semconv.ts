// Names fixed by the contract (GenAI semantic conventions v1.41 plus ours; README "The span model").
// Users' dashboards and alert rules depend on them: never rename.

export const ATTR = {
  OPERATION: "gen_ai.operation.name",
  PROVIDER: "gen_ai.provider.name",
  REQUEST_MODEL: "gen_ai.request.model",
  REQUEST_MAX_TOKENS: "gen_ai.request.max_tokens",
  REQUEST_TEMPERATURE: "gen_ai.request.temperature",
  REQUEST_TOP_P: "gen_ai.request.top_p",
  REQUEST_TOP_K: "gen_ai.request.top_k",
  REQUEST_STOP: "gen_ai.request.stop_sequences",
  REQUEST_FREQUENCY_PENALTY: "gen_ai.request.frequency_penalty",
  REQUEST_PRESENCE_PENALTY: "gen_ai.request.presence_penalty",
  REQUEST_SEED: "gen_ai.request.seed",
  REQUEST_CHOICE_COUNT: "gen_ai.request.choice.count",
  REQUEST_STREAM: "gen_ai.request.stream",
  REQUEST_ENCODING_FORMATS: "gen_ai.request.encoding_formats",
  RESPONSE_MODEL: "gen_ai.response.model",
  RESPONSE_ID: "gen_ai.response.id",
  RESPONSE_FINISH_REASONS: "gen_ai.response.finish_reasons",
  RESPONSE_TTFC: "gen_ai.response.time_to_first_chunk",
  USAGE_INPUT: "gen_ai.usage.input_tokens",
  USAGE_OUTPUT: "gen_ai.usage.output_tokens",
  USAGE_CACHE_READ: "gen_ai.usage.cache_read.input_tokens",
  USAGE_CACHE_CREATION: "gen_ai.usage.cache_creation.input_tokens",
  USAGE_REASONING: "gen_ai.usage.reasoning.output_tokens",
  TOKEN_TYPE: "gen_ai.token.type",
  INPUT_MESSAGES: "gen_ai.input.messages",
  OUTPUT_MESSAGES: "gen_ai.output.messages",
  SERVER_ADDRESS: "server.address",
  SERVER_PORT: "server.port",
  ERROR_TYPE: "error.type",
  HTTP_STATUS: "http.response.status_code",
  HTTP_RESEND_COUNT: "http.request.resend_count",
  ATTEMPTS: "llm_resilience.attempts",
  ATTEMPT_NUMBER: "llm_resilience.attempt.number",
  REQUEST_ID: "llm_resilience.provider.request_id",
  RETRY_DELAY_MS: "llm_resilience.retry.delay_ms",
  RETRY_DELAY_SOURCE: "llm_resilience.retry.delay_source",
  GIVE_UP_REASON: "llm_resilience.give_up.reason",
  BREAKER_KEY: "llm_resilience.breaker.key",
  BREAKER_FROM: "llm_resilience.breaker.from",
  BREAKER_TO: "llm_resilience.breaker.to",
  BREAKER_STORE: "llm_resilience.breaker.store",
  RATELIMIT_KIND: "llm_resilience.ratelimit.kind",
  RATELIMIT_WAIT_MS: "llm_resilience.ratelimit.wait_ms",
  FALLBACK_FROM: "llm_resilience.fallback.from",
  FALLBACK_TO: "llm_resilience.fallback.to",
  FALLBACK_REASON: "llm_resilience.fallback.reason",
} as const;

export const EVENT = {
  RETRY: "llm_resilience.retry",
  GIVE_UP: "llm_resilience.give_up",
  BREAKER_TRANSITION: "llm_resilience.breaker.transition",
  BREAKER_REJECT: "llm_resilience.breaker.reject",
  BREAKER_PROBE: "llm_resilience.breaker.probe",
  RATELIMIT_WAIT: "llm_resilience.ratelimit.wait",
  FALLBACK: "llm_resilience.fallback",
} as const;

export const METRIC = {
  OPERATION_DURATION: "gen_ai.client.operation.duration",
  TOKEN_USAGE: "gen_ai.client.token.usage",
  TIME_TO_FIRST_CHUNK: "gen_ai.client.operation.time_to_first_chunk",
  ATTEMPTS: "llm_resilience.attempts",
  RETRIES: "llm_resilience.retries",
  BREAKER_STATE: "llm_resilience.breaker.state",
  BREAKER_TRANSITIONS: "llm_resilience.breaker.transitions",
  BREAKER_REJECTIONS: "llm_resilience.breaker.rejections",
  FALLBACKS: "llm_resilience.fallbacks",
  STORE_DEGRADED: "llm_resilience.store.degraded",
} as const;

/** Bucket boundaries the GenAI metrics convention advises. */
export const DURATION_BUCKETS_S = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
export const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
