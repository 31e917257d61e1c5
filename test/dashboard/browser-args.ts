// Chromium flags for tests and benchmarks: no sandbox (root in CI), no GPU, nothing that calls
// out to the network on its own.
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
