// The admin dashboard in a real browser: Debian's chromium, driven by playwright-core, against
// the real splitgate binary on 127.0.0.1 (port 0). An operator signs in, sees both variants and
// their weights, moves the challenger to 30% through the dry-run preview and a confirm, and the
// config file and the live split follow; then rolls back with a reason. Any console error fails
// the test (one expected 409 in the stale-version check at the end is the only exception).
// A full-page screenshot goes to target/browser/dashboard.png.
//
//   SPLITGATE_BIN=target/debug/splitgate node --test tests/browser/dashboard.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(ROOT, process.env.SPLITGATE_BIN || 'target/debug/splitgate');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOT_DIR = path.join(ROOT, 'target', 'browser');
const TOKEN = 'ops-token';
const KEY = 'splitgate-demo-key';
const sha = (s) => createHash('sha256').update(s).digest('hex');

const CONFIG = `
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[[auth.keys]]
name = "demo"
sha256 = "${sha(KEY)}"

[[admin.tokens]]
name = "ops"
sha256 = "${sha(TOKEN)}"

[models.rec-v2-2]
version = "v2.2.0"
backend = "builtin"

[models.rec-v2-3]
version = "v2.3.0"
backend = "builtin"

[models.rec-v2-4]
version = "v2.4.0"
backend = "builtin"

[split]
salt = "rec-2026-11"

[[split.variants]]
name = "champion"
model = "rec-v2-2"
weight = 90
champion = true

[[split.variants]]
name = "challenger"
model = "rec-v2-3"
weight = 10

[[shadow]]
model = "rec-v2-4"
sample_percent = 50

[guard]
min_requests = 50

[guard.ramp]
steps = [10, 50, 100]
hold = "15m"
`;

/** Polls `check` until it returns a truthy value (every 100 ms, at most `ms`). */
async function until(what, ms, check) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`after ${ms} ms, ${what}: ${last}`);
}

function startProxy(dir) {
  const config = path.join(dir, 'splitgate.toml');
  fs.writeFileSync(config, CONFIG);
  const env = { ...process.env, SPLITGATE_LOG: 'info' };
  delete env.SPLITGATE_CONFIG;
  delete env.SPLITGATE_ADMIN_TOKEN;
  const child = spawn(BIN, ['serve', '--config', config, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {
    env, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const ready = until('splitgate did not start', 20_000, () => {
    if (child.exitCode !== null) throw new Error(`splitgate exited ${child.exitCode}: ${stderr}`);
    const m = stderr.match(/splitgate listening addr=(\S+) admin_addr=(\S+)/);
    return m && { main: `http://${m[1]}`, admin: `http://${m[2]}` };
  });
  return { child, config, ready, log: () => stderr };
}

async function recommend(main, user) {
  const r = await fetch(`${main}/recommend`, {
    method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify({ user_id: user }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return r.headers.get('x-splitgate-variant');
}

/** The share of `n` users (ids PREFIX-i) the live split sends to the challenger. */
async function challengerShare(main, prefix, n) {
  let hits = 0;
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => recommend(main, `${prefix}-${i + j}`)));
    hits += batch.filter((v) => v === 'challenger').length;
  }
  return hits / n;
}

async function adminApi(admin, method, route, body) {
  const r = await fetch(admin + route, {
    method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

const challengerWeight = (text) => {
  const m = text.match(/name = "challenger"[^[]*?weight = ([0-9.]+)/);
  return m && Number(m[1]);
};

test('an operator ramps and rolls back from the dashboard', { timeout: 240_000 }, async () => {
  assert.ok(fs.existsSync(BIN), `no splitgate binary at ${BIN} (cargo build first, or set SPLITGATE_BIN)`);
  assert.ok(fs.existsSync(CHROMIUM), `no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'splitgate-ui-'));
  const proxy = startProxy(dir);
  let browser;
  try {
    const { main, admin } = await proxy.ready;
    // An hour's worth of buckets for the dry run to estimate from, and some feedback.
    assert.ok(Math.abs((await challengerShare(main, 'warm', 400)) - 0.1) < 0.05);
    for (let i = 0; i < 40; i += 1) {
      const r = await fetch(`${main}/feedback`, {
        method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ user_id: `warm-${i}`, item_id: 'i1', event: 'click' }),
      });
      assert.equal(r.status, 202);
    }

    // The data routes stay behind the token; the page itself carries none.
    for (const route of ['/admin/status', '/admin/series', '/admin/guard']) {
      assert.equal((await fetch(admin + route)).status, 401, route);
    }

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      chromiumSandbox: false,
      args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    const page = await context.newPage();
    const errors = [];
    let allow409 = false;
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (allow409 && /status of 409/.test(m.text())) return;
      errors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));

    const response = await page.goto(admin + '/');
    const h = response.headers();
    assert.equal(h['x-frame-options'], 'DENY');
    assert.equal(h['referrer-policy'], 'no-referrer');
    assert.match(h['content-security-policy'], /script-src 'self'/);
    assert.doesNotMatch(h['content-security-policy'], /unsafe-inline/);

    // Without a token: only the login box.
    await page.locator('#login').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#dash').isVisible(), false);
    await page.fill('#token', TOKEN);
    await page.click('#login-button');

    // Both variants with their weights, in the table and the bar.
    const row = (v) => page.locator(`#variants tbody tr[data-variant="${v}"]`);
    await row('challenger').waitFor();
    assert.equal(await row('champion').locator('td.weight').textContent(), '90%');
    assert.equal(await row('challenger').locator('td.weight').textContent(), '10%');
    assert.match(await row('champion').textContent(), /champion.*rec-v2-2.*v2\.2\.0/);
    assert.match(await page.locator('#split-bar .seg[data-variant="challenger"]').textContent(), /challenger 10%/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('splitgate.admin_token')), TOKEN);
    assert.equal(await page.evaluate(() => document.cookie), '', 'no cookies');

    // Challenger to 30%: the dry-run preview first, nothing changes until the confirm.
    await page.selectOption('#weight-variant', 'challenger');
    await page.fill('#weight-value', '30');
    await page.fill('#weight-reason', 'browser test: ramp to 30');
    await page.click('#preview');
    await page.locator('#preview-box').waitFor({ state: 'visible' });
    const previewText = await page.locator('#preview-text').textContent();
    assert.match(previewText, /challenger: 10% → 30%/);
    assert.match(previewText, /of the last hour's traffic would move/);
    assert.equal(challengerWeight(fs.readFileSync(proxy.config, 'utf8')), 10, 'a preview writes nothing');
    await page.click('#confirm');
    await until('the table shows 30%', 10_000, async () => (await row('challenger').locator('td.weight').textContent()) === '30%');
    assert.match(await page.locator('#action-result').textContent(), /Applied: version 1 → 2/);
    assert.equal(challengerWeight(fs.readFileSync(proxy.config, 'utf8')), 30, 'the config file changed');
    const share = await challengerShare(main, 'after-ramp', 1000);
    assert.ok(Math.abs(share - 0.3) < 0.05, `the live split moved to 30%: ${share}`);

    // The sparklines need one 10 s point; wait for it so the screenshot shows them
    // (SCREENSHOT_POINTS=6 makes the README's picture: a minute of traffic).
    const points = Number(process.env.SCREENSHOT_POINTS || 1);
    await until(`${points} series point(s)`, 15_000 + points * 11_000, async () => {
      if (points > 1) await challengerShare(main, `spark-${Date.now()}`, 100);
      const s = await adminApi(admin, 'GET', '/admin/series');
      return s.body.variants.every((v) => v.points.length >= points);
    });
    await until('the page draws the sparklines', 15_000, async () => (await page.locator('#sparklines circle').count()) >= 8);
    await page.locator('#guard tr[data-trigger="error_rate"]').first().waitFor();
    fs.mkdirSync(SHOT_DIR, { recursive: true });
    await page.screenshot({ path: path.join(SHOT_DIR, 'dashboard.png'), fullPage: true });

    // Roll back with a reason.
    await page.fill('#rollback-reason', 'browser test: roll back');
    await page.click('#rollback');
    await until('the table shows 0%', 10_000, async () => (await row('challenger').locator('td.weight').textContent()) === '0%');
    assert.equal(challengerWeight(fs.readFileSync(proxy.config, 'utf8')), 0);
    await until('the guard card shows the rollback', 10_000, async () => /browser test: roll back/.test(await page.locator('#last-rollback').textContent()));
    assert.match(await page.locator('#audit').textContent(), /rollback.*browser test: roll back/s);
    assert.ok((await challengerShare(main, 'after-rollback', 200)) === 0, 'nobody is sent to the challenger');

    await page.screenshot({ path: path.join(SHOT_DIR, 'dashboard-rolled-back.png'), fullPage: true });
    assert.deepEqual(errors, [], 'no console errors');

    // A stale page: someone else changes the config between the preview and the confirm. The
    // 409 is shown clearly and the page reloads the live config.
    await page.selectOption('#weight-variant', 'challenger');
    await page.fill('#weight-value', '20');
    await page.click('#preview');
    await page.locator('#preview-box').waitFor({ state: 'visible' });
    const meanwhile = await adminApi(admin, 'PUT', '/admin/weights', { challenger: 5, reason: 'someone else' });
    assert.equal(meanwhile.status, 200, JSON.stringify(meanwhile.body));
    allow409 = true;
    await page.click('#confirm');
    await page.locator('#banner').waitFor({ state: 'visible' });
    assert.match(await page.locator('#banner').textContent(), /Not applied.*config changed/);
    await until('the page reloaded the live 5%', 10_000, async () => (await row('challenger').locator('td.weight').textContent()) === '5%');
    assert.equal(challengerWeight(fs.readFileSync(proxy.config, 'utf8')), 5, 'the stale change was not written');
    await page.screenshot({ path: path.join(SHOT_DIR, 'dashboard-conflict.png'), fullPage: false });

    // Signing out forgets the token.
    await page.click('#logout');
    await page.locator('#login').waitFor({ state: 'visible' });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('splitgate.admin_token')), null);
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    if (browser) await browser.close();
    proxy.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
