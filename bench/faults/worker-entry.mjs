// Worker threads do not inherit `--import tsx`'s hooks on Node 20: register tsx here, then load the TS worker.
import { register } from "tsx/esm/api";
register();
await import("./provider-worker.mts");
