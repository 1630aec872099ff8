import { defineConfig } from 'vitest/config';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS and ESM builds without an `exports` map: Node (and so graphql-yoga)
    // loads the CJS one, Vite would hand our sources the ESM one, and two GraphQLError classes
    // break yoga's error masking. Pin ours to the build Node loads.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    testTimeout: 20_000,
    hookTimeout: 180_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'gateway', include: ['test/**/*.test.ts'], exclude: ['test/keystone/**', 'test/browser/**', 'test/cluster/**'] },
      },
      {
        // A real OpenStack Keystone, installed (Debian packages) and started by the global setup.
        extends: true,
        test: { name: 'keystone', include: ['test/keystone/**/*.test.ts'], globalSetup: ['test/keystone/global-setup.ts'] },
      },
      {
        // GraphiQL in a real browser: Debian's chromium, installed by the global setup, driven by playwright-core.
        extends: true,
        test: { name: 'browser', include: ['test/browser/**/*.test.ts'], globalSetup: ['test/browser/global-setup.ts'] },
      },
      {
        // Several replicas: Debian's redis-server (installed and started by the global setup), three
        // gateway processes and the emulator, all on loopback.
        extends: true,
        test: { name: 'cluster', include: ['test/cluster/**/*.test.ts'], globalSetup: ['test/cluster/global-setup.ts'] },
      },
    ],
  },
});
