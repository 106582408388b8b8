// End-to-end test of dth's web console in Debian's chromium, driven by
// playwright-core, with an axe-core scan of every page. Started by
// tests/integration/test_console.py, which runs the real agent and servers,
// seeds the buckets and registries, and checks the destinations itself with
// boto3 and skopeo afterwards.
//
//   node console.mjs PARAMS.json
//
// PARAMS: { url, token, deps (node_modules parent), out (screenshots), chromium,
//   s3: { src_remote, dst_remote, good_bucket, bad_bucket, dst_bucket, bad_dst_bucket, objects },
//   image: { src_remote, dst_remote, image, dst_prefix } }
// Coordination with the wrapper: a line "NEED <what>" on stdout, then the
// script waits for the file OUT/<what>.done.
//
// Every check prints PASS/FAIL; exit 0 when all passed, 1 when one failed,
// 2 when the browser could not run.
import { createRequire } from 'node:module';
import { mkdirSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const P = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const require = createRequire(path.join(path.resolve(P.deps), 'noop.js'));
const { chromium } = require('playwright-core');
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
mkdirSync(P.out, { recursive: true });

const origin = new URL(P.url).origin;
let failed = 0;
const pass = (n, x = '') => console.log(`PASS ${n}${x ? ` ${x}` : ''}`);
const fail = (n, x = '') => { failed++; console.log(`FAIL ${n}${x ? ` ${x}` : ''}`); };
const consoleErrors = [];
const httpErrors = [];
const foreign = [];
// 4xx answers the test provokes on purpose (a wrong token, a refused dry run).
let expect4xx = 0;
const seen4xx = [];

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const r = await fn();
    pass(name, `${r ? `${r} ` : ''}(${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    return true;
  } catch (e) {
    fail(name, `- ${String(e.message || e).split('\n').slice(0, 3).join(' | ')}`);
    return false;
  }
}

function need(what) {
  console.log(`NEED ${what}`);
  const f = path.join(P.out, `${what}.done`);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (existsSync(f)) resolve();
      else if (Date.now() - t0 > 60_000) reject(new Error(`the wrapper did not do ${what}`));
      else setTimeout(tick, 100);
    };
    tick();
  });
}

async function newContext(browser, opts) {
  const ctx = await browser.newContext(opts);
  ctx.setDefaultTimeout(15_000);
  await ctx.route((u) => u.origin !== origin && /^(https?|wss?):$/.test(u.protocol), (r) => {
    foreign.push(r.request().url());
    return r.abort('blockedbyclient');
  });
  ctx.on('response', (r) => {
    const s = r.status();
    // A dry run's 4xx is its answer: the wizard checks unfinished definitions as the user types.
    const dry = /[?&]dry_run=true/.test(r.url());
    if (s >= 400 && s < 500 && r.url().includes('/api/v1/') && (expect4xx > 0 || dry)) seen4xx.push(`${s} ${r.url()}`);
    else if (s >= 400) httpErrors.push(`${s} ${r.request().method()} ${r.url()}`);
  });
  ctx.on('page', (page) => {
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      // Chromium reports each 4xx as a console error; those the test asked for are expected.
      if (/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())
        && (expect4xx > 0 || /[?&]dry_run=true/.test(m.location().url))) return;
      consoleErrors.push(`${m.text()} @ ${m.location().url}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));
  });
  return ctx;
}

async function expecting4xx(fn) {
  expect4xx++;
  try { return await fn(); } finally { expect4xx--; }
}

const axeResults = [];
async function axe(page, label) {
  // Through the debugger, not a <script>: the console's CSP forbids inline scripts.
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(axeSource);
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  axeResults.push({ label, violations: res.violations.length, bad: bad.length });
  if (bad.length) {
    throw new Error(bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`).join('; '));
  }
  return `${res.violations.length} minor/moderate${res.violations.length ? `: ${res.violations.map((v) => `${v.id} at ${v.nodes[0].target.join(' ')}`).join(', ')}` : ''}`;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(P.out, `${name}.png`), fullPage: true });
}

async function noOverflow(page) {
  const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  if (sw > cw) throw new Error(`horizontal overflow at phone width: scrollWidth ${sw} > clientWidth ${cw}`);
}

async function signIn(page) {
  await page.goto(P.url);
  await page.waitForURL(/#\/signin$/);
  await page.fill('#token', P.token);
  await page.click('#signin');
  await page.locator('h1', { hasText: 'Tasks' }).waitFor();
}

async function stateOf(page) {
  return (await page.locator('.title-row .badge').first().textContent()).trim();
}

async function waitState(page, want, timeout = 90_000) {
  await page.locator('.title-row .badge', { hasText: new RegExp(`^${want}$`) }).waitFor({ timeout });
}

async function openTask(page, name) {
  await page.goto(`${P.url}#/tasks/${encodeURIComponent(name)}`);
  await page.locator('#task-title', { hasText: name }).waitFor();
}

// The wizard, with the mouse: fill the fields of each step and press Next.
async function wizardS3(page, { name, src, bucket, prefix, dst, dstBucket, schedule }) {
  await page.goto(`${P.url}#/new`);
  await page.locator('#step-title', { hasText: 'Task' }).waitFor();
  await page.check('#kind-s3');
  await page.fill('#f-name', name);
  await page.click('#wiz-next');
  await page.locator('#step-title', { hasText: 'Source' }).waitFor();
  await page.selectOption('#f-provider', 'compat');
  await page.selectOption('#f-src-remote', src);
  await page.fill('#f-src-bucket', bucket);
  if (prefix) await page.fill('#f-src-prefix', prefix);
  await page.click('#wiz-next');
  await page.locator('#step-title', { hasText: 'Destination' }).waitFor();
  await page.selectOption('#f-dst-remote', dst);
  await page.fill('#f-dst-bucket', dstBucket);
  await page.click('#wiz-next');
  await page.locator('#step-title', { hasText: 'Copy options' }).waitFor();
  await page.click('#wiz-next');
  await page.locator('#step-title', { hasText: 'Schedule' }).waitFor();
  if (schedule) await page.fill('#f-every', schedule);
  await page.click('#wiz-next');
  await page.locator('#step-title', { hasText: 'Advanced' }).waitFor();
  await page.click('#wiz-next');
  await page.locator('#step-title', { hasText: 'Review' }).waitFor();
}

let browser;
try {
  browser = await chromium.launch({ executablePath: P.chromium || '/usr/bin/chromium', args: ['--no-sandbox'], timeout: 60_000 });
} catch (e) {
  console.error(`could not launch chromium: ${e.message}`);
  process.exit(2);
}
console.log(`browser: chromium ${browser.version()}, playwright-core ${require('playwright-core/package.json').version}, axe-core ${require('axe-core/package.json').version}`);

const S = P.s3;
const I = P.image;
try {
  const desk = await newContext(browser, { viewport: { width: 1280, height: 800 } });
  const page = await desk.newPage();

  await step('security headers on the console', async () => {
    const r = await page.goto(P.url);
    const hd = r.headers();
    const csp = hd['content-security-policy'] || '';
    if (!/script-src 'self'/.test(csp) || /unsafe-inline|unsafe-eval/.test(csp) || !/frame-ancestors 'none'/.test(csp)) throw new Error(`CSP: ${csp}`);
    if ((hd['x-frame-options'] || '').toUpperCase() !== 'DENY') throw new Error(`X-Frame-Options: ${hd['x-frame-options']}`);
    return csp;
  });

  await step('a wrong token is refused', async () => {
    await page.waitForURL(/#\/signin$/);
    await page.fill('#token', 'not-the-token-0123456789abcdef');
    await expecting4xx(async () => {
      await page.click('#signin');
      await page.locator('#token-error', { hasText: 'refused' }).waitFor();
    });
    if (await page.evaluate(() => sessionStorage.getItem('dth.token'))) throw new Error('a refused token was kept');
    if (!page.url().endsWith('#/signin')) throw new Error(`left the sign-in page: ${page.url()}`);
  });
  await step('axe: sign-in page', () => axe(page, 'signin'));
  await shot(page, 'desktop-signin');

  await step('sign in', async () => {
    await page.fill('#token', P.token);
    await page.click('#signin');
    await page.locator('h1', { hasText: 'Tasks' }).waitFor();
    const kept = await page.evaluate(() => [sessionStorage.getItem('dth.token'), document.cookie, localStorage.length]);
    if (kept[0] !== P.token || kept[1] || kept[2]) throw new Error(`token storage: session ${!!kept[0]}, cookie "${kept[1]}", localStorage ${kept[2]}`);
  });

  const taskA = 'console-s3';
  await step('create an S3 task through the wizard (mouse)', async () => {
    await wizardS3(page, { name: taskA, src: S.src_remote, bucket: S.good_bucket, dst: S.dst_remote, dstBucket: S.dst_bucket, schedule: '1h' });
    const review = await page.locator('#review-table').textContent();
    for (const want of [`${S.src_remote}:${S.good_bucket}`, `${S.dst_remote}:${S.dst_bucket}`, 'every 1h']) {
      if (!review.includes(want)) throw new Error(`review lacks ${want}: ${review}`);
    }
    await page.click('#wiz-next');
    await page.locator('#task-title', { hasText: taskA }).waitFor();
  });
  await step('the S3 task reaches idle with the right counts', async () => {
    await waitState(page, 'idle');
    await page.locator('.pairs dd', { hasText: new RegExp(`^${S.objects} \\(`) }).waitFor({ timeout: 20_000 });
    const runs = await page.locator('section', { hasText: 'Run history' }).locator('tbody tr').count();
    if (runs < 1) throw new Error('no run in the history');
    return `${S.objects} objects`;
  });
  await step('charts drawn from the agent\'s series', async () => {
    // The agent samples every 5 s; the detail page polls: wait for the sample
    // that holds the first run's copies.
    await page.locator('.chart-summary', { hasText: new RegExp(`: ${S.objects} copied`) }).waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => [...document.querySelectorAll('.chart canvas')].every((c) => c.width > 0));
    const txt = await page.locator('.chart-summary').allTextContents();
    return txt.join(' / ');
  });
  await step('axe: task detail', () => axe(page, 'detail'));
  await shot(page, 'desktop-task-detail');

  await step('the task list shows it live', async () => {
    await page.click('nav a[href="#/tasks"]');
    const row = page.locator(`tr[data-task="${taskA}"]`);
    await row.waitFor();
    const text = await row.textContent();
    if (!text.includes('idle') || !text.includes(`${S.src_remote}:${S.good_bucket}`)) throw new Error(text);
    await page.fill('#task-search', 'no-such-name');
    await page.locator('td.empty', { hasText: 'No task matches' }).waitFor();
    await page.fill('#task-search', '');
    await page.selectOption('#task-state', 'idle');
    await row.waitFor();
    await page.selectOption('#task-type', 'image');
    await row.waitFor({ state: 'detached' });
    await page.selectOption('#task-type', '');
    await page.selectOption('#task-state', '');
  });
  await step('axe: task list', () => axe(page, 'tasks'));
  await shot(page, 'desktop-tasks');

  // Keyboard only: from the task list to a created task, no mouse.
  const taskB = 'console-kbd';
  await step('keyboard-only creation of a task', async () => {
    await page.goto(`${P.url}#/tasks`);
    await page.locator('h1', { hasText: 'Tasks' }).waitFor();
    const focusedId = () => page.evaluate(() => document.activeElement && (document.activeElement.id || document.activeElement.getAttribute('href')));
    const tabTo = async (want, max = 30) => {
      for (let i = 0; i < max; i++) {
        if ((await focusedId()) === want) return;
        await page.keyboard.press('Tab');
      }
      throw new Error(`Tab never reached ${want} (at ${await focusedId()})`);
    };
    await tabTo('new-task');
    const ring = await page.evaluate(() => {
      const cs = getComputedStyle(document.activeElement);
      return document.activeElement.matches(':focus-visible') && cs.outlineStyle !== 'none' && cs.outlineWidth !== '0px';
    });
    if (!ring) throw new Error('no visible focus ring on "New task"');
    await page.keyboard.press('Enter');
    await page.locator('#step-title', { hasText: 'Task' }).waitFor();
    await tabTo('f-name');
    await page.keyboard.type(taskB);
    await page.keyboard.press('Enter');
    await page.locator('#step-title', { hasText: 'Source' }).waitFor();
    await tabTo('f-src-bucket');
    await page.keyboard.type(S.bad_bucket);
    await page.keyboard.press('Enter');
    await page.locator('#step-title', { hasText: 'Destination' }).waitFor();
    await tabTo('f-dst-remote');
    // Options are picked by typing their first letters, as a keyboard user does.
    await page.keyboard.type(S.dst_remote);
    if ((await page.inputValue('#f-dst-remote')) !== S.dst_remote) throw new Error(`typing chose ${await page.inputValue('#f-dst-remote')}`);
    await tabTo('f-dst-bucket');
    await page.keyboard.type(S.bad_dst_bucket);
    await page.keyboard.press('Enter');
    for (const s of ['Copy options', 'Schedule', 'Advanced']) {
      await page.locator('#step-title', { hasText: s }).waitFor();
      await tabTo('wiz-next');
      await page.keyboard.press('Enter');
    }
    await page.locator('#step-title', { hasText: 'Review' }).waitFor();
    await tabTo('wiz-next');
    await page.keyboard.press('Enter');
    await page.locator('#task-title', { hasText: taskB }).waitFor();
  });

  await step('a refused object is listed with its reason, and "retry failed" copies it', async () => {
    await waitState(page, 'error');
    const fails = page.locator('section', { hasText: 'Failed objects' }).locator('tbody tr');
    await fails.first().waitFor({ timeout: 20_000 });
    const txt = await fails.first().textContent();
    if (!/bad\//.test(txt) || !/403|AccessDenied|denied/i.test(txt)) throw new Error(`failure row: ${txt}`);
    await need('remove-policy');
    await page.locator('#act-retry:not([disabled])').waitFor();
    await page.click('#act-retry');
    await waitState(page, 'idle');
    await page.locator('section', { hasText: 'Failed objects' }).locator('p', { hasText: 'No failed objects' }).waitFor({ timeout: 20_000 });
    const last = await page.locator('section', { hasText: 'Run history' }).locator('tbody tr').first().textContent();
    if (!/retry/.test(last)) throw new Error(`last run: ${last}`);
  });

  await step('create an image task through the wizard', async () => {
    await page.goto(`${P.url}#/new`);
    await page.locator('#step-title', { hasText: 'Task' }).waitFor();
    await page.check('#kind-image');
    await page.fill('#f-name', 'console-img');
    await page.click('#wiz-next');
    await page.selectOption('#f-registry', 'any');
    await page.selectOption('#f-img-remote', I.src_remote);
    await expecting4xx(async () => {
      // An empty image list is refused by the page before the agent sees it.
      await page.click('#wiz-next');
      await page.locator('#f-images[aria-invalid="true"]').waitFor();
      // A bad tag regex: the agent's own refusal, shown next to the field.
      await page.fill('#f-images', I.image);
      await page.fill('#f-tags', 'v+++');
      await page.locator('[data-field="tags"] .field-error', { hasText: /tags/ }).waitFor();
    });
    await page.fill('#f-tags', '');
    await page.fill('#f-platform', 'linux/amd64');
    await page.click('#wiz-next');
    await page.locator('#step-title', { hasText: 'Destination' }).waitFor();
    await page.selectOption('#f-dst-remote', I.dst_remote);
    await page.fill('#f-dst-prefix', I.dst_prefix);
    for (const s of ['Schedule', 'Advanced', 'Review']) {
      await page.click('#wiz-next');
      await page.locator('#step-title', { hasText: s }).waitFor();
    }
    await axe(page, 'wizard-review');
    await shot(page, 'desktop-wizard-review');
    await page.click('#wiz-next');
    await page.locator('#task-title', { hasText: 'console-img' }).waitFor();
    await waitState(page, 'idle');
    await page.locator('section', { hasText: 'Images' }).locator('tbody tr', { hasText: 'done' }).first().waitFor({ timeout: 20_000 });
  });
  await step('axe: image task detail', () => axe(page, 'image-detail'));
  await shot(page, 'desktop-image-task');

  await step('stop and start', async () => {
    await openTask(page, taskA);
    await page.click('#act-stop');
    await waitState(page, 'stopped', 30_000);
    await page.click('#act-start');
    await page.locator('.title-row .badge', { hasText: /^(idle|running)$/ }).waitFor({ timeout: 30_000 });
  });

  await step('clone', async () => {
    await page.click('#act-clone');
    await page.locator('h1', { hasText: `Clone task ${taskA}` }).waitFor();
    if ((await page.inputValue('#f-name')) !== `${taskA}-copy`) throw new Error('the clone is not named NAME-copy');
    await page.click('#wiz-next');
    if ((await page.inputValue('#f-src-bucket')) !== S.good_bucket) throw new Error('the clone lost the source bucket');
    await page.check('#f-requester-pays');
    for (const s of ['Destination', 'Copy options', 'Schedule', 'Advanced', 'Review']) {
      await page.click('#wiz-next');
      await page.locator('#step-title', { hasText: s }).waitFor();
    }
    await page.click('#wiz-next');
    await page.locator('#task-title', { hasText: `${taskA}-copy` }).waitFor();
    const def = await page.locator('section', { hasText: 'Definition' }).locator('tr', { hasText: 'requester_pays' }).textContent();
    if (!/true/.test(def)) throw new Error(`the clone's requester_pays: ${def}`);
  });

  await step('delete (confirmed)', async () => {
    await page.click('#act-delete');
    const dlg = page.locator('dialog.confirm');
    await dlg.waitFor();
    await dlg.locator('button', { hasText: 'Cancel' }).click();
    await dlg.waitFor({ state: 'detached' });
    await page.locator('#task-title', { hasText: `${taskA}-copy` }).waitFor();
    await page.click('#act-delete');
    await axe(page, 'delete-dialog');
    await page.locator('dialog.confirm button', { hasText: 'Delete task' }).click();
    await page.locator('h1', { hasText: 'Tasks' }).waitFor();
    await page.locator(`tr[data-task="${taskA}-copy"]`).waitFor({ state: 'detached' });
  });

  await step('agent view: remotes answer, mounts listed', async () => {
    await page.click('nav a[href="#/agent"]');
    await page.locator('h1', { hasText: 'Agent' }).waitFor();
    await page.click('#check-remotes');
    await page.locator(`tr[data-remote="${S.src_remote}"] .badge`, { hasText: /^ok$/ }).waitFor({ timeout: 30_000 });
    await page.locator(`tr[data-remote="${S.dst_remote}"] .badge`, { hasText: /^ok$/ }).waitFor({ timeout: 30_000 });
    const version = await page.locator('dl.pairs dd').first().textContent();
    return `version ${version}`;
  });
  await step('axe: agent view', () => axe(page, 'agent'));
  await shot(page, 'desktop-agent');

  await step('the task list with every task', async () => {
    await page.goto(`${P.url}#/tasks`);
    for (const t of [taskA, taskB, 'console-img']) await page.locator(`tr[data-task="${t}"]`).waitFor();
    const img = await page.locator('tr[data-task="console-img"]').textContent();
    if (!/1 of 1 images/.test(img)) throw new Error(`image task row: ${img}`);
    await shot(page, 'desktop-tasks-all');
  });

  await step('wizard first step: axe', async () => {
    await page.goto(`${P.url}#/new`);
    await page.locator('#step-title', { hasText: 'Task' }).waitFor();
    await shot(page, 'desktop-wizard');
    return axe(page, 'wizard');
  });

  await step('sign out forgets the token', async () => {
    await page.click('#signout');
    await page.waitForURL(/#\/signin$/);
    if (await page.evaluate(() => sessionStorage.getItem('dth.token'))) throw new Error('token kept after sign-out');
    await page.goto(`${P.url}#/agent`);
    await page.waitForURL(/#\/signin$/);
  });
  await desk.close();

  // Phone width: every page readable without sideways scrolling.
  const phone = await newContext(browser, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const pp = await phone.newPage();
  await step('phone 390x844: every page fits', async () => {
    await pp.goto(P.url);
    await pp.waitForURL(/#\/signin$/);
    await noOverflow(pp);
    await shot(pp, 'phone-signin');
    await signIn(pp);
    await pp.locator(`tr[data-task="${taskA}"]`).waitFor();
    await noOverflow(pp);
    await shot(pp, 'phone-tasks');
    await openTask(pp, taskA);
    await pp.locator('.chart-summary', { hasText: 'copied' }).waitFor();
    await noOverflow(pp);
    await shot(pp, 'phone-task-detail');
    await pp.goto(`${P.url}#/new`);
    await pp.locator('#step-title', { hasText: 'Task' }).waitFor();
    await noOverflow(pp);
    await shot(pp, 'phone-wizard');
    await pp.goto(`${P.url}#/agent`);
    await pp.locator('h1', { hasText: 'Agent' }).waitFor();
    await noOverflow(pp);
    await shot(pp, 'phone-agent');
    await axe(pp, 'phone-agent');
  });
  await phone.close();
} catch (e) {
  fail('unexpected', e.stack);
}
await browser.close();

consoleErrors.length ? fail('no console errors', `\n  ${[...new Set(consoleErrors)].join('\n  ')}`) : pass('no console errors');
httpErrors.length ? fail('no unexpected HTTP errors', `\n  ${[...new Set(httpErrors)].join('\n  ')}`) : pass('no unexpected HTTP errors', `(${seen4xx.length} expected 4xx)`);
foreign.length ? fail('no requests off the agent', `\n  ${[...new Set(foreign)].join('\n  ')}`) : pass('no requests off the agent');
console.log(`AXE ${JSON.stringify(axeResults)}`);
console.log(`${failed ? 'FAILED' : 'ALL PASSED'}: ${failed} failure(s)`);
process.exit(failed ? 1 : 0);
