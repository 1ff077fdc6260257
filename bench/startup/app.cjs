// Start-up app, CommonJS (bench/startup/run.mjs). STARTUP_VARIANT: raw (the SDK alone) |
// nodesdk (a bare NodeSDK started first) | ours (require("llm-resilience/register") first).
"use strict";
const variant = process.env.STARTUP_VARIANT;
if (variant === "ours") require("llm-resilience/register");
if (variant === "nodesdk") new (require("@opentelemetry/sdk-node").NodeSDK)().start();
const OpenAI = require("openai");

require("./report.cjs").calls(OpenAI);
