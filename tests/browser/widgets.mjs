// The embed widgets (assets/embed/embed.js) in a real Chromium, against a running daemon:
// a creator is set up through the HTTP API, a page on another origin carries the creator's
// tags (so CORS and allowed_origins are exercised), and each widget is checked as a
// visitor sees it: tiers, prices in two locales, an experiment's variant kept across
// reloads, the theme, checkout through the daemon (Stripe is .ci/fake-stripe), a
// customer's usage with and without a token, the upgrade prompt, a phone-sized viewport
// and the keyboard. Run by tests/browser/run; exits non-zero when a check fails.
//
// Usage: node tests/browser/widgets.mjs BASE_URL ADMIN_TOKEN
//        STARYER_SCREENSHOTS=1 also writes docs/screenshots/*.png.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { chromium } from 'playwright-core';

const [base, adminToken] = process.argv.slice(2);
if (!base || !adminToken) {
  console.error('usage: node tests/browser/widgets.mjs BASE_URL ADMIN_TOKEN');
  process.exit(2);
}
const screenshots = process.env.STARYER_SCREENSHOTS === '1' ? new URL('../../docs/screenshots/', import.meta.url) : null;

// ---- The creator, through the daemon's API -------------------------------------------

async function api(method, path, token, body) {
  const answer = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body && JSON.stringify(body),
  });
  const text = await answer.text();
  if (!answer.ok) throw new Error(`${method} ${path}: ${answer.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const TITLES = { a: 'Simple pricing', b: 'Pricing that grows with you' };
const PRIMARY = '#0f766e'; // rgb(15, 118, 110)
const checkoutUrls = { success_url: 'https://creator.example/thanks', cancel_url: 'https://creator.example/pricing' };

async function setUp(pageOrigin) {
  // A new creator and Stripe account each run, so that a daemon can be checked again.
  const run = Date.now().toString(36);
  const creator = await api('POST', '/v1/admin/creators', adminToken, { slug: `browser-${run}` });
  const sk = creator.secret_key;
  const call = (method, path, body) => api(method, path, sk, body);
  await call('PUT', '/v1/billing/account', { account_id: `acct_test1${run}` });
  await call('POST', '/v1/meters', { key: 'api_calls', name: 'API calls', unit: 'calls', aggregation: 'count', reset: 'month' });
  await call('POST', '/v1/meters', { key: 'exports', name: 'Exports', unit: 'exports', aggregation: 'count', reset: 'month' });
  const tier = (key, name, amount, currency, caps, features, extra) =>
    call('POST', '/v1/tiers', { key, name, price: { amount, currency, interval: 'month' }, caps, features, ...extra });
  await tier('free', 'Free', 0, 'usd', { api_calls: { limit: 100, on_exceed: 'block' } }, ['community_support'], { default: true });
  await tier('pro', 'Pro', 1900, 'usd', { api_calls: { limit: 10000, on_exceed: 'block' } }, ['sso', 'priority_support']);
  await tier('team', 'Team', 4900, 'usd', { api_calls: { limit: 100000, on_exceed: 'block' } }, ['sso', 'priority_support', 'audit_log']);
  await tier('pro_eu', 'Pro (EU)', 1900, 'eur', { api_calls: { limit: 10000, on_exceed: 'block' } }, ['sso']);
  await tier('pro_jp', 'Pro (JP)', 2000, 'jpy', { api_calls: { limit: 10000, on_exceed: 'block' } }, ['sso']);

  await call('PUT', '/v1/customers/alice', { tier: 'pro' });
  await call('PUT', '/v1/customers/bob', { tier: 'free' });
  const events = (customer_id, meter, n) => Array.from({ length: n }, () => ({ customer_id, meter, value: 1 }));
  await call('POST', '/v1/events', { events: [...events('alice', 'api_calls', 120), ...events('alice', 'exports', 3)] });
  await call('POST', '/v1/events', { events: events('bob', 'api_calls', 85) });

  const theme = { primary_color: PRIMARY, background_color: '#ffffff', text_color: '#111827', radius_px: 12 };
  const pricing = (title) => ({
    tiers: ['free', 'pro', 'team'],
    highlight: 'pro',
    texts: { title, subtitle: 'Start free, upgrade when you grow.', cta: 'Subscribe', highlight_label: 'Most popular' },
    theme,
    locale: 'en-US',
    ...checkoutUrls,
  });
  await call('POST', '/v1/embeds', { key: 'pricing', kind: 'pricing_table', config: pricing(TITLES.a) });
  const { version } = await call('POST', '/v1/embeds/pricing/versions', { config: pricing(TITLES.b) });
  await call('POST', '/v1/experiments', {
    key: 'headline-test',
    embed: 'pricing',
    variants: [
      { key: 'a', version: 1, weight: 0.5 },
      { key: 'b', version, weight: 0.5 },
    ],
  });
  await call('POST', '/v1/experiments/headline-test/start');
  await call('POST', '/v1/embeds', {
    key: 'pricing-intl',
    kind: 'pricing_table',
    config: { tiers: ['pro_eu', 'pro_jp'], texts: { title: 'Preise', cta: 'Abonnieren' }, theme, locale: 'de-DE', ...checkoutUrls },
  });
  await call('POST', '/v1/embeds', {
    key: 'usage',
    kind: 'usage_meter',
    config: { meters: ['api_calls', 'exports'], texts: { title: 'Your usage', signed_out: 'Sign in to see what you used.' }, theme, locale: 'en-US' },
  });
  await call('POST', '/v1/embeds', {
    key: 'upgrade',
    kind: 'upgrade_prompt',
    config: {
      meter: 'api_calls',
      show_at: 'warn',
      upgrade_to: 'pro',
      texts: { title: 'You are almost out of API calls', body: 'Pro has 10,000 calls a month.', cta: 'Upgrade to Pro' },
      theme,
      locale: 'en-US',
      ...checkoutUrls,
    },
  });
  const session = (customer) => call('POST', `/v1/customers/${customer}/sessions`, { scope: 'embed' });
  const tokens = { alice: (await session('alice')).token, bob: (await session('bob')).token };
  const revoked = await session('alice');
  await call('DELETE', `/v1/sessions/${revoked.id}`);
  tokens.revoked = revoked.token;
  await call('PATCH', '/v1/creator', { allowed_origins: [pageOrigin] });
  return { sk, pk: creator.publishable_key, tokens };
}

// ---- The creator's site: plain pages on another origin ---------------------------------

const attr = (text) => String(text).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

function pages(setup) {
  const pk = attr(setup.pk);
  const div = (embed, token) =>
    `<div data-staryer-embed="${embed}" data-staryer-key="${pk}"${token ? ` data-staryer-customer-token="${attr(token)}"` : ''}></div>`;
  const body = {
    '/pricing': div('pricing'),
    // Added after the page has loaded, into a container whose rule overrides the theme's colour.
    '/intl': `<style>#later staryer-embed{--staryer-primary:#b91c1c}</style><div id="later"></div>
      <script>setTimeout(() => { const d = document.createElement('div'); d.dataset.staryerEmbed = 'pricing-intl';
        d.dataset.staryerKey = "${pk}"; document.getElementById('later').append(d); }, 300)</script>`,
    '/unknown': div('no-such-embed'),
    // The custom element written directly, before the script defines it.
    '/usage': `<staryer-embed embed="usage" key="${pk}" customer-token="${attr(setup.tokens.alice)}"></staryer-embed>`,
    '/usage-signed-out': div('usage'),
    '/usage-revoked': div('usage', setup.tokens.revoked),
    '/upgrade-bob': div('upgrade', setup.tokens.bob),
    '/upgrade-alice': div('upgrade', setup.tokens.alice),
  };
  return (request, response) => {
    const path = new URL(request.url, 'http://page').pathname;
    if (!(path in body)) return response.writeHead(404).end();
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Creator site</title>
<style>body{margin:0;padding:24px;background:#f3f4f6;font-family:Georgia,serif}main{max-width:1000px;margin:0 auto}</style>
</head><body><main>${body[path]}</main><script src="${base}/embed.js" async></script></body></html>`);
  };
}

const listen = (handler) =>
  new Promise((resolve) => {
    const server = http.createServer(handler).listen(0, '127.0.0.1', () => resolve(server));
  });

// ---- Checks ------------------------------------------------------------------------------

// Two servers of the same pages: the first origin is allowed, the second is not.
const site = await listen((req, res) => handler(req, res));
const stranger = await listen((req, res) => handler(req, res));
const origin = `http://127.0.0.1:${site.address().port}`;
const strangerOrigin = `http://127.0.0.1:${stranger.address().port}`;
const setup = await setUp(origin).catch((error) => {
  console.log(`FAIL setting the creator up: ${error.message}\nbrowser checks: 0 passed, 1 failed`);
  process.exit(1);
});
const handler = pages(setup);
const browser = await chromium.launch({
  executablePath: process.env.STARYER_CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

let failed = 0;
let passed = 0;
async function check(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${String(error.stack || error).replace(/\n/g, '\n     ')}`);
  }
}

// A fresh browser profile (a new visitor) on one page; fails on any uncaught script error.
async function visit(path, { viewport = { width: 1100, height: 760 }, from = origin, before } = {}) {
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'America/New_York' });
  const page = await context.newPage();
  page.errors = [];
  page.warnings = [];
  page.on('pageerror', (error) => page.errors.push(error));
  page.on('console', (message) => message.type() === 'warning' && page.warnings.push(message.text()));
  await page.route('https://stripe.example/**', (route) =>
    route.fulfill({ contentType: 'text/html', body: '<h1>Fake Stripe Checkout</h1>' }));
  if (before) await before(page);
  page.answer = embedAnswer(page);
  await page.goto(from + path);
  page.done = async () => {
    assert.deepEqual(page.errors, [], 'uncaught errors in the page');
    await context.close();
  };
  return page;
}

// The daemon's answer to the widget's first GET /v1/embed/{key}: {status, body}.
// (A page closed without asking for it is no unhandled rejection.)
function embedAnswer(page) {
  const answer = page
    .waitForResponse((r) => r.request().method() === 'GET' && /\/v1\/embed\/[^/]+$/.test(new URL(r.url()).pathname))
    .then(async (r) => ({ status: r.status(), body: await r.json() }));
  answer.catch(() => {});
  return answer;
}

const visitorOf = (page) => page.evaluate(() => localStorage.getItem('staryer_visitor'));
const texts = (locator) => locator.evaluateAll((els) => els.map((el) => el.textContent.replace(/\u00a0|\u202f/g, ' ').trim()));
const shot = async (page, name) => {
  if (!screenshots) return;
  mkdirSync(screenshots, { recursive: true });
  // The page down to the end of its content.
  const { y, height } = await page.locator('main').boundingBox();
  const { width } = page.viewportSize();
  await page.screenshot({ path: new URL(`${name}.png`, screenshots).pathname, fullPage: true, clip: { x: 0, y: 0, width, height: y + height + 24 } });
};
// The element that has the focus, inside shadow roots.
const focused = (page) =>
  page.evaluate(() => {
    let el = document.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    const style = getComputedStyle(el);
    return { tag: el.tagName, text: el.textContent, tier: el.closest('[data-tier]')?.dataset.tier, outline: style.outlineStyle };
  });

// Every visitor shown the pricing table before the experiment's results are read, by variant.
const visitors = { a: new Set(), b: new Set() };

await check('the pricing table shows the configured tiers in order, with prices, caps, features and one buy button per paid tier', async () => {
  const page = await visit('/pricing');
  const { status, body } = await page.answer;
  assert.equal(status, 200);
  assert.deepEqual(body.tiers.map((t) => t.key), ['free', 'pro', 'team']);
  const cards = page.locator('staryer-embed li.card');
  await cards.first().waitFor();
  assert.deepEqual(await texts(cards.locator('h3')), ['Free', 'Pro', 'Team']);
  assert.deepEqual(await texts(cards.locator('.price')), ['$0.00', '$19.00 / month', '$49.00 / month']);
  assert.deepEqual(await texts(cards.locator('.caps li')), ['100 API calls / month', '10,000 API calls / month', '100,000 API calls / month']);
  // Features are keys (`priority_support`); the widget shows them with spaces.
  assert.deepEqual(await texts(page.locator('staryer-embed li[data-tier="team"] .features li')), ['sso', 'priority support', 'audit log']);
  assert.equal(await page.locator('staryer-embed li[data-tier="free"] button').count(), 0);
  assert.deepEqual(await texts(cards.locator('button')), ['Subscribe', 'Subscribe']);
  assert.deepEqual(await texts(page.locator('staryer-embed .hl h3')), ['Pro']);
  assert.deepEqual(await texts(page.locator('staryer-embed .hl .badge')), ['Most popular']);
  assert.equal(await page.locator('staryer-embed h2').textContent(), TITLES[body.variant]);
  visitors[body.variant].add(await visitorOf(page));
  assert.ok(await page.locator('staryer-embed').evaluate((el) => el.shadowRoot && el.parentElement.matches('[data-staryer-embed]')));
  await shot(page, 'pricing-desktop');
  await page.done();
});

await check("the experiment's variant decides the title, and a reload keeps the visitor and its variant", async () => {
  for (let i = 0; i < 20 && !(visitors.a.size && visitors.b.size); i++) {
    const page = await visit('/pricing');
    const first = (await page.answer).body;
    assert.equal(first.experiment, 'headline-test');
    assert.ok(first.variant in TITLES, `variant ${first.variant}`);
    const title = page.locator('staryer-embed h2');
    await title.waitFor();
    assert.equal(await title.textContent(), TITLES[first.variant]);
    const visitor = await visitorOf(page);
    assert.match(visitor, /^[0-9a-f-]{32,36}$/);
    page.answer = embedAnswer(page);
    await page.reload();
    assert.equal((await page.answer).body.variant, first.variant);
    await title.waitFor();
    assert.equal(await title.textContent(), TITLES[first.variant]);
    assert.equal(await visitorOf(page), visitor);
    visitors[first.variant].add(visitor);
    await page.done();
  }
  assert.ok(visitors.a.size && visitors.b.size, 'both variants shown to some visitor');
});

await check('the experiment counts each visitor once, in the variant it was shown', async () => {
  const expected = { a: visitors.a.size, b: visitors.b.size };
  let got;
  for (let i = 0; i < 50; i++) {
    const results = await api('GET', '/v1/experiments/headline-test/results', setup.sk);
    got = Object.fromEntries(results.variants.map((v) => [v.key, v.visitors]));
    if (got.a === expected.a && got.b === expected.b) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(got, expected);
});

await check("the theme's primary colour and radius reach the buttons", async () => {
  const page = await visit('/pricing');
  const button = page.locator('staryer-embed li[data-tier="pro"] button');
  await button.waitFor();
  const style = await button.evaluate((b) => ({ background: getComputedStyle(b).backgroundColor, radius: getComputedStyle(b).borderTopLeftRadius }));
  assert.deepEqual(style, { background: 'rgb(15, 118, 110)', radius: '12px' });
  await page.done();
});

await check('a click on buy records a click, starts a checkout through the daemon and lands on Stripe', async () => {
  const page = await visit('/pricing');
  const sent = [];
  page.on('request', (r) => /\/v1\/embed\/(events|checkout)$/.test(new URL(r.url()).pathname) && r.method() === 'POST' && sent.push(r));
  const button = page.locator('staryer-embed li[data-tier="pro"] button');
  await button.waitFor();
  const visitor = await visitorOf(page);
  await button.click();
  await page.waitForURL(/^https:\/\/stripe\.example\/fake\/\d+$/);
  const bodies = sent.map((r) => ({ path: new URL(r.url()).pathname, key: new URL(r.url()).searchParams.get('key'), ...r.postDataJSON() }));
  const shown = bodies.map(({ path, type, tier }) => `${path} ${type || tier}`);
  // The click goes out beside the checkout (neither waits for the other); checkout_started after it.
  assert.deepEqual([...shown].sort(), ['/v1/embed/checkout pro', '/v1/embed/events checkout_started', '/v1/embed/events click']);
  assert.equal(shown.at(-1), '/v1/embed/events checkout_started');
  for (const body of bodies) {
    assert.equal(body.embed, 'pricing');
    assert.equal(body.visitor_id, visitor);
    assert.equal(body.key, setup.pk);
  }
  for (const request of sent.slice(0, 2)) {
    const expected = new URL(request.url()).pathname.endsWith('/checkout') ? 200 : 202;
    assert.equal((await request.response()).status(), expected, request.url());
  }
  await page.done();
});

await check('at 360 px the cards stack in one column with no horizontal scroll', async () => {
  const page = await visit('/pricing', { viewport: { width: 360, height: 740 } });
  const cards = page.locator('staryer-embed li.card');
  await cards.first().waitFor();
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 360);
  const boxes = await cards.evaluateAll((els) => els.map((el) => el.getBoundingClientRect().toJSON()));
  assert.equal(new Set(boxes.map((b) => Math.round(b.left))).size, 1, 'one column');
  for (const box of boxes) assert.ok(box.right <= 360, `a card ends at ${box.right}`);
  await shot(page, 'pricing-360');
  await page.done();
});

await check('Tab reaches the buy buttons (with a visible focus ring) and Enter buys', async () => {
  const page = await visit('/pricing');
  await page.locator('staryer-embed button').first().waitFor();
  const reached = [];
  for (let i = 0; i < 10 && reached.length < 2; i++) {
    await page.keyboard.press('Tab');
    const now = await focused(page);
    if (now.tag === 'BUTTON') reached.push(now);
  }
  assert.deepEqual(reached.map((b) => [b.tier, b.text]), [['pro', 'Subscribe'], ['team', 'Subscribe']]);
  assert.ok(reached.every((b) => b.outline !== 'none'), 'focus ring');
  await page.keyboard.press('Enter');
  await page.waitForURL(/^https:\/\/stripe\.example\/fake\/\d+$/);
  await page.done();
});

await check("a de-DE table formats euros and yen in the locale's own way, and picks up a div added later; the page's rule overrides the theme", async () => {
  const page = await visit('/intl');
  const cards = page.locator('staryer-embed li.card');
  await cards.first().waitFor();
  assert.deepEqual(await texts(cards.locator('.price')), ['19,00 € / month', '2.000 ¥ / month']);
  assert.deepEqual(await texts(cards.locator('.caps li')), ['10.000 API calls / month', '10.000 API calls / month']);
  assert.deepEqual(await texts(cards.locator('button')), ['Abonnieren', 'Abonnieren']);
  const background = await cards.locator('button').first().evaluate((b) => getComputedStyle(b).backgroundColor);
  assert.equal(background, 'rgb(185, 28, 28)');
  await page.done();
});

await check('the usage meter shows a customer its usage with a token: numbers, bar, aria values, period end', async () => {
  const page = await visit('/usage');
  const { status, body } = await page.answer;
  assert.equal(status, 200);
  assert.equal(body.customer.customer_id, 'alice');
  const calls = page.locator('staryer-embed [data-meter="api_calls"]');
  await calls.waitFor();
  assert.equal(await page.locator('staryer-embed h2').textContent(), 'Your usage');
  assert.match(await calls.textContent(), /120 of 10,000 API calls/);
  const bar = calls.locator('[role="progressbar"]');
  const aria = await bar.evaluate((el) => Object.fromEntries(
    ['aria-valuenow', 'aria-valuemin', 'aria-valuemax', 'aria-label'].map((name) => [name, el.getAttribute(name)])));
  assert.deepEqual(aria, { 'aria-valuenow': '120', 'aria-valuemin': '0', 'aria-valuemax': '10000', 'aria-label': 'API calls' });
  const end = body.customer.usage.find((u) => u.meter === 'api_calls').period_end;
  const date = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeZone: 'UTC' }).format(new Date(end));
  assert.match(await calls.textContent(), new RegExp(`Resets ${date}`));
  // Exports have no cap on Pro: the number alone, no bar.
  const exports = page.locator('staryer-embed [data-meter="exports"]');
  assert.match(await exports.textContent(), /3 Exports/);
  assert.equal(await exports.locator('[role="progressbar"]').count(), 0);
  await shot(page, 'usage-meter');
  await page.done();
});

// What a signed-out widget says: the config's text, which the 401 of a widget asked without a
// token carries; the default when the token itself is refused (no config then).
function signedOutText(body) {
  return body.config?.texts?.signed_out ?? 'Sign in to see your usage.';
}

await check('the usage meter says sign in without a token (after a loading state)', async () => {
  const page = await visit('/usage-signed-out', {
    // Slow the answer down so that the loading state can be seen.
    before: (page) => page.route(/\/v1\/embed\/usage\?/, async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await route.continue();
    }),
  });
  await page.locator('staryer-embed [role="status"]', { hasText: 'Loading' }).waitFor();
  const { status, body } = await page.answer;
  assert.equal(status, 401);
  assert.equal(body.error.code, 'customer_token_required');
  assert.equal(signedOutText(body), 'Sign in to see what you used.');
  await page.locator('staryer-embed', { hasText: signedOutText(body) }).waitFor();
  assert.equal(await page.locator('staryer-embed [role="progressbar"]').count(), 0);
  await page.done();
});

await check('a revoked token gets the signed-out text too', async () => {
  const page = await visit('/usage-revoked');
  const { status, body } = await page.answer;
  assert.equal(status, 401);
  assert.equal(body.error.code, 'invalid_customer_token');
  await page.locator('staryer-embed', { hasText: signedOutText(body) }).waitFor();
  await page.done();
});

await check('the upgrade prompt shows for a customer past warn, and its button starts a checkout for the upgrade tier', async () => {
  const page = await visit('/upgrade-bob');
  const { body } = await page.answer;
  assert.deepEqual(body.customer.prompt, { ...body.customer.prompt, show: true, used: 85, limit: 100 });
  const box = page.locator('staryer-embed section[role="status"]');
  await box.waitFor();
  assert.equal(await box.locator('h2').textContent(), 'You are almost out of API calls');
  assert.match(await box.textContent(), /Pro has 10,000 calls a month\./);
  assert.match(await box.textContent(), /85 of 100 API calls/);
  await shot(page, 'upgrade-prompt');
  // With a token every call carries it (a preflight first), the keepalive events too.
  const click = page.waitForResponse((r) => r.url().includes('/v1/embed/events') && r.request().postDataJSON()?.type === 'click');
  const checkout = page.waitForRequest((r) => r.url().includes('/v1/embed/checkout') && r.method() === 'POST');
  await box.locator('button', { hasText: 'Upgrade to Pro' }).click();
  assert.equal((await click).status(), 202);
  assert.equal((await click).request().headers()['x-staryer-customer-token'], setup.tokens.bob);
  assert.equal((await checkout).postDataJSON().tier, 'pro');
  assert.equal((await checkout).headers()['x-staryer-customer-token'], setup.tokens.bob);
  await page.waitForURL(/^https:\/\/stripe\.example\/fake\/\d+$/);
  await page.done();
});

await check('the upgrade prompt stays hidden for a customer well under its cap', async () => {
  const page = await visit('/upgrade-alice');
  const { status, body } = await page.answer;
  assert.equal(status, 200);
  assert.equal(body.customer.prompt.show, false);
  await page.waitForFunction(() => document.querySelector('staryer-embed')?.hidden);
  assert.equal(await page.locator('staryer-embed section').count(), 0);
  await page.done();
});

await check('an unknown embed shows nothing and warns in the console', async () => {
  const page = await visit('/unknown');
  const { status, body } = await page.answer;
  assert.equal(status, 404);
  assert.equal(body.error.code, 'embed_not_found');
  await page.waitForFunction(() => document.querySelector('staryer-embed')?.hidden);
  assert.ok(page.warnings.some((text) => text.includes('no-such-embed')), page.warnings.join('\n'));
  await page.done();
});

await check('a site that is not among allowed_origins gets the error state', async () => {
  const page = await visit('/pricing', { from: strangerOrigin });
  await page.locator('staryer-embed [role="alert"]', { hasText: 'could not be loaded' }).waitFor();
  assert.equal(await page.locator('staryer-embed li.card').count(), 0);
  await page.done();
});

await browser.close();
site.close();
stranger.close();
console.log(`browser checks: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
