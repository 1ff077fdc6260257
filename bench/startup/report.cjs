// The measured part of every start-up app: CALLS (default 1) sequential chat calls to BASE_URL.
// Prints FIRST-CALL (ms since the process started, performance.timeOrigin; and the CPU ms the process
// had used by then, all threads) and LAST-CALL.
"use strict";
const messages = [{ role: "user", content: "hi" }];

async function calls(OpenAI) {
  const client = new OpenAI({ apiKey: "sk-bench", baseURL: process.env.BASE_URL });
  const n = Number(process.env.CALLS || 1);
  for (let i = 0; i < n; i++) {
    await client.chat.completions.create({ model: "gpt-4o-mini", messages });
    if (i === 0) {
      const cpu = process.cpuUsage();
      process.stdout.write(`FIRST-CALL ${performance.now().toFixed(1)} ${((cpu.user + cpu.system) / 1000).toFixed(1)}\n`);
    }
  }
  process.stdout.write(`LAST-CALL ${performance.now().toFixed(1)}\n`);
}
module.exports = { calls };
