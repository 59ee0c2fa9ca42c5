// The HTML faces in a real Chromium, against a running daemon, as the people who use them
// would: the platform owner (/admin) makes a creator and its first owner; the owner sets a
// password from the invite link and, through the dashboard's own forms, makes a meter and
// two tiers, watches a customer's usage rise, and changes a tier; the customer enters the
// portal by a one-time link, sees its usage and changes plan (a paid tier goes to Stripe
// Checkout, here .ci/fake-stripe's https://stripe.example/fake/N, intercepted). Every page
// visited is checked with axe-core: a violation of impact serious or critical fails.
// Run by tests/browser/run after widgets.mjs; exits non-zero when a check fails.
//
// Usage: node tests/browser/dashboard.mjs BASE_URL ADMIN_TOKEN   (on a daemon with no creator
//        `shop` and no user owner@shop.example, billing on against .ci/fake-stripe)
//        STARYER_SCREENSHOTS=1 also writes docs/screenshots/{dashboard-*,portal,admin}.png.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [base, adminToken] = process.argv.slice(2);
if (!base || !adminToken) {
  console.error('usage: node tests/browser/dashboard.mjs BASE_URL ADMIN_TOKEN');
  process.exit(2);
}
const screenshots = process.env.STARYER_SCREENSHOTS === '1' ? new URL('../../docs/screenshots/', import.meta.url) : null;
const axePath = fileURLToPath(new URL('node_modules/axe-core/axe.min.js', import.meta.url));

const OWNER = 'owner@shop.example';
const PASSWORD = 'correct horse battery staple';
const ACCOUNT = 'acct_test1shop';
const STRIPE_CHECKOUT = /^https:\/\/stripe\.example\/fake\/\d+$/;

// ---- The JSON API, for what the test does not do through a page -------------------------

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

// ---- The browser ----------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: process.env.STARYER_CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const viewport = { width: 1200, height: 900 };

// What went wrong in any page, whatever check it happened in: uncaught script errors,
// console errors (a CSP refusal is one), subresources refused (4xx), answers of 500 or more.
const troubles = [];

// A fresh browser profile (a new person): the CSP of the pages is in force.
async function person() {
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC' });
  context.setDefaultTimeout(10_000);
  await context.route('https://stripe.example/**', (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>Fake Stripe</title><h1>Fake Stripe Checkout</h1>' }));
  const page = await context.newPage();
  page.on('pageerror', (error) => troubles.push(`${page.url()}: uncaught ${error}`));
  page.on('console', (message) => {
    // A failed load is judged by its answer below (a refused sign-in's page is a 401).
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      troubles.push(`${page.url()}: console error: ${message.text().trim()}`);
    }
  });
  page.on('response', (response) => {
    const request = response.request();
    const path = new URL(response.url()).pathname;
    // Chromium asks every origin for /favicon.ico; the daemon has none.
    const refused = response.status() >= 400 && request.resourceType() !== 'document' && path !== '/favicon.ico';
    if (response.status() >= 500 || refused) troubles.push(`${request.method()} ${response.url()}: ${response.status()}`);
  });
  return page;
}

// ---- axe-core ------------------------------------------------------------------------------

// axe-core is injected as an inline script, which the pages' CSP (`script-src 'self'`)
// refuses. So the check runs in a context of its own with Playwright's `bypassCSP: true`,
// used for nothing else: the page the person has (its serialized DOM, under its own URL,
// so that a form's answer such as the admin's "creator made" page is checked as shown and
// no one-time link is used twice) is loaded there with the person's cookies, its
// stylesheets come from the daemon, and axe runs on it.
const axeContext = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC', bypassCSP: true });
const audited = []; // { name, url, serious: [violation], other: [violation] }

async function axeCheck(page, name) {
  const url = page.url();
  const body = await page.content();
  await axeContext.clearCookies();
  await axeContext.addCookies(await page.context().cookies());
  const copy = await axeContext.newPage();
  try {
    await copy.route((target) => target.href === url,
      (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body }), { times: 1 });
    await copy.goto(url);
    assert.ok(await copy.evaluate(() => [...document.styleSheets].some((sheet) => sheet.href?.endsWith('/assets/app.css') && sheet.cssRules.length)),
      `${name}: the copy for axe has its stylesheet`);
    await copy.addScriptTag({ path: axePath });
    const { violations } = await copy.evaluate(() => axe.run());
    const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    const other = violations.filter((v) => !serious.includes(v));
    audited.push({ name, url, serious, other });
    console.log(`     axe: ${name}: ${serious.length} serious or critical, ${other.length} other`);
  } finally {
    await copy.close();
  }
}

const describe = (v) =>
  `[${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n` +
  v.nodes.map((node) => `         ${node.target.join(' ')}${node.failureSummary ? ` — ${node.failureSummary.replace(/\s*\n\s*/g, '; ')}` : ''}`).join('\n');

// ---- Checks ---------------------------------------------------------------------------------

let failed = 0;
let passed = 0;
let skipped = 0;
let broken = false;
async function run(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name}`);
    return true;
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${String(error.stack || error).replace(/\n/g, '\n     ')}`);
    return false;
  }
}
// One step of the flow: each builds on the ones before, so after a failure the rest are skipped.
async function step(name, body) {
  if (broken) {
    skipped += 1;
    console.log(`skip ${name}`);
  } else if (!(await run(name, body))) {
    broken = true;
  }
}
// A step that nothing after it builds on: its failure skips nothing.
async function aside(name, body) {
  if (broken) {
    skipped += 1;
    console.log(`skip ${name}`);
  } else {
    await run(name, body);
  }
}

const text = async (locator) => (await locator.textContent()).replace(/\s+/g, ' ').trim();
const cells = (row) => row.locator('th, td').evaluateAll((els) => els.map((el) => el.textContent.replace(/\s+/g, ' ').trim()));
// The table row whose first cell (a header cell, or the first data cell) says exactly `name`.
const escape = (literal) => literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const rowOf = (page, name, table = page.locator('main table')) =>
  table.locator('tbody tr').filter({ has: page.locator(':scope > :first-child', { hasText: new RegExp(`^\\s*${escape(name)}\\s*$`) }) });
const shot = async (page, name) => {
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: fileURLToPath(new URL(`${name}.png`, screenshots)), fullPage: true });
};

const admin = await person();
const owner = await person();
let sk; // the creator's secret key
let invite; // the owner's invite link

await step('the platform owner signs in at /admin/sign-in with the admin token', async () => {
  const answer = await admin.goto(`${base}/admin`);
  assert.equal(new URL(admin.url()).pathname, '/admin/sign-in', 'signed out, /admin sends to sign in');
  assert.equal(answer.status(), 200);
  await axeCheck(admin, 'admin sign-in');
  await admin.getByLabel('Admin token', { exact: true }).fill(adminToken);
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL(`${base}/admin`);
  assert.equal(await text(admin.locator('h1')), 'Platform');
  assert.equal(await text(admin.locator('header .who')), 'platform owner');
  await axeCheck(admin, 'admin home');
});

await step("the platform owner makes creator shop; the page shows its secret key and the owner's invite link, once", async () => {
  const form = admin.locator('form', { has: admin.getByRole('button', { name: 'Make creator' }) });
  await form.getByLabel('Slug', { exact: true }).fill('shop');
  await form.getByLabel('Name', { exact: true }).fill('Shop');
  await form.getByLabel("First owner's email", { exact: true }).fill(OWNER);
  await form.getByRole('button', { name: 'Make creator' }).click();
  await admin.waitForURL(`${base}/admin/creators`);
  assert.equal(await text(admin.locator('main h2').first()), 'Creator shop is made');
  sk = await text(admin.locator('code#made-secret'));
  invite = await text(admin.locator('code#made-invite'));
  assert.match(sk, /^sk_\S{20,}$/);
  assert.match(invite, new RegExp(`^${escape(base)}/dashboard/link/\\S+$`));
  await axeCheck(admin, 'admin, creator made');
  // A fresh look at the page no longer shows them.
  await admin.goto(`${base}/admin`);
  assert.equal(await admin.locator('#made-secret, #made-invite').count(), 0);
  assert.ok(!(await admin.content()).includes(sk), 'the secret key is shown once');
});

await step('the owner opens the invite link, sets a password and lands on the dashboard, signed in', async () => {
  await owner.goto(invite);
  assert.equal(await text(owner.locator('h1')), 'Set your password');
  await axeCheck(owner, 'dashboard set-password');
  await owner.getByLabel('New password (at least 10 characters)', { exact: true }).fill(PASSWORD);
  await owner.getByRole('button', { name: 'Set password and sign in' }).click();
  await owner.waitForURL(`${base}/dashboard?done=password_set`);
  assert.equal(await text(owner.locator('h1')), 'Overview');
  assert.equal(await text(owner.locator('main .notice')), 'Your password is set; you are signed in.');
  assert.equal(await text(owner.locator('header .who')), OWNER);
  assert.equal(await owner.locator('nav a[aria-current="page"]').textContent(), 'Overview');
  await axeCheck(owner, 'dashboard overview');
});

await step("the creator's Stripe account is connected (API)", async () => {
  const account = await api('PUT', '/v1/billing/account', sk, { account_id: ACCOUNT });
  assert.equal(account.account_id, ACCOUNT);
});

await step('the owner makes meter api_calls (sum, reset every month) with the meters form', async () => {
  await owner.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Meters' }).click();
  await owner.waitForURL(`${base}/dashboard/meters`);
  assert.match(await text(owner.locator('main')), /No meters yet\./);
  await owner.getByLabel('Key', { exact: true }).fill('api_calls');
  await owner.getByLabel('Name', { exact: true }).fill('API calls');
  await owner.getByLabel('Unit', { exact: true }).fill('calls');
  await owner.getByLabel('Aggregation', { exact: true }).selectOption('sum');
  await owner.getByLabel('Reset', { exact: true }).selectOption('month');
  await owner.getByRole('button', { name: 'Create meter' }).click();
  await owner.waitForURL(`${base}/dashboard/meters?done=meter_created`);
  assert.equal(await text(owner.locator('main .notice')), 'The meter was created.');
  const row = await cells(rowOf(owner, 'api_calls'));
  assert.deepEqual(row.slice(0, 5), ['api_calls', 'API calls', 'calls', 'sum', 'month']);
  const meter = await api('GET', '/v1/meters/api_calls', sk);
  assert.deepEqual([meter.aggregation, meter.reset, meter.unit], ['sum', 'month', 'calls']);
  await axeCheck(owner, 'dashboard meters');
});

// The new-tier form on /dashboard/tiers, filled in and sent.
async function newTier({ key, name, amount, limit }) {
  await owner.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Tiers' }).click();
  await owner.waitForURL(`${base}/dashboard/tiers`);
  const form = owner.locator('form', { has: owner.getByRole('button', { name: 'Create tier' }) });
  await form.getByLabel('Key', { exact: true }).fill(key);
  await form.getByLabel('Name', { exact: true }).fill(name);
  await form.getByLabel('Price, in minor units (cents)', { exact: true }).fill(String(amount));
  await form.getByLabel('Currency', { exact: true }).fill('usd');
  await form.getByLabel('Every', { exact: true }).selectOption('month');
  await form.getByLabel('Limit of api_calls', { exact: true }).fill(String(limit));
  await form.getByRole('button', { name: 'Create tier' }).click();
  await owner.waitForURL(`${base}/dashboard/tiers/${key}?done=tier_created`);
  assert.equal(await text(owner.locator('main .notice')), 'The tier was created.');
  assert.equal(await text(owner.locator('h1')), `Tier ${key}`);
}

await step('the owner makes tiers free (0, 100 calls) and pro (29.00 USD, 1,000 calls) with the tiers form', async () => {
  await newTier({ key: 'free', name: 'Free', amount: 0, limit: 100 });
  await newTier({ key: 'pro', name: 'Pro', amount: 2900, limit: 1000 });
  // Billing is on: the paid tier is synced to Stripe (the fake one says yes).
  assert.match(await text(owner.locator('main section.card', { hasText: 'At Stripe' })), /Status: \S+/);
  await axeCheck(owner, 'dashboard tier (pro)');
  for (const [key, amount, limit] of [['free', 0, 100], ['pro', 2900, 1000]]) {
    const tier = await api('GET', `/v1/tiers/${key}`, sk);
    assert.deepEqual([tier.price.amount, tier.price.currency, tier.price.interval, Number(tier.caps.api_calls.limit)], [amount, 'usd', 'month', limit], key);
  }
  await owner.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Tiers' }).click();
  await owner.waitForURL(`${base}/dashboard/tiers`);
  assert.deepEqual((await cells(rowOf(owner, 'free'))).slice(0, 5), ['free', 'Free', '0', 'usd', 'month']);
  assert.deepEqual((await cells(rowOf(owner, 'pro'))).slice(0, 5), ['pro', 'Pro', '2900', 'usd', 'month']);
  await axeCheck(owner, 'dashboard tiers');
});

// The api_calls row of the usage table on a customer page: [meter, used, limit, …].
const usageRow = async (page) => cells(rowOf(page, 'api_calls'));
const event = (value) => api('POST', '/v1/events', sk, { customer_id: 'alice', meter: 'api_calls', value });

await step("alice is put on free (API), and her usage on her dashboard page rises with her events", async () => {
  await api('PUT', '/v1/customers/alice', sk, { tier: 'free' });
  for (const value of [3, 4]) assert.equal((await event(value)).decision, 'allow');
  await owner.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Customers' }).click();
  await owner.waitForURL(`${base}/dashboard/customers`);
  assert.deepEqual((await cells(rowOf(owner, 'alice'))).slice(0, 3), ['alice', '—', 'free']);
  await axeCheck(owner, 'dashboard customers');
  await rowOf(owner, 'alice').getByRole('link', { name: 'Open' }).click();
  await owner.waitForURL(`${base}/dashboard/customers/alice`);
  assert.equal(await text(owner.locator('h1')), 'Customer alice');
  assert.match(await text(owner.locator('main')), /Tier: free/);
  assert.deepEqual((await usageRow(owner)).slice(0, 3), ['api_calls', '7', '100']);
  assert.equal(await owner.locator('progress').getAttribute('value'), '0.070');
  await axeCheck(owner, 'dashboard customer');
  assert.equal((await event(20)).decision, 'allow');
  await owner.reload();
  assert.deepEqual((await usageRow(owner)).slice(0, 3), ['api_calls', '27', '100']);
  assert.equal(await owner.locator('progress').getAttribute('value'), '0.270');
});

await step("the owner raises free's cap to 150 on the tier's page; the page, the API and alice's page show it", async () => {
  await owner.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Tiers' }).click();
  await rowOf(owner, 'free').getByRole('link', { name: 'Edit' }).click();
  await owner.waitForURL(`${base}/dashboard/tiers/free`);
  const limit = owner.getByLabel('Limit of api_calls', { exact: true });
  assert.equal(await limit.inputValue(), '100');
  await axeCheck(owner, 'dashboard tier edit (free)');
  await limit.fill('150');
  await owner.getByRole('button', { name: 'Save tier' }).click();
  await owner.waitForURL(`${base}/dashboard/tiers/free?done=tier_saved`);
  assert.equal(await text(owner.locator('main .notice')), 'The tier was saved.');
  assert.equal(await owner.getByLabel('Limit of api_calls', { exact: true }).inputValue(), '150');
  assert.equal(await owner.getByLabel('Name', { exact: true }).inputValue(), 'Free', 'the other fields are kept');
  const tier = await api('GET', '/v1/tiers/free', sk);
  assert.equal(Number(tier.caps.api_calls.limit), 150);
  assert.equal(tier.price.amount, 0);
  await owner.goto(`${base}/dashboard/customers/alice`);
  assert.deepEqual((await usageRow(owner)).slice(0, 3), ['api_calls', '27', '150']);
});

await step('the team page lists the owner; the audit log lists the changes made through the forms', async () => {
  await owner.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Team' }).click();
  await owner.waitForURL(`${base}/dashboard/team`);
  assert.deepEqual((await cells(rowOf(owner, OWNER))).slice(0, 3), [OWNER, 'owner', 'yes']);
  await axeCheck(owner, 'dashboard team');
  await owner.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Audit log' }).click();
  await owner.waitForURL(`${base}/dashboard/audit`);
  const rows = await owner.locator('main table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [...tr.cells].slice(2).map((td) => td.textContent.trim()).join(' ')));
  for (const change of ['meter.create meter api_calls', 'tier.create tier free', 'tier.create tier pro', 'tier.update tier free']) {
    assert.ok(rows.includes(change), `${change} in ${JSON.stringify(rows)}`);
  }
  await axeCheck(owner, 'dashboard audit');
});

await step('the owner signs out, is refused a wrong password, and signs in with the right one', async () => {
  await owner.locator('header').getByRole('button', { name: 'Sign out' }).click();
  await owner.waitForURL(`${base}/dashboard/sign-in`);
  await owner.goto(`${base}/dashboard/meters`);
  assert.equal(owner.url(), `${base}/dashboard/sign-in`, 'signed out, a page sends to sign in');
  await axeCheck(owner, 'dashboard sign-in');
  await owner.getByLabel('Email', { exact: true }).fill(OWNER);
  await owner.getByLabel('Password', { exact: true }).fill('not the password');
  await owner.getByRole('button', { name: 'Sign in' }).click();
  await owner.getByRole('alert').waitFor();
  assert.equal(await owner.getByLabel('Email', { exact: true }).inputValue(), OWNER, 'the email is kept');
  await axeCheck(owner, 'dashboard sign-in, refused');
  await owner.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await owner.getByRole('button', { name: 'Sign in' }).click();
  await owner.waitForURL(`${base}/dashboard`);
  assert.equal(await text(owner.locator('header .who')), OWNER);
});

const customer = await person();
let portalToken;

await step('alice enters the portal by a one-time link (fresh browser) and sees her usage and her plan', async () => {
  ({ token: portalToken } = await api('POST', '/v1/customers/alice/sessions', sk, { scope: 'portal' }));
  await customer.goto(`${base}/portal/enter?token=${encodeURIComponent(portalToken)}`);
  await axeCheck(customer, 'portal link page');
  // The link's page spends nothing; its button posts the token.
  await customer.getByRole('button', { name: 'Open my account' }).click();
  await customer.waitForURL(`${base}/portal`);
  assert.equal(customer.url(), `${base}/portal`);
  assert.equal(await text(customer.locator('h1')), 'Your account');
  assert.equal(await text(customer.locator('header .product')), 'Shop');
  assert.equal(await text(customer.locator('header .who')), 'alice');
  const usage = customer.locator('section.card', { has: customer.getByRole('heading', { name: 'Usage this period' }) });
  // Customers read the meter's name, not its key.
  assert.deepEqual((await cells(rowOf(customer, 'API calls', usage.locator('table')))).slice(0, 3), ['API calls', '27', '150']);
  const plan = customer.locator('section.card', { has: customer.getByRole('heading', { name: 'Your plan' }) });
  assert.match(await text(plan), /Free — 0\.00 USD per month/);
  assert.ok(await customer.getByRole('radio', { name: /Free/ }).isChecked());
  await axeCheck(customer, 'portal home');
});

await aside('alice changes plan to pro: a paid tier with billing on goes to Stripe Checkout', async () => {
  const plan = customer.waitForResponse((r) => r.url() === `${base}/portal/plan` && r.request().method() === 'POST');
  plan.catch(() => {});
  const seen = troubles.length;
  await customer.getByRole('radio', { name: /Pro/ }).check();
  await customer.getByRole('button', { name: 'Change plan' }).click();
  await customer.waitForURL(STRIPE_CHECKOUT).catch((error) => {
    throw new Error(`the browser stayed at ${customer.url()}; what the page reported: ${troubles.slice(seen).join(' | ') || 'nothing'}\n${error.message}`);
  });
  const answer = await plan;
  assert.equal(answer.status(), 303);
  assert.match(answer.headers().location, STRIPE_CHECKOUT);
  assert.equal(await text(customer.locator('h1')), 'Fake Stripe Checkout');
});

await step('the same portal link used a second time lands on /portal/signed-out', async () => {
  const again = await person();
  await again.goto(`${base}/portal/enter?token=${encodeURIComponent(portalToken)}`);
  const answered = again.waitForResponse((r) => r.url() === `${base}/portal/signed-out`);
  await again.getByRole('button', { name: 'Open my account' }).click();
  const answer = await answered;
  assert.equal(again.url(), `${base}/portal/signed-out`);
  assert.equal(answer.status(), 401);
  assert.equal(await text(again.locator('h1')), 'Your link has expired');
  await axeCheck(again, 'portal signed-out');
  await again.context().close();
});

await step("the platform owner's page lists shop, with its Stripe account and its customer", async () => {
  await admin.goto(`${base}/admin`);
  const row = await cells(rowOf(admin, 'Shop (shop)'));
  assert.equal(row[0], 'Shop (shop)');
  assert.equal(row[1], '1', 'customers');
  assert.equal(row[5], ACCOUNT);
  assert.equal(Number(row[2]), 3, 'events decided since the daemon started');
});

if (screenshots) {
  await step('screenshots in docs/screenshots', async () => {
    await owner.goto(`${base}/dashboard`);
    await shot(owner, 'dashboard-overview');
    await owner.goto(`${base}/dashboard/customers/alice`);
    await shot(owner, 'dashboard-customer');
    await owner.goto(`${base}/dashboard/tiers/free`);
    await shot(owner, 'dashboard-tier');
    await customer.goto(`${base}/portal`);
    assert.equal(customer.url(), `${base}/portal`);
    await shot(customer, 'portal');
    await admin.goto(`${base}/admin`);
    await shot(admin, 'admin');
  });
}

await run('no serious or critical axe violation on any page visited', async () => {
  assert.ok(audited.length >= 17 || broken, `${audited.length} pages checked`);
  for (const page of audited) {
    for (const v of page.other) console.log(`     note: ${page.name} (${page.url}): ${describe(v)}`);
  }
  const bad = audited.filter((page) => page.serious.length);
  assert.ok(!bad.length, `\n${bad.map((page) => `${page.name} (${page.url}):\n       ${page.serious.map(describe).join('\n       ')}`).join('\n')}`);
});

await run('no uncaught script error, console error (CSP refusals included), refused subresource or 5xx answer on any page', async () => {
  assert.deepEqual(troubles, []);
});

await browser.close();
console.log(`dashboard checks: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
