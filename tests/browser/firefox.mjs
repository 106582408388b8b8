// The web console in Debian's Firefox ESR, driven over WebDriver BiDi by
// puppeteer-core: the main path of console.mjs (which runs in Chromium with
// playwright-core, whose Firefox support needs its own patched build), to
// show the page works in both engines. Started by
// tests/integration/test_console.py with the real agent and servers.
//
//   node firefox.mjs PARAMS.json
//
// PARAMS: { url, token, deps (node_modules parent), out (screenshots), firefox,
//   s3: { src_remote, dst_remote, good_bucket, dst_bucket, objects }, task }
// Every check prints PASS/FAIL; exit 0 when all passed, 1 when one failed,
// 2 when the browser could not run.
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const P = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const require = createRequire(path.join(path.resolve(P.deps), 'noop.js'));
const puppeteer = require('puppeteer-core');
mkdirSync(P.out, { recursive: true });

const origin = new URL(P.url).origin;
const S = P.s3;
let failed = 0;
const errors = [];
const foreign = [];
const T = 15_000;

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const r = await fn();
    console.log(`PASS ${name}${r ? ` ${r}` : ''} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name} - ${String(e.message || e).split('\n').slice(0, 3).join(' | ')}`);
  }
}

// Waits until fn (run in the page) returns something truthy. Polled from
// here: waitForFunction's poller builds the function in the page with
// new Function, which the console's CSP (no 'unsafe-eval') forbids in
// Firefox 140; page.evaluate goes through BiDi's script.callFunction.
async function until(page, fn, arg, timeout = T) {
  const t0 = Date.now();
  for (;;) {
    try {
      if (await page.evaluate(fn, arg)) return;
    } catch (e) {
      if (!/context|navigat|destroyed/i.test(String(e.message))) throw e;
    }
    if (Date.now() - t0 > timeout) throw new Error(`waited ${timeout / 1000} s for ${String(fn).slice(0, 120)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const textOf = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());
const stepIs = (page, title) => until(page, (t) => (document.querySelector('#step-title') || {}).textContent?.includes(t), title);

async function next(page, title) {
  await page.click('#wiz-next');
  await stepIs(page, title);
}

// The window's size comes from Firefox's own --width/--height, not from
// puppeteer's viewport emulation: that sends a BiDi command
// (emulation.setScreenOrientationOverride) Firefox 140 ESR, Debian 12's,
// does not have. Phone width is a second browser with a narrow window
// (headless Firefox makes it no narrower than 450 to 500 px, by version;
// the Chromium test checks 390 px).
const launch = (width, height) => puppeteer.launch({ browser: 'firefox',
  executablePath: P.firefox || '/usr/bin/firefox-esr', headless: true, timeout: 60_000,
  defaultViewport: null, args: [`--width=${width}`, `--height=${height}`] });
let browser;
try {
  browser = await launch(1280, 800);
} catch (e) {
  console.error(`could not launch firefox: ${e.message}`);
  process.exit(2);
}
console.log(`browser: ${await browser.version()}, puppeteer-core ${require('puppeteer-core/package.json').version}`);

try {
  const watch = (page) => {
    page.setDefaultTimeout(T);
    page.on('console', (m) => {
    // A refused token and the wizard's dry runs of unfinished definitions answer 4xx on purpose.
      if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
    page.on('request', (r) => { if (!r.url().startsWith(origin) && /^https?:/.test(r.url())) foreign.push(r.url()); });
    return page;
  };
  const page = watch((await browser.pages())[0] || await browser.newPage());

  await step('a wrong token is refused', async () => {
    await page.goto(P.url);
    await page.waitForSelector('#token');
    await page.type('#token', 'not-the-token-0123456789abcdef');
    await page.click('#signin');
    await until(page, () => /refused/.test((document.querySelector('#token-error') || {}).textContent || ''));
    if (await page.evaluate(() => sessionStorage.getItem('dth.token'))) throw new Error('a refused token was kept');
  });

  await step('sign in', async () => {
    await page.$eval('#token', (e) => { e.value = ''; });
    await page.type('#token', P.token);
    await page.click('#signin');
    await until(page, () => document.querySelector('h1')?.textContent === 'Tasks');
  });

  await step('create an S3 task through the wizard', async () => {
    await page.goto(`${P.url}#/new`);
    await stepIs(page, 'Task');
    await page.type('#f-name', P.task);
    await next(page, 'Source');
    await page.select('#f-provider', 'compat');
    await page.select('#f-src-remote', S.src_remote);
    await page.type('#f-src-bucket', S.good_bucket);
    await next(page, 'Destination');
    await page.select('#f-dst-remote', S.dst_remote);
    await page.type('#f-dst-bucket', S.dst_bucket);
    for (const s of ['Copy options', 'Schedule', 'Advanced', 'Review']) await next(page, s);
    const review = await textOf(page, '#review-table');
    if (!review.includes(`${S.src_remote}:${S.good_bucket}`)) throw new Error(`review: ${review}`);
    await page.click('#wiz-next');
    await until(page, (n) => document.querySelector('#task-title')?.textContent === n, P.task);
  });

  await step('the task reaches idle with its objects, charts drawn', async () => {
    await until(page, () => document.querySelector('.title-row .badge')?.textContent.trim() === 'idle', null, 90_000);
    await until(page, (n) => [...document.querySelectorAll('.pairs dd')].some((d) => d.textContent.startsWith(`${n} (`)), S.objects, 20_000);
    await until(page, (n) => [...document.querySelectorAll('.chart-summary')].some((p) => p.textContent.includes(`: ${n} copied`)), S.objects, 30_000);
    const drawn = await page.evaluate(() => [...document.querySelectorAll('.chart canvas')].every((c) => c.width > 0));
    if (!drawn) throw new Error('a chart canvas is empty');
    await page.screenshot({ path: path.join(P.out, 'firefox-task-detail.png') });
  });

  await step('the task list shows it, filters work', async () => {
    await page.goto(`${P.url}#/tasks`);
    await page.waitForSelector(`tr[data-task="${P.task}"]`);
    const row = await textOf(page, `tr[data-task="${P.task}"]`);
    if (!row.includes('idle')) throw new Error(row);
    await page.type('#task-search', 'no-such-name');
    await until(page, () => /No task matches/.test(document.querySelector('td.empty')?.textContent || ''));
    await page.screenshot({ path: path.join(P.out, 'firefox-tasks.png') });
  });

  await step('agent view: the remotes answer', async () => {
    await page.goto(`${P.url}#/agent`);
    await page.waitForSelector('#check-remotes');
    await page.click('#check-remotes');
    await until(page, (n) => document.querySelector(`tr[data-remote="${n}"] .badge`)?.textContent.trim() === 'ok', S.src_remote, 30_000);
  });

  await step('delete, confirmed in the dialog', async () => {
    await page.goto(`${P.url}#/tasks/${encodeURIComponent(P.task)}`);
    await page.waitForSelector('#act-delete');
    await page.click('#act-delete');
    await page.waitForSelector('dialog.confirm');
    const ok = await page.waitForSelector('::-p-xpath(//dialog//button[normalize-space(.)="Delete task"])');
    await ok.click();
    await until(page, () => document.querySelector('h1')?.textContent === 'Tasks');
    await until(page, (n) => !document.querySelector(`tr[data-task="${n}"]`), P.task);
  });

  await step('phone width: no sideways scrolling', async () => {
    const phone = await launch(390, 844);
    try {
      const pp = watch((await phone.pages())[0] || await phone.newPage());
      await pp.goto(P.url);
      await pp.waitForSelector('#token');
      const w = await pp.evaluate(() => window.innerWidth);
      if (w > 520) throw new Error(`the window is ${w} px wide, not a phone's`);
      await pp.type('#token', P.token);
      await pp.click('#signin');
      await until(pp, () => document.querySelector('h1')?.textContent === 'Tasks');
      for (const route of ['#/tasks', '#/new', '#/agent']) {
        await pp.goto(`${P.url}${route}`);
        await pp.waitForSelector('main h1');
        const [sw, cw] = await pp.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
        if (sw > cw) throw new Error(`${route}: scrollWidth ${sw} > clientWidth ${cw}`);
      }
      await pp.screenshot({ path: path.join(P.out, 'firefox-phone-agent.png') });
      return `${w} px`;
    } finally {
      await phone.close();
    }
  });

  await step('sign out forgets the token', async () => {
    await page.click('#signout');
    await until(page, () => location.hash === '#/signin');
    if (await page.evaluate(() => sessionStorage.getItem('dth.token'))) throw new Error('token kept');
  });
} catch (e) {
  failed++;
  console.log(`FAIL unexpected ${e.stack}`);
}
await browser.close();
if (errors.length) { failed++; console.log(`FAIL no console errors\n  ${[...new Set(errors)].join('\n  ')}`); } else console.log('PASS no console errors');
if (foreign.length) { failed++; console.log(`FAIL no requests off the agent\n  ${foreign.join('\n  ')}`); } else console.log('PASS no requests off the agent');
console.log(`${failed ? 'FAILED' : 'ALL PASSED'}: ${failed} failure(s)`);
process.exit(failed ? 1 : 0);
