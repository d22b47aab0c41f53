// The dashboard's end-to-end journey in headless Chromium (playwright-core, the system's
// Chromium), against a running `vdi up`; driven by host/cli/tests/dashboard_e2e.rs.
//
//   DASHBOARD_URL=https://localhost:8443/ PLAYWRIGHT_CORE=.../playwright-core/index.mjs \
//   SHOTS_DIR=/tmp/shots MODULE_WASM=.../vdi_quota.wasm node dashboard/e2e/journey.mjs
//
// Prints progress to stderr and one line to stdout: `E2E RESULT <json>`.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const base = new URL(process.env.DASHBOARD_URL ?? 'https://localhost:8443/');
const shotsDir = process.env.SHOTS_DIR ?? 'screenshots';
const moduleWasm = process.env.MODULE_WASM;
const { chromium } = await import(process.env.PLAYWRIGHT_CORE ?? 'playwright-core');
mkdirSync(shotsDir, { recursive: true });

const log = (...a) => console.error('[journey]', ...a);
const result = { screenshots: [] };
const openPages = [];
const url = (path) => new URL(path, base).href;
const LONG = 90_000;
// Same as the default quota plugin's settings, so a second copy changes no decision.
const QUOTA_SETTINGS = {
  maxSessionsPerUser: 3,
  maxGpuSlicesPerUser: 4,
  maxTimeoutSeconds: 14400,
  templatesByGroup: {
    staff: ['ubuntu-desktop', 'ubuntu-cpu', 'local-desktop'],
    'oidc:staff': ['ubuntu-desktop', 'ubuntu-cpu', 'local-desktop'],
    admins: ['*'],
    'oidc:vdi-admins': ['*'],
  },
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream', '--no-sandbox',
    '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
  ],
});

async function shot(page, name) {
  const file = `${name}.png`;
  await page.screenshot({ path: join(shotsDir, file) });
  result.screenshots.push(file);
}

/** A fresh browser (own cookies and storage) signed in as `user` on the provider's page. */
async function signIn(user, { screenshots = false } = {}) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  openPages.push([user, page]);
  page.on('pageerror', (e) => log(`${user} page error:`, e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') log(`${user} console:`, m.text(), m.location()?.url ?? '');
  });
  await page.goto(url('/'));
  const signInButton = page.getByRole('button', { name: 'Sign in' });
  await signInButton.waitFor();
  if (screenshots) await shot(page, 'signin');
  await signInButton.click();
  await page.locator('input[name=username]').waitFor();
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', `${user}-password`);
  if (screenshots) await shot(page, 'provider-login');
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.origin === base.origin && !u.pathname.startsWith('/callback'), { timeout: LONG });
  await page.getByRole('button', { name: 'Sign out' }).waitFor({ timeout: LONG });
  log(user, 'signed in');
  return { context, page };
}

/** Opens the launch form of the template card titled `displayName` and launches it. */
async function launch(page, displayName, { screenshot, reload = true } = {}) {
  if (reload) await page.goto(url('/'));
  const card = page.locator('li.card', { has: page.getByRole('heading', { name: displayName, exact: true }) });
  await card.getByRole('button', { name: 'Launch…' }).click();
  if (screenshot) await shot(page, screenshot);
  await card.getByRole('button', { name: 'Launch', exact: true }).click();
}

const sumSlices = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('.gpu .usage span')]
      .filter((s) => s.textContent.startsWith('slices'))
      .reduce((n, s) => n + Number(s.textContent.split(' ')[1].split('/')[0]), 0),
  );

try {
  // Alice signs in through the provider's own login page.
  const alice = await signIn('alice', { screenshots: true });
  const ap = alice.page;
  await ap.getByRole('heading', { name: 'Desktops' }).waitFor();
  await ap.getByTestId('quota-summary').waitFor();
  await shot(ap, 'catalogue');

  // She launches a desktop on the local node and watches it start without reloading.
  await ap.evaluate(() => {
    window.__marker = 'same page';
    window.__phases = [];
    const record = () => {
      for (const el of document.querySelectorAll('tr[data-session] .phase')) {
        const p = el.textContent;
        if (window.__phases[window.__phases.length - 1] !== p) window.__phases.push(p);
      }
    };
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await launch(ap, 'Local desktop (this machine)', { screenshot: 'launch-form', reload: false });
  await ap.waitForURL(url('/my'));
  const row = ap.locator('tr[data-session]').first();
  await row.waitFor();
  await shot(ap, 'my-sessions-starting');
  await row.locator('.phase', { hasText: 'Running' }).waitFor({ timeout: LONG });
  result.phasesSeen = await ap.evaluate(() => window.__phases);
  result.navigations = (await ap.evaluate(() => window.__marker)) === 'same page' ? 1 : 2;
  const name = await row.getAttribute('data-session');
  const href = await row.getByRole('link').getAttribute('href');
  log('alice sees', name, 'go through', result.phasesSeen.join(' → '));
  await shot(ap, 'my-sessions-running');

  // The sessions page's first contentful paint, loaded afresh (sign-in kept in the tab).
  await ap.goto(url('/my'));
  await ap.locator('tr[data-session]').first().waitFor();
  result.sessionsFcpMs = await ap.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);

  // Connect: the session page embeds the player, which decodes frames.
  await ap.locator(`tr[data-session="${name}"]`).getByRole('button', { name: 'Connect' }).click();
  await ap.locator('iframe').waitFor({ timeout: LONG });
  const player = await (await ap.locator('iframe').elementHandle()).contentFrame();
  await player.waitForFunction(() => window.vdi && window.vdi.state.framesDecoded > 0, null, { timeout: LONG, polling: 100 });
  result.framesDecoded = await player.evaluate(() => window.vdi.state.framesDecoded);
  await ap.waitForTimeout(1500); // a few more frames for the screenshot
  await shot(ap, 'session-player');
  // Live stream statistics and their chart, read from the player.
  await ap.getByTestId('stream-figures').waitFor({ timeout: LONG });
  await ap.locator('.chart canvas').waitFor({ timeout: LONG });
  result.streamFps = Number(await ap.locator('[data-testid=stream-figures] dd').first().textContent());
  await ap.waitForTimeout(3000); // a few points on the chart
  await ap.getByRole('heading', { name: 'Stream' }).scrollIntoViewIfNeeded();
  await shot(ap, 'session-stats');

  // Extend, then look at the timeline and decisions.
  await ap.getByRole('button', { name: 'Extend 1h' }).click();
  // RBAC decides who may extend (`vdi-user` has no patch on sessions today): either way the
  // page says what happened.
  const extendNotice = ap.locator('.notice-slot p', { hasText: /^Extend/ });
  await extendNotice.waitFor({ timeout: LONG });
  result.extendOutcome = await extendNotice.textContent();
  log('extend:', result.extendOutcome);
  await ap.getByRole('heading', { name: 'Plugin decisions' }).scrollIntoViewIfNeeded();
  await shot(ap, 'session-details');

  // Phone width: the list stacks.
  await ap.setViewportSize({ width: 390, height: 844 });
  await ap.goto(url('/my'));
  await ap.locator('tr[data-session]').first().waitFor();
  await shot(ap, 'my-sessions-phone');
  await ap.setViewportSize({ width: 1280, height: 720 });

  // Bob does not see her session, and its page is "not found" for him.
  const bob = await signIn('bob');
  await bob.page.goto(url('/my'));
  await bob.page.locator('tr[data-session], p.empty').first().waitFor({ timeout: LONG });
  result.bobSeesAlice = (await bob.page.locator(`tr[data-session="${name}"]`).count()) > 0;
  await bob.page.goto(url(href));
  await bob.page.getByRole('heading', { name: 'Session not found' }).waitFor({ timeout: LONG }).then(
    () => (result.bobNotFound = true),
    () => (result.bobNotFound = false),
  );
  await shot(bob.page, 'bob-not-found');
  await bob.context.close();

  // Carol may not use the GPU desktop: the quota policy's reason is shown.
  const carol = await signIn('carol');
  await carol.page.getByRole('heading', { name: 'Desktops' }).waitFor();
  const cards = carol.page.locator('li.card');
  await cards.first().waitFor({ timeout: LONG });
  await launch(carol.page, 'Ubuntu 24.04 desktop');
  const refusal = carol.page.locator('form.launch [role=alert]');
  await refusal.waitFor({ timeout: LONG });
  result.carolReason = await refusal.textContent();
  log('carol is told:', result.carolReason);
  await shot(carol.page, 'carol-refused');
  await carol.context.close();

  // The admin watches the GPU grid change when alice launches a GPU desktop.
  const admin = await signIn('admin');
  const mp = admin.page;
  await mp.goto(url('/admin/gpus'));
  await mp.getByText('Live', { exact: true }).waitFor({ timeout: LONG });
  const before = await sumSlices(mp);
  await launch(ap, 'Ubuntu 24.04 desktop');
  await ap.waitForURL(url('/my'));
  await mp.waitForFunction(
    (n) =>
      [...document.querySelectorAll('.gpu .usage span')]
        .filter((s) => s.textContent.startsWith('slices'))
        .reduce((m, s) => m + Number(s.textContent.split(' ')[1].split('/')[0]), 0) > n,
    before,
    { timeout: LONG, polling: 100 },
  );
  result.gridChanged = true;
  await shot(mp, 'admin-gpus');
  await mp.goto(url('/admin/sessions'));
  await mp.locator('tr[data-session]').first().waitFor({ timeout: LONG });
  await shot(mp, 'admin-sessions');

  // Alice terminates her local desktop; the row goes.
  await ap.goto(url(href));
  await ap.getByRole('button', { name: 'Terminate' }).click();
  await ap.getByRole('button', { name: 'Yes, terminate' }).click();
  await ap.waitForURL(url('/my'));
  await ap.locator(`tr[data-session="${name}"]`).waitFor({ state: 'detached', timeout: LONG });
  result.terminated = true;
  await shot(ap, 'my-sessions-after-terminate');

  // The admin uploads a module (digest shown) and creates a plugin that becomes Ready.
  if (moduleWasm) {
    await mp.goto(url('/admin/plugins'));
    await mp.locator('#module-file').setInputFiles(moduleWasm);
    const digest = mp.getByTestId('uploaded-digest');
    await digest.waitFor({ timeout: LONG });
    result.uploadedDigest = (await digest.locator('code').textContent()) ?? '';
    await mp.fill('#plugin-name', 'e2e-quota');
    const spec = JSON.parse(await mp.inputValue('#plugin-spec'));
    await mp.fill('#plugin-spec', JSON.stringify({ ...spec, order: 50, settings: QUOTA_SETTINGS }, null, 2));
    await shot(mp, 'admin-plugin-upload');
    await mp.getByRole('button', { name: 'Save plugin' }).click();
    const status = mp.locator('tr[data-plugin="e2e-quota"] .status');
    await mp.waitForFunction(
      () => ['Ready', 'Error'].includes(document.querySelector('tr[data-plugin="e2e-quota"] .status')?.textContent ?? ''),
      null,
      { timeout: LONG, polling: 200 },
    );
    result.pluginPhase = await status.textContent();
    result.quotaCalls = Number(await mp.locator('tr[data-plugin="quota"] td[data-label="Calls"]').textContent());
    await mp.evaluate(() => window.scrollTo(0, 0));
    await shot(mp, 'admin-plugins');
  }
  await mp.goto(url('/admin/templates'));
  await mp.getByRole('heading', { name: 'Create a template' }).waitFor();
  await shot(mp, 'admin-templates');
  // Editing a template starts from its whole spec (settings included) and saves it back.
  await mp.locator('tr[data-template="ubuntu-desktop"]').getByRole('button', { name: 'Edit' }).click();
  await mp.getByRole('heading', { name: 'Edit ubuntu-desktop' }).waitFor();
  const edited = JSON.parse(await mp.inputValue('#template-spec'));
  edited.description = 'XFCE on Ubuntu 24.04 with one GPU time-slice (edited from the dashboard).';
  await mp.fill('#template-spec', JSON.stringify(edited, null, 2));
  await mp.getByRole('button', { name: 'Save template' }).click();
  await mp.getByText('ubuntu-desktop saved.').waitFor({ timeout: LONG });
  result.templateSettingsKept = edited.settings?.homeSize === '10Gi';

  // Signing out ends the provider's session too and comes back to the sign-in page.
  await ap.getByRole('button', { name: 'Sign out' }).click();
  await ap.waitForURL((u) => u.origin !== base.origin, { timeout: LONG });
  const confirm = ap.locator('button[type=submit], input[type=submit]').first();
  if (await confirm.count()) await confirm.click(); // the provider's "sign out?" page
  await ap.waitForURL((u) => u.origin === base.origin, { timeout: LONG });
  await ap.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: LONG });
  result.signedOut = (await ap.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('oidc.user')).length)) === 0;
} catch (e) {
  log('failed:', e);
  for (const [user, page] of openPages) {
    if (page.isClosed()) continue;
    const file = `failure-${user}.png`;
    await page.screenshot({ path: join(shotsDir, file) }).catch(() => {});
    log(`${user}'s page at failure (${page.url()}, ${file}):`, (await page.locator('body').innerText().catch(() => '')).slice(0, 2000));
  }
  result.error = String(e?.stack ?? e);
  process.exitCode = 1;
} finally {
  console.log(`E2E RESULT ${JSON.stringify(result)}`);
  await browser.close();
}
