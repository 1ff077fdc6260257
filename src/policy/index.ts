// The pure policy building blocks (no OpenTelemetry, no SDK imports).
export * from "./clock.js";
export * from "./retry-after.js";
export * from "./backoff.js";
export * from "./sleep.js";
export * from "./deadline.js";
export * from "./store.js";
export * from "./sliding-window.js";
export * from "./registry.js";
export * from "./breaker.js";
export * from "./retry-budget.js";
export * from "./rate-limiter.js";
