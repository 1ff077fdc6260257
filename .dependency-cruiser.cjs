/**
 * The rooms of src/ and the directions their imports may take (ARCHITECTURE.md draws the same map).
 * `npm run deps` fails on any violation.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "Import cycles make the load order matter and the rooms impossible to read on their own.",
      from: {},
      to: { circular: true },
    },
    {
      name: "no-orphans",
      severity: "error",
      comment: "A module nothing imports is dead code (the entries are imported by package.json, not by src).",
      from: { orphan: true, pathNot: ["^src/index\\.ts$", "^src/register\\.ts$", "\\.d\\.ts$"] },
      to: {},
    },
    {
      name: "policy-is-pure",
      severity: "error",
      comment: "policy/ holds pure policies: no I/O, no OpenTelemetry, no SDK knowledge. It imports only itself (and node builtins).",
      from: { path: "^src/policy/" },
      to: { pathNot: ["^src/policy/"], dependencyTypesNot: ["core"] },
    },
    {
      name: "pricing-is-data",
      severity: "error",
      comment: "pricing/ holds the price table and its arithmetic: it imports nothing outside itself.",
      from: { path: "^src/pricing/" },
      to: { pathNot: ["^src/pricing/"], dependencyTypesNot: ["core"] },
    },
    {
      name: "fleet-uses-policy-only",
      severity: "error",
      comment: "fleet/ (the Redis store) implements policy/'s store seam; it may import policy/, ioredis and node builtins only.",
      from: { path: "^src/fleet/" },
      to: { pathNot: ["^src/fleet/", "^src/policy/", "^node_modules/ioredis/"], dependencyTypesNot: ["core"] },
    },
    {
      name: "call-knows-no-instrumentation-or-fleet",
      severity: "error",
      comment: "call/ is the engine of one call; instrumentation/ plugs into it (never the reverse), and the fleet reaches it only as an injected store.",
      from: { path: "^src/call/" },
      to: { path: ["^src/instrumentation/", "^src/fleet/"] },
    },
    {
      name: "providers-and-telemetry-below-call",
      severity: "error",
      comment: "providers/ and telemetry/ serve the call; they never import call/ or instrumentation/.",
      from: { path: "^src/(providers|telemetry)/" },
      to: { path: "^src/(call|instrumentation)/" },
    },
    {
      name: "kernel-imports-no-room-above",
      severity: "error",
      comment: "config, errors, runtime and version are the shared kernel: they may use policy/ types, nothing above.",
      from: { path: "^src/(config|errors|runtime|version)\\.ts$" },
      to: { path: "^src/(call|instrumentation|fleet|telemetry|providers)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    parser: "swc",
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
  },
};
