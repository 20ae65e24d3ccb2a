// A clinician's flow in headless Chromium (Debian's /usr/bin/chromium):
// sign in, open the clinic, press "Send to modality", and see the message become confirmed.
//
//   node flow.mjs BASE_URL USERNAME PASSWORD js|js-poll|nojs [SCREENSHOT_DIR]
//
// With JavaScript the status must change on the open page (no reload), fed by the live stream;
// in js-poll the stream is blocked (as by a buffering proxy) and the page must fall back to asking
// the server every few seconds.
// Without it, every step is a plain form post and redirect, and a reload shows the new status.
// With JavaScript, every page visited is also checked with axe-core against WCAG 2.2 AA.
// Something else (the Rust test) plays the gateway and confirms the message.
// Prints "BROWSER OK <mode>" and exits 0, or prints what failed and exits 1.

import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [base, username, password, mode, shots] = process.argv.slice(2);
if (!base || !username || !password || !['js', 'js-poll', 'nojs'].includes(mode)) {
  console.error('usage: node flow.mjs BASE_URL USERNAME PASSWORD js|js-poll|nojs [SCREENSHOT_DIR]');
  process.exit(2);
}
const js = mode !== 'nojs';
const blockStream = mode === 'js-poll';
const liveState = blockStream ? 'polling' : 'on';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const step = (text) => console.log(`- ${text}`);
const fail = (text) => { throw new Error(text); };

async function checkAccessibility(page, what) {
  if (mode !== 'js') return;
  // Evaluated through the DevTools protocol, which the page's Content-Security-Policy does not
  // govern: an injected <script> would be (rightly) refused, and the policy stays on for the test.
  await page.evaluate(axeSource);
  const results = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
  }));
  if (results.violations.length > 0) {
    const details = results.violations
      .map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('\n    ')}`)
      .join('\n  ');
    fail(`${what}: WCAG 2.2 AA violations:\n  ${details}`);
  }
  step(`${what}: no WCAG 2.2 AA violations (axe-core)`);
}

try {
  const context = await browser.newContext({ javaScriptEnabled: js });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  if (blockStream) await page.route('**/events', (route) => route.abort());
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  // Anything the Content-Security-Policy blocks is a failure: the pages must work under it.
  page.on('console', (message) => {
    if (message.type() === 'error' && message.text().includes('Content Security Policy')) errors.push(message.text());
  });

  await page.goto(`${base}/clinics`);
  if (!page.url().includes('/sign-in')) fail(`expected the sign-in page, got ${page.url()}`);
  step('a protected page leads to sign-in');
  await checkAccessibility(page, 'sign-in page');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(/\/clinics$/), page.click('button:has-text("Sign in")')]);
  step('signed in, back on the clinics page');
  await checkAccessibility(page, 'clinics page');

  await Promise.all([page.waitForURL(/\/clinics\/[0-9a-f-]+$/), page.click('table a[href^="/clinics/"]')]);
  const row = page.locator('tr:has(button[value="send_to_modality"])').first();
  const rowId = await row.getAttribute('id');
  if (!rowId) fail('no appointment can be sent to the modality');
  const name = (await row.locator('td').nth(1).innerText()).replace(/^Participant\s*/, '').trim();
  step(`clinic open; sending ${rowId}`);
  if (js) {
    await page.waitForSelector(`[data-live="${liveState}"]`);
    step(blockStream ? 'stream blocked: the page polls instead' : 'live status stream connected');
    await checkAccessibility(page, 'clinic page');
  } else {
    const hint = await page.locator('[data-live]').innerText();
    if (!hint.includes('reload')) fail(`without JavaScript the page should say to reload, got ${hint}`);
  }

  await Promise.all([
    page.waitForURL(new RegExp(`#${rowId}$`)),
    page.locator(`#${rowId} button[value="send_to_modality"]`).click(),
  ]);
  const banner = await page.locator('.nhsuk-notification-banner--success').innerText();
  if (!banner.includes(name)) fail(`the success banner should name ${name}: ${banner}`);
  const sent = page.locator(`#${rowId}`);
  await sent.locator('[data-state="sent_to_modality"]').waitFor();
  step('sent: the appointment shows "Sent to modality" and the banner confirms');

  if (js) {
    // A marker on the window survives only if the page is never reloaded.
    await page.evaluate(() => { window.__samePage = 'yes'; });
    await page.waitForSelector(`[data-live="${liveState}"]`);
    await sent.locator('[data-status="confirmed"]').waitFor({ timeout: 30000 });
    if ((await page.evaluate(() => window.__samePage)) !== 'yes') fail('the page reloaded');
    step('the status became "Confirmed" live, without a reload');
    // Each row with a message was updated more than once (each status change on the stream, or
    // every row at each poll): views must be mounted once per row, never once per update.
    const rows = await page.locator('[id^="status-"] [data-status]:not([data-status="none"])').count();
    const mounted = Number(await page.locator('[data-live]').getAttribute('data-live-cells'));
    if (!(mounted >= 1 && mounted <= rows)) fail(`${mounted} live views mounted for ${rows} rows with a message`);
    step(`${mounted} live views for ${rows} rows with a message: one per row, not one per update`);
  } else {
    let confirmed = false;
    for (let i = 0; i < 60 && !confirmed; i += 1) {
      await page.reload();
      confirmed = (await sent.locator('[data-status="confirmed"]').count()) > 0;
      if (!confirmed) await new Promise((r) => setTimeout(r, 500));
    }
    if (!confirmed) fail('the status never became "Confirmed" on reload');
    step('after a reload the status is "Confirmed"');
  }
  const statusText = await sent.locator('[data-status]').innerText();
  if (!/Confirmed/.test(statusText) || !/delivered \d\d:\d\d:\d\d/.test(statusText)) {
    fail(`the status should show the times: ${statusText}`);
  }
  if (shots) await page.screenshot({ path: `${shots}/clinic-${mode}.png`, fullPage: true });

  // The message in the admin.
  await page.goto(`${base}/admin/messages`);
  await page.locator('table tbody tr').first().waitFor();
  await checkAccessibility(page, 'admin messages page');
  await Promise.all([page.waitForURL(/\/admin\/messages\/[0-9a-f-]+$/), page.locator('table tbody tr a').first().click()]);
  if (await page.locator('pre code').count() !== 0) fail('the message detail should not show the payload until asked');
  await page.getByRole('button', { name: 'Show payload' }).click();
  const payload = await page.locator('pre code').innerText();
  if (!payload.includes('"resourceType": "ServiceRequest"')) fail('Show payload should show the FHIR payload pretty-printed');
  step('the message is in the admin; Show payload shows its FHIR payload');
  await checkAccessibility(page, 'message detail page');
  if (shots) await page.screenshot({ path: `${shots}/message-${mode}.png`, fullPage: true });
  await page.goto(`${base}/admin/gateways`);
  await checkAccessibility(page, 'admin gateways page');
  await page.locator('table tbody tr a').first().click();
  await page.waitForSelector('h1:has-text("Edit gateway")');
  await checkAccessibility(page, 'gateway edit page');
  if (shots) await page.screenshot({ path: `${shots}/gateway-${mode}.png`, fullPage: true });
  await page.goto(`${base}/admin/alerts`);
  await page.waitForSelector('h1:has-text("Alerts")');
  await checkAccessibility(page, 'admin alerts page');
  await page.goto(`${base}/admin/staff`);
  await page.waitForSelector('h1:has-text("Staff accounts")');
  await checkAccessibility(page, 'admin staff page');
  if (shots) await page.screenshot({ path: `${shots}/staff-${mode}.png`, fullPage: true });

  if (errors.length > 0) fail(`JavaScript errors on the pages: ${errors.join('; ')}`);
  console.log(`BROWSER OK ${mode}`);
  await browser.close();
} catch (error) {
  console.error(`BROWSER FAILED ${mode}: ${error.message}`);
  await browser.close();
  process.exit(1);
}
