// `import "llm-resilience/register"` has a side effect only.
export {};
