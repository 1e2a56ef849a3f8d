#!/usr/bin/env node
// The dashboard in a real headless browser: Debian's chromium driven by playwright-core.
//
//   node tests/ui/dashboard.mjs URL TOKEN
//
// URL is the daemon's base ("http://127.0.0.1:PORT"), TOKEN its admin_token. The environment
// tells the rest (tests/integration/test_dashboard_ui.c sets it):
//   ODSYNC_TOOLS          the directory holding node_modules/playwright-core (build/tools)
//   ODSYNC_CHROMIUM       the browser (default /usr/bin/chromium)
//   ODSYNC_UI_EXPECT      JSON: what the test driver put in the store (see below)
//   ODSYNC_UI_SCREENSHOT  where to save the screenshot (default build/test-artifacts/dashboard.png)
//
// It checks: without the token the page is refused (401, a sign-in form, no data); a wrong
// token is refused (403) and sets no cookie; ?token= sets an HttpOnly SameSite=Strict cookie
// and redirects to / without the token; the numbers rendered equal the expected ones; the
// page never shows the token or a patient's address; a POST without the CSRF header is
// refused; clicking a dead letter's Retry removes its row and moves it to pending. Prints
// "retried ID" on success; exits 1 with the reason otherwise.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [base, token] = process.argv.slice(2);
if (!base || !token) {
  console.error('usage: node tests/ui/dashboard.mjs URL TOKEN');
  process.exit(2);
}
const tools = process.env.ODSYNC_TOOLS || path.resolve('build/tools');
const exe = process.env.ODSYNC_CHROMIUM || '/usr/bin/chromium';
const shot = process.env.ODSYNC_UI_SCREENSHOT || path.resolve('build/test-artifacts/dashboard.png');
const expect = JSON.parse(process.env.ODSYNC_UI_EXPECT || '{}');

const require = createRequire(path.join(tools, 'node_modules', 'noop.js'));
const { chromium } = require('playwright-core');

function check(ok, what) {
  if (!ok) throw new Error(what);
}

// The number shown in the first element matching selector ("1,234" -> 1234).
async function shown(page, selector) {
  const loc = page.locator(selector);
  check((await loc.count()) >= 1, `nothing matches ${selector}`);
  const text = (await loc.first().textContent()).trim();
  const n = Number(text.replace(/,/g, ''));
  check(Number.isFinite(n), `${selector} shows "${text}", not a number`);
  return n;
}

async function expectShown(page, selector, want) {
  const got = await shown(page, selector);
  check(got === want, `${selector}: the page shows ${got}, the store holds ${want}`);
}

async function renders(page) {
  return Number(await page.locator('body').getAttribute('data-renders'));
}

const browser = await chromium.launch({
  executablePath: exe,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let failed = null;
try {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await ctx.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[13]/.test(m.text()))
      problems.push(`console: ${m.text()}`);
  });

  // 1. No token: refused, a sign-in form, no data.
  let resp = await page.goto(`${base}/`);
  check(resp.status() === 401, `GET / without a token answered ${resp.status()}, not 401`);
  check((await page.locator('input[name=token]').count()) === 1, 'no sign-in form without a token');
  check((await page.locator('[data-metric]').count()) === 0, 'data shown without a token');
  const api = (await ctx.request.get(`${base}/api/dashboard`)).status();
  check(api === 401, `GET /api/dashboard without a token answered ${api}`);

  // 2. A wrong token: refused, no cookie.
  resp = await page.goto(`${base}/?token=${encodeURIComponent(token + 'x')}`);
  check(resp.status() === 403, `a wrong token answered ${resp.status()}, not 403`);
  check((await ctx.cookies()).length === 0, 'a wrong token set a cookie');

  // 3. The token: a cookie, and the URL loses the token.
  resp = await page.goto(`${base}/?token=${encodeURIComponent(token)}`);
  check(resp.status() === 200, `signing in ended with ${resp.status()}`);
  check(page.url() === `${base}/`, `after signing in the URL is ${page.url()}`);
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name === 'odsync_session');
  check(session, 'no session cookie');
  check(session.httpOnly, 'the session cookie is not HttpOnly');
  check(session.sameSite === 'Strict', `the session cookie is SameSite=${session.sameSite}`);
  check(!session.value.includes(token), 'the cookie holds the token');
  await page.waitForFunction(() => Number(document.body.getAttribute('data-renders')) >= 1);
  check(!(await page.evaluate(() => document.cookie)).includes('odsync_session'),
        'the script can read the session cookie');

  // 4. The numbers equal what the driver put in the store.
  for (const [metric, want] of Object.entries(expect.tiles || {}))
    await expectShown(page, `[data-metric="${metric}"]`, want);
  for (const [sink, cols] of Object.entries(expect.sinks || {}))
    for (const [col, want] of Object.entries(cols))
      await expectShown(page, `tr[data-sink="${sink}"] [data-col="${col}"]`, want);
  for (const [office, o] of Object.entries(expect.offices || {})) {
    for (const [col, want] of Object.entries(o.messages || {}))
      await expectShown(page, `tr[data-messages="${office}"] [data-col="${col}"]`, want);
    for (const [col, want] of Object.entries(o.funnel || {}))
      await expectShown(page, `[data-funnel="${office}"] [data-col="${col}"]`, want);
    for (const [col, want] of Object.entries(o.canonical || {}))
      await expectShown(page, `tr[data-office="${office}"] [data-col="${col}"]`, want);
  }
  const deadRows = await page.locator('tr[data-dlq-id]').count();
  check(deadRows === expect.dead_letters, `${deadRows} dead-letter rows, the store holds ${expect.dead_letters}`);
  const bars = await page.locator('[data-chart="activity"] svg rect').count();
  check(bars === 28, `the activity chart has ${bars} bars, not 14 days x 2`);
  const html = await page.content();
  check(!html.includes(token), 'the page holds the admin token');
  for (const secret of expect.never_shown || [])
    check(!html.includes(secret), `the page shows patient data: ${secret}`);

  // 5. A POST with the cookie but without the CSRF header is refused.
  const firstId = await page.locator('tr[data-dlq-id]').first().getAttribute('data-dlq-id');
  const csrf = await page.evaluate(async (id) =>
    (await fetch(`/api/dlq/${id}/retry`, { method: 'POST' })).status, firstId);
  check(csrf === 403, `a POST without X-Odsync-Action answered ${csrf}, not 403`);
  check((await page.locator(`tr[data-dlq-id="${firstId}"]`).count()) === 1, 'refused POST changed the row');

  // 6. Retry a dead letter: its row goes, the sink's pending count grows by one.
  const deadBefore = await shown(page, '[data-metric="dead_letters"]');
  const sinkName = expect.retry_sink;
  const pendingBefore = await shown(page, `tr[data-sink="${sinkName}"] [data-col="pending"]`);
  const before = await renders(page);
  await page.locator(`tr[data-dlq-id="${firstId}"] button[data-action="retry"]`).click();
  await page.waitForFunction((n) => Number(document.body.getAttribute('data-renders')) > n, before);
  await page.waitForFunction((id) => !document.querySelector(`tr[data-dlq-id="${id}"]`), firstId);
  await expectShown(page, '[data-metric="dead_letters"]', deadBefore - 1);
  await expectShown(page, `tr[data-sink="${sinkName}"] [data-col="pending"]`, pendingBefore + 1);
  check(!(await page.locator('#banner').getAttribute('class') || '').includes('show'),
        `an error banner is shown: ${await page.locator('#banner').textContent()}`);

  fs.mkdirSync(path.dirname(shot), { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  check(problems.length === 0, problems.join('; '));
  console.log(`retried ${firstId}`);
  console.log(`screenshot ${shot}`);
} catch (e) {
  failed = e;
} finally {
  await browser.close();
}
if (failed) {
  console.error(`dashboard UI: ${failed.message}`);
  process.exit(1);
}
