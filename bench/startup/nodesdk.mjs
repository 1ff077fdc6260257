// Start-up app, ES module: a bare NodeSDK started by the first import (bench/startup/run.mjs).
import "./nodesdk-start.mjs";
import OpenAI from "openai";
import report from "./report.cjs";

await report.calls(OpenAI);
