// The job console (riverui) runs under a Content-Security-Policy without
// 'unsafe-eval'. Zod, in its bundle, probes whether eval works by calling
// Function(""), which the browser refuses and reports as a violation;
// jitless tells Zod to skip the probe and validate without generated code.
globalThis.__zod_globalConfig = Object.assign(globalThis.__zod_globalConfig || {}, { jitless: true });
