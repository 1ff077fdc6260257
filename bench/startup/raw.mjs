// Start-up app, ES module: the openai SDK alone (bench/startup/run.mjs).
import OpenAI from "openai";
import report from "./report.cjs";

await report.calls(OpenAI);
