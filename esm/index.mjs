// The ESM entry re-exports the CommonJS build so both module systems share one instance.
import cjs from "../dist/index.js";

export const { register, instrument, shutdown, BreakerOpenError, ConfigError, DeadlineExceededError, VERSION, createRedisStore, RedisStore } = cjs;
export default cjs;
