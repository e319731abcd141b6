// A real Backstage app in headless Chromium, with Pulse's three packages installed as an admin
// would: a guest signs in, moves between plugin pages and clicks a link; the navigate and click
// events Backstage itself emits reach ClickHouse through the module, Backstage's backend (which
// sets the signed-in user), the collector, Kafka, the streams worker and the sink; the insights
// page then shows them; a member of the platform team erases the analyst through the backend
// plugin, and nobody else may. A user outside
// group:default/pulse-readers gets the page's "not allowed" state and the API's 403, and a Pulse
// that does not answer gives the error state with a retry.

import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { freePort, Stack, waitFor } from '../../backstage-plugin-analytics-module-pulse/test/stack.mjs';
import { Backstage, Way } from './backstage.mjs';

const STARTUP_MS = 240_000;
const ARRIVAL_MS = 120_000;
const UI_MS = 60_000;
const CHROMIUM = '/usr/bin/chromium'; // Debian's package; make test installs it
const SCREENSHOTS = process.env.PULSE_SCREENSHOTS; // docs/images when the docs' pictures are retaken
const CATALOG_TOKEN = `pulse-catalog-${randomBytes(12).toString('hex')}`;

describe('a Backstage app with Pulse installed', { timeout: 2 * STARTUP_MS + 2 * ARRIVAL_MS + 8 * UI_MS }, () => {
  const stack = new Stack();
  const way = new Way();
  const dir = mkdtempSync(join(tmpdir(), 'pulse-backstage-app-'));
  let browser;
  let backstage;
  let port;

  const hmac = text => createHmac('sha256', stack.secret).update(text).digest('hex');

  /** The backend with the guest signing in as `user`, Pulse's module and backend plugin configured. */
  async function startBackstage(user) {
    await backstage?.stop();
    backstage = new Backstage();
    await backstage.start({
      port,
      dir,
      timeoutMs: STARTUP_MS,
      config: {
        // No endpoint and no token: events go to Backstage's own backend (same origin: no CSP or
        // CORS to configure), which holds the collector's token.
        app: { analytics: { pulse: { flushIntervalMs: 300 } } },
        // Pulse's catalog sync reads users and groups with a static token, as docs/backstage.md says.
        backend: { auth: { externalAccess: [{ type: 'static', options: { token: CATALOG_TOKEN, subject: 'pulse-catalog-sync' } }] } },
        auth: { providers: { guest: { userEntityRef: user } } },
        pulse: {
          baseUrl: way.url, token: stack.queryToken, timeoutMs: 10_000, adminToken: stack.adminToken,
          collector: { url: stack.collector, token: stack.backendToken },
        },
      },
    });
  }

  before(async () => {
    port = await freePort();
    // The collector allows no browser origin of this app: events reach it through the backend.
    await stack.start({ corsOrigins: 'https://elsewhere.example', timeoutMs: STARTUP_MS });
    await way.start(`127.0.0.1:${stack.ports.query}`);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await backstage?.stop();
    way.stop();
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stores the app's own navigate and click events, and the insights page shows them", async () => {
    await startBackstage('user:default/analyst');
    // The org in the app's catalog reaches Pulse through the catalog API, before any event.
    const tokenFile = join(dir, 'catalog-token');
    writeFileSync(tokenFile, CATALOG_TOKEN, { mode: 0o600 });
    const total = async kind => {
      const url = `${backstage.origin}/api/catalog/entities/by-query?filter=kind=${kind}&limit=1`;
      return (await (await fetch(url, { headers: { Authorization: `Bearer ${CATALOG_TOKEN}` } })).json()).totalItems;
    };
    await waitFor("the catalog's org", async () => (await total('user')) === 12 && (await total('group')) === 4, STARTUP_MS);
    const synced = await stack.catalogSync(['--from-backstage', backstage.origin, '--token-file', tokenFile]);
    assert.match(synced, /people: 11 in groups: published 11, deleted 0/);
    assert.match(synced, /groups: 4: published 4, deleted 0/);
    await waitFor('the people in the streams worker', async () => (await stack.workerMetric('pulse_streams_catalog_entries{table="people"}')) === 11, ARRIVAL_MS, stack);
    await onPage(await signIn(backstage.origin), async page => {
    await nav(page, 'Catalog');
    await page.getByRole('link', { name: 'artist-lookup' }).first().click();
    await page.waitForURL(/\/catalog\/default\/component\/artist-lookup/, { timeout: UI_MS });
    await nav(page, 'Catalog');

    const user = hmac('user:default/analyst');
    const entity = '/catalog/default/component/artist-lookup';
    let seen = [];
    const rows = await waitFor(
      'the navigate and click events in ClickHouse',
      async () => {
        seen = await stack.rows('1');
        const got = seen.filter(r => ['navigate', 'click'].includes(r.action)).map(r => [r.action, r.subject, r.plugin_id, r.extension, r.entity_ref]);
        return got.some(r => r[0] === 'navigate' && r[1] === entity) && got.some(r => r[0] === 'click' && r[1] === entity) && seen;
      },
      ARRIVAL_MS,
      stack,
    ).catch(error => {
      throw new Error(`${error.message.slice(0, 300)}\nrows: ${JSON.stringify(seen, null, 1)}`);
    });
    const fields = r => [r.action, r.subject, r.plugin_id, r.extension, r.entity_ref, r.attributes.to ?? ''];
    const got = rows.map(fields);
    for (const expected of [
      ['click', 'Catalog', 'unknown', 'app/root', '', '/catalog'], // the sidebar's nav item
      ['navigate', '/catalog', 'catalog', 'page:catalog', '', ''],
      ['click', entity, 'catalog', 'page:catalog', '', entity], // the catalog table's entity link
      ['navigate', entity, 'catalog', 'entity-content:catalog/overview', 'component:default/artist-lookup', ''],
    ]) {
      assert.ok(got.some(r => JSON.stringify(r) === JSON.stringify(expected)), `${expected} not in\n${got.join('\n')}`);
    }
    assert.ok(rows.every(r => r.user_id === user && r.user_verified === true && r.frontend_system === 'NEW'), JSON.stringify(rows));
    const team = ['group:default/acme', 'group:default/engineering', 'group:default/pulse-readers'];
    assert.ok(rows.every(r => JSON.stringify([...r.groups].sort()) === JSON.stringify(team)), JSON.stringify(rows.map(r => r.groups)));

    // What the browser was sent holds neither collector token; the module's requests carry the
    // user's Backstage token, and with it a body naming someone else is stored as the analyst's.
    const served = await Promise.all(page.bodies);
    assert.ok(served.length > 3 && served.some(text => text.includes('"analytics"')), 'the app config was not among what the page loaded');
    for (const secret of [stack.token, stack.backendToken]) assert.ok(!served.some(text => text.includes(secret)), 'a collector token reached the browser');
    const sent = await page.sentToPulse;
    const forged = { frontendSystem: 'NEW', events: [{ id: randomUUID(), timestamp: Date.now(), sessionId: 'forged', user: 'user:default/visitor', action: 'click', subject: 'forged', context: { pluginId: 'catalog' } }] };
    const post = headers => fetch(`${backstage.origin}/api/pulse/events`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(forged) });
    assert.equal((await post({})).status, 401);
    assert.equal((await post({ Authorization: 'Bearer not-a-backstage-token' })).status, 401);
    assert.equal((await post({ Authorization: `Bearer ${CATALOG_TOKEN}` })).status, 403); // a service, not a user
    assert.equal((await post({ Authorization: sent.headers().authorization })).status, 202);
    const [stored] = await waitFor('the forged event in ClickHouse', async () => {
      const got = await stack.rows(`session_id = 'forged'`);
      return got.length > 0 && got;
    }, ARRIVAL_MS, stack);
    assert.equal(stored.user_id, user);
    assert.equal(stored.user_verified, true);

    await nav(page, 'Pulse insights');
    await page.waitForSelector('[data-question="top_plugins"][data-state="ready"]', { timeout: UI_MS });
    const plugins = await page.locator('[data-question="top_plugins"] tbody tr').allInnerTexts();
    assert.ok(plugins.some(text => text.startsWith('catalog')), plugins.join('\n'));
    await page.waitForSelector('[data-question="top_entities"][data-state="ready"]', { timeout: UI_MS });
    assert.match(await page.locator('[data-question="top_entities"]').innerText(), /component:default\/artist-lookup/);
    assert.equal(await page.locator('[data-figure="users"]').innerText(), '1');
    await page.waitForSelector('[data-question="top_templates"][data-state="empty"]', { timeout: UI_MS });

    // The CSV download is Pulse's own CSV of the same question, once the events of coming to
    // this page (the nav item's click, the navigate to /pulse) are stored: nothing moves after.
    const direct = async () => {
      const url = `http://127.0.0.1:${stack.ports.query}/v1/questions/top_plugins?since=7d&limit=10&format=csv`;
      return (await fetch(url, { headers: { Authorization: `Bearer ${stack.queryToken}` } })).text();
    };
    const settled = await waitFor('the visit to the insights page in ClickHouse', async () => {
      const csv = await direct();
      return csv.includes('"pulse",') && csv;
    }, ARRIVAL_MS, stack);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByLabel('Download top_plugins as CSV').click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    assert.equal(csv, settled);
    assert.equal(csv, await direct());

    // Grouping by hour redraws the active users' chart per hour.
    await pick(page, 'Grouping', 'Hour');
    await page.getByText('Hourly active users').waitFor({ timeout: UI_MS });
    await page.waitForSelector('[data-question="new_vs_returning"][data-state="ready"] .recharts-bar-rectangle', { timeout: UI_MS });
    await page.waitForFunction(() => !document.querySelector('[data-state="loading"]'), null, { timeout: UI_MS });
    assert.deepEqual(await overflowing(page), [], 'the page is wider than the window');
    await shoot(page, 'backstage-insights.png');

    // Adoption by team: each group's members as the catalog says, and the analyst's team's one
    // active member withheld (a figure about fewer than five people).
    await pick(page, 'Grouping', 'Day');
    await page.waitForSelector('[data-question="teams"][data-state="ready"]', { timeout: UI_MS });
    const cells = async ref => page.locator(`[data-question="teams"] tr[data-group="${ref}"] td`).allInnerTexts();
    const readers = await cells('group:default/pulse-readers');
    assert.deepEqual(readers.slice(1, 3), ['6', '<5'], readers.join(' | '));
    const platform = await cells('group:default/platform');
    assert.deepEqual(platform.slice(1, 4), ['5', '0', '0%'], platform.join(' | '));

    // The group picker lists the signed-in user's own team first, and filters every card.
    const options = await waitFor('the groups in the picker', async () => {
      const listed = await groupOptions(page);
      return listed.length > 1 && listed;
    }, UI_MS);
    assert.equal(options[0], 'Everyone');
    assert.equal(options[1], 'Pulse readers (team) · yours', options.join(' | '));
    await pick(page, 'Group', 'Pulse readers (team) · yours');
    await page.waitForFunction(() => !document.querySelector('[data-state="loading"]'), null, { timeout: UI_MS });
    await page.waitForSelector('[data-question="top_plugins"][data-state="ready"]', { timeout: UI_MS });
    assert.equal(await page.locator('[data-figure="users"]').innerText(), '<5');
    const filtered = await page.locator('[data-question="top_plugins"] tbody tr').allInnerTexts();
    assert.ok(filtered.some(text => text.startsWith('catalog') && text.includes('<5')), filtered.join('\n'));
    assert.deepEqual(await overflowing(page), [], 'the page is wider than the window');
    await shoot(page, 'backstage-teams.png');
    await pick(page, 'Group', 'Everyone');

    // Pulse stops answering: the error state, with a retry that works once Pulse is back.
    way.down = true;
    await nav(page, 'Catalog');
    await nav(page, 'Pulse insights');
    await page.getByText('Pulse insights are unavailable').waitFor({ timeout: UI_MS });
    assert.doesNotMatch(await page.locator('body').innerText(), /\bat [\w.]+ \(|node_modules/);
    await shoot(page, 'backstage-unavailable.png');
    way.down = false;
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.waitForSelector('[data-question="top_plugins"][data-state="ready"]', { timeout: UI_MS });

    // The analyst opts out on the page: from then on the events leave without identity, and
    // the switch stays as set on the next visit.
    await page.getByLabel('Leave me out of usage analytics').check();
    await page.waitForSelector('[data-opt-out="on"]', { timeout: UI_MS });
    await nav(page, 'Catalog');
    await nav(page, 'Pulse insights');
    await page.waitForSelector('[data-opt-out="on"]', { timeout: UI_MS });
    const anonymous = await waitFor('the events of the opted-out visit', async () => {
      const got = await stack.rows(`user_id = '' AND action = 'navigate' AND subject = '/pulse'`);
      return got.length > 0 && got;
    }, ARRIVAL_MS, stack);
    assert.ok(anonymous.every(r => r.user_verified === false && r.groups.length === 0), JSON.stringify(anonymous));
    });
  });

  it('shows a user without pulse.insights.read the "not allowed" state, and the API answers 403', async () => {
    await startBackstage('user:default/visitor');
    await onPage(await signIn(backstage.origin), async page => {
    const answer = page.waitForResponse(r => r.url().includes('/api/pulse/questions'), { timeout: UI_MS });
    await nav(page, 'Pulse insights');
    assert.equal((await answer).status(), 403);
    await page.getByText('You are not allowed to see Pulse insights').waitFor({ timeout: UI_MS });
    assert.equal(await page.locator('[data-question]').count(), 0);
    await shoot(page, 'backstage-not-allowed.png');
    });
  });

  it('erases a person for a member of the platform team, and refuses everyone else', async () => {
    const analyst = hmac('user:default/analyst');
    const erase = (path, token, body) => fetch(`${backstage.origin}/api/pulse${path}`, {
      method: 'POST', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    });
    await startBackstage('user:default/visitor');
    const refused = await erase('/erasures', await guestToken(backstage.origin), { user: 'user:default/analyst' });
    assert.equal(refused.status, 403);
    assert.equal((await refused.json()).error.name, 'NotAllowedError');

    await startBackstage('user:default/platform-1');
    const token = await guestToken(backstage.origin, 'group:default/platform');
    assert.equal((await erase('/erasures', token, { user: 'group:default/acme' })).status, 400);
    const stored = await stack.rows(`user_id = '${analyst}'`);
    assert.ok(stored.length > 0, 'the analyst has no events to erase');
    const done = await erase('/erasures', token, { user: 'user:default/analyst' });
    const receipt = await done.json();
    assert.equal(done.status, 200, JSON.stringify(receipt));
    assert.equal(receipt.stage, 'completed');
    assert.equal(receipt.user_id, analyst);
    assert.equal(receipt.requested_by, 'user:default/platform-1');
    assert.ok(receipt.rows_removed.events >= stored.length, JSON.stringify(receipt));
    assert.deepEqual(await stack.rows(`user_id = '${analyst}'`), []);
    const verified = await (await erase('/erasures/verify', token, { user: 'user:default/analyst' })).json();
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.ok(!JSON.stringify(receipt).includes(stack.adminToken));
  });

  async function signIn(origin) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1400 }, acceptDownloads: true });
    const page = await context.newPage();
    page.problems = [];
    page.on('pageerror', error => page.problems.push(`page error: ${error}`));
    page.on('console', m => m.type() === 'error' && page.problems.push(`console: ${m.text()}`));
    page.on('requestfailed', r => page.problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
    // Everything the app serves the browser (documents, scripts, config), to look for secrets in.
    page.bodies = [];
    page.on('response', r => {
      if (['document', 'script', 'fetch', 'xhr'].includes(r.request().resourceType())) page.bodies.push(r.text().catch(() => ''));
    });
    page.sentToPulse = page.waitForRequest(r => r.url() === `${origin}/api/pulse/events` && r.method() === 'POST', { timeout: UI_MS });
    page.sentToPulse.catch(() => {}); // awaited only by the test that needs it
    await page.goto(origin, { timeout: UI_MS });
    await page.getByRole('button', { name: /enter/i }).click({ timeout: UI_MS });
    await sidebar(page).getByRole('link', { name: 'Catalog' }).waitFor({ timeout: UI_MS });
    return page;
  }
});

/** A Backstage token of the guest, as the app's frontend gets it; with `group`, once the
 * catalog (read anew by each backend) has made the guest a member of it. */
async function guestToken(origin, group) {
  return waitFor(`a token naming ${group ?? 'the guest'}`, async () => {
    const response = await fetch(`${origin}/api/auth/guest/refresh?env=development`, { headers: { 'X-Requested-With': 'XMLHttpRequest' } });
    assert.equal(response.status, 200, await response.clone().text());
    const { token, identity } = (await response.json()).backstageIdentity;
    return (!group || identity.ownershipEntityRefs.includes(group)) && token;
  }, UI_MS);
}

/** Moves within the app by its sidebar, as a user does (a reload would sign the guest out). */
async function nav(page, name) {
  await sidebar(page).getByRole('link', { name }).click({ timeout: UI_MS });
}

const sidebar = page => page.locator('nav[aria-label="sidebar nav"]');

/** Runs `body` on a signed-in page; on a failure, shows what the page showed. */
async function onPage(page, body) {
  try {
    await body(page);
  } catch (error) {
    const picture = join(tmpdir(), `pulse-backstage-failure-${Date.now()}.png`);
    await page.screenshot({ path: picture, fullPage: true }).catch(() => {});
    const text = await page.locator('body').innerText().catch(() => '');
    const shown = `(page at ${page.url()}, picture ${picture}):\n${text.slice(0, 2000)}\n${page.problems.join('\n')}`;
    throw new Error(`${error.message}\n${shown}`, { cause: error });
  } finally {
    await page.context().close();
  }
}

/** Elements reaching past the window's right edge (a page that scrolls sideways). */
async function overflowing(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    return [...document.querySelectorAll('body *')]
      .filter(e => e.getBoundingClientRect().right + window.scrollX > width + 1)
      .slice(0, 8)
      .map(e => `${e.tagName.toLowerCase()}.${String(e.className).split(' ')[0]} right=${Math.round(e.getBoundingClientRect().right + window.scrollX)}`);
  });
}

async function pick(page, label, option) {
  await open(page, label);
  await page.getByRole('option', { name: option, exact: true }).click({ timeout: UI_MS });
}

/** Opens the picker labelled `label` (exactly: "Group" is not "Grouping"). */
async function open(page, label) {
  await page.getByLabel(label, { exact: true }).first().click({ timeout: UI_MS })
    .catch(() => page.getByText(label, { exact: true }).locator('..').getByRole('button').click());
}

/** The group picker's choices, in order. */
async function groupOptions(page) {
  await open(page, 'Group');
  await page.getByRole('option').first().waitFor({ timeout: UI_MS });
  const options = (await page.getByRole('option').allInnerTexts()).map(text => text.trim());
  await page.keyboard.press('Escape');
  return options;
}

async function shoot(page, name) {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, name) });
}
