// Start-up app, ES module: llm-resilience/register as the first import (bench/startup/run.mjs).
import "llm-resilience/register";
import OpenAI from "openai";
import report from "./report.cjs";

await report.calls(OpenAI);
