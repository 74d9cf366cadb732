// Drives the reviewer page in headless Chromium as a person would:
//   node review-page.cjs URL TOKEN
// signs in with TOKEN, lists the cases, opens the first case and its first
// recording, plays it, cuts a clip from 1 s to 2 s and plays that, and
// prints what it saw as JSON.
'use strict';
const { chromium } = require('playwright-core');

(async () => {
  const [url, token] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'],
  });
  const out = { errors: [] };
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => out.errors.push(String(e)));
    page.on('dialog', async (d) => { out.errors.push('dialog: ' + d.message()); await d.dismiss(); });
    await page.goto(url + '/');
    await page.waitForSelector('#signin:not([hidden])');
    await page.fill('#token', token);
    await page.click('#signin-form button');
    await page.waitForSelector('#cases:not([hidden])');
    out.who = await page.textContent('#who');
    out.cases = await page.$$eval('#case-rows tr', (rows) => rows.map((r) => r.children[1].textContent));
    await page.click('#case-rows tr');
    await page.waitForSelector('#case:not([hidden]) #item-rows tr');
    out.items = await page.$$eval('#item-rows tr', (rows) => rows.map((r) => r.dataset.item));
    out.posters = await page.$$eval('#item-rows img.poster', (imgs) =>
      Promise.all(imgs.map((i) => (i.complete ? Promise.resolve() : new Promise((r) => { i.onload = i.onerror = r; })).then(() => i.naturalWidth))));
    await page.click('#item-rows tr');
    await page.waitForSelector('#item:not([hidden])');
    const play = () => page.evaluate(() => new Promise((resolve) => {
      const v = document.getElementById('player');
      v.muted = true;
      const done = (ok, why) => resolve({ played: ok, why, rendition: v.dataset.rendition, currentTime: v.currentTime });
      v.addEventListener('timeupdate', () => { if (v.currentTime >= 0.5) done(true); });
      v.addEventListener('error', () => done(false, v.error && v.error.code));
      setTimeout(() => done(false, 'timeout'), 20000);
      v.play().catch((e) => done(false, String(e)));
    }));
    out.video = await play();
    out.custody = await page.$$eval('#event-rows tr', (rows) => rows.map((r) => r.children[2].textContent));
    await page.fill('#clip-start', '1');
    await page.fill('#clip-end', '2');
    await page.click('#clip-form button');
    await page.waitForSelector('#clip-link:not([hidden])', { timeout: 30000 });
    out.clipHref = await page.getAttribute('#clip-link', 'href');
    out.clip = await play();
  } catch (e) {
    out.errors.push(String(e));
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})();
