// The ESM entry re-exports the CommonJS build so both module systems share one instance
// (the packed-package test checks that every CommonJS export comes through).
export * from "../dist/index.js";
export { default } from "../dist/index.js";
