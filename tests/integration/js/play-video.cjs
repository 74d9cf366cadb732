// Plays a video file in headless Chromium and reports what the browser saw.
//   node play-video.cjs FILE        -> prints JSON {"played": true, "width", "height", "duration", "currentTime"}
// Exit 0 when the browser played at least half a second of it, 1 otherwise.
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

(async () => {
  const file = path.resolve(process.argv[2]);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--allow-file-access-from-files'],
  });
  let result = { played: false };
  try {
    const page = await browser.newPage();
    // A page of its own next to the file: file:// media loads from a file:// page.
    const html = path.join(path.dirname(file), '.play-video.html');
    require('fs').writeFileSync(html, '<!doctype html><video id="v" muted playsinline></video>');
    await page.goto('file://' + html);
    result = await page.evaluate(async (src) => {
      const v = document.getElementById('v');
      v.src = src;
      return await new Promise((resolve) => {
        const done = (extra) => resolve(Object.assign({ width: v.videoWidth, height: v.videoHeight,
          duration: v.duration, currentTime: v.currentTime }, extra));
        v.addEventListener('error', () => done({ played: false, error: v.error && v.error.code }));
        v.addEventListener('timeupdate', () => { if (v.currentTime >= 0.5) done({ played: true }); });
        setTimeout(() => done({ played: false, error: 'timeout' }), 20000);
        v.play().catch((e) => done({ played: false, error: String(e) }));
      });
    }, 'file://' + file);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
  process.exit(result.played ? 0 : 1);
})().catch((e) => { console.error(e); process.exit(1); });
