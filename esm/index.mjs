// The ESM entry re-exports the CommonJS build so both module systems share one instance.
// Keep the names in step with src/index.ts (the packed-package test compares them).
import cjs from "../dist/index.js";

export const {
  register,
  instrument,
  shutdown,
  isLoaderThread,
  BreakerOpenError,
  ConfigError,
  DeadlineExceededError,
  VERSION,
  createRedisStore,
  RedisStore,
} = cjs;
export default cjs;
