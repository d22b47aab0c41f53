// node --test tools/dev-idp: the dashboard client's HTTPS loopback rule.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { clientBasedCORS, dashboardLoopback } from './dashboard.mjs';

test('HTTPS loopback origins on any port, exact path', () => {
  assert.equal(dashboardLoopback('https://localhost:8443/callback', '/callback'), 'https://localhost:8443');
  assert.equal(dashboardLoopback('https://127.0.0.1:40123/callback', '/callback'), 'https://127.0.0.1:40123');
  assert.equal(dashboardLoopback('https://localhost/callback', '/callback'), 'https://localhost');
  assert.equal(dashboardLoopback('https://localhost:8443/', '/'), 'https://localhost:8443');
});

test('anything else is refused', () => {
  for (const uri of [
    'http://localhost:8443/callback', // not HTTPS
    'https://example.com:8443/callback', // not loopback
    'https://localhost.example.com/callback',
    'https://127.0.0.2:8443/callback',
    'https://localhost:8443/callback/', // another path
    'https://localhost:8443/other',
    'https://localhost:8443/callback?x=1', // a query
    'https://localhost:8443/callback#x', // a fragment
    'https://user@localhost:8443/callback', // user info
    'https://LOCALHOST:8443/callback', // not in normal form
    'https://localhost:8443/a/../callback',
    'not a url',
  ]) {
    assert.equal(dashboardLoopback(uri, '/callback'), undefined, uri);
  }
});

test('CORS: the dashboard from an HTTPS loopback origin; others from their redirect origins', () => {
  const dashboard = { clientId: 'vdi-dashboard', clientAuthMethod: 'none', redirectUris: ['http://127.0.0.1/callback'] };
  const cli = { clientId: 'vdi-cli', clientAuthMethod: 'none', redirectUris: ['http://127.0.0.1/callback'] };
  assert.equal(clientBasedCORS({}, 'https://localhost:8443', dashboard), true);
  assert.equal(clientBasedCORS({}, 'https://127.0.0.1:9000', dashboard), true);
  assert.equal(clientBasedCORS({}, 'https://evil.example', dashboard), false);
  assert.equal(clientBasedCORS({}, 'null', dashboard), false);
  assert.equal(clientBasedCORS({}, 'https://localhost:8443', cli), false);
  assert.equal(clientBasedCORS({}, 'http://127.0.0.1', cli), true);
  assert.equal(clientBasedCORS({}, 'https://localhost:8443', { ...dashboard, clientAuthMethod: 'client_secret_basic' }), false);
});
