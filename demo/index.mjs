// `npm run demo` runs this file (`node demo/index.mjs`). The demo is TypeScript (demo/index.ts) and
// embeds the TypeScript fake provider from test/, so load tsx's hooks first, then the demo.
// `node --import tsx demo/index.ts` does the same.
import "tsx";

await import("./index.ts");
