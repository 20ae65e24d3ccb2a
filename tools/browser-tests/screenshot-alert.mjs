// The operator's view when a gateway stops taking orders mid-clinic, as in docs/: against an app
// started as README.md's Alerts section shows, sends an order, lets it wait and screenshots the
// clinic page's banner. Usage: node screenshot-alert.mjs OUT.png (from tools/browser-tests).
import { chromium } from 'playwright-core';
const base = process.env.BASE || 'http://127.0.0.1:3999';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'] });
const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
await page.goto(`${base}/clinics`);
await page.fill('#username', 'admin');
await page.fill('#password', process.env.SCREENING_ADMIN_PASSWORD);
await Promise.all([page.waitForURL(/\/clinics$/), page.click('button:has-text("Sign in")')]);
await Promise.all([page.waitForURL(/\/clinics\/[0-9a-f-]+$/), page.click('table a[href^="/clinics/"]')]);
const clinic = page.url();
await page.locator('button[value="send_to_modality"]').first().click();
await page.waitForTimeout(9000);
await page.goto(clinic);
await page.screenshot({ path: 'process.argv[2] || "operator-alert-banner.png"', fullPage: false });
await page.goto(`${base}/admin/alerts`);

console.log(await page.locator('main').innerText());
await browser.close();
