// `npm start`: builds dist/ if it is missing or stale, then runs dist/server.mjs in this same
// process. One node start-up instead of the two (and a second shell) that a `prestart` script
// costs npm.
import './build-if-stale.mjs';

await import('../dist/server.mjs');
