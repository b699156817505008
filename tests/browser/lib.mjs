// What every browser test needs: Debian's chromium under Playwright, kept on loopback,
// axe-core, and a record of what went wrong so a run reports every failure at once.
//
// The packages live in target/test-tools/node (installed by tests/setup); the Rust test
// points NODE_PATH there, which `require` honours and `import` does not.

import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'

const require = createRequire(import.meta.url)
const { chromium } = require('playwright-core')
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')

/**
 * The WCAG 2.0, 2.1 and 2.2 level A and AA rules, and axe's best practices (heading
 * order, landmarks), which the pages meet too and should go on meeting.
 */
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']

// Without the background-networking flags chromium keeps calling home, which fails on a
// closed network and slows every test down.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

export async function launch () {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS
  })
}

/** Failures collected over a run; the run exits non-zero if there are any. */
export class Report {
  constructor ({ quiet = false } = {}) {
    this.failures = []
    this.started = Date.now()
    this.quiet = quiet
  }

  step (text) {
    if (!this.quiet) {
      console.log(`[${((Date.now() - this.started) / 1000).toFixed(1)}s] ${text}`)
    }
  }

  fail (text) {
    this.failures.push(text)
    if (!this.quiet) {
      console.log(`  FAILED: ${text}`)
    }
  }

  check (condition, text) {
    if (!condition) {
      this.fail(text)
    }
    return condition
  }

  equal (actual, expected, text) {
    return this.check(
      JSON.stringify(actual) === JSON.stringify(expected),
      `${text}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`
    )
  }

  finish () {
    const seconds = ((Date.now() - this.started) / 1000).toFixed(1)
    if (this.failures.length) {
      console.log(`\n${this.failures.length} failure(s) in ${seconds}s:`)
      for (const failure of this.failures) {
        console.log(`- ${failure}`)
      }
      return 1
    }
    console.log(`\nall browser checks passed in ${seconds}s`)
    return 0
  }
}

/**
 * A browser context that can reach only the server under test: every request to another
 * host (the NHS.UK stylesheet names a web font on the NHS font host) is refused before it
 * leaves the machine. Console errors and uncaught exceptions become failures.
 */
export async function newContext (browser, report, baseURL, options = {}) {
  const allowed = new URL(baseURL).host
  const context = await browser.newContext({ baseURL, ...options })
  const blocked = new Set()
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url())
    if (url.host === allowed) {
      return route.continue()
    }
    blocked.add(url.href)
    return route.abort('blockedbyclient')
  })
  context.on('page', (page) => watchPage(page, report, blocked))
  context.on('close', () => {
    const hosts = [...new Set([...blocked].map((href) => new URL(href).host))]
    report.step(`requests refused (other hosts): ${hosts.length ? hosts.join(', ') : 'none'}`)
  })
  return context
}

function watchPage (page, report, blocked) {
  page.on('pageerror', (error) => report.fail(`script error on ${page.url()}: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() !== 'error') {
      return
    }
    // The refused font requests are expected; anything else (a CSP violation, a failed
    // fetch from our scripts) is a fault.
    const source = message.location()?.url ?? ''
    if (blocked.has(source) || /ERR_BLOCKED_BY_CLIENT/.test(message.text())) {
      return
    }
    // Status codes the test asks for on purpose are logged as failed loads: 404 and 410
    // pages, forms sent back with errors (400) or with a conflict to settle (409), the
    // editor's upload refusing a file, and an autosave told someone saved first (409).
    const status = message.text().match(/the server responded with a status of (\d+)/)?.[1]
    const expected = source === page.url()
      ? ['400', '404', '409', '410']
      : source.endsWith('/media') ? ['400'] : source.endsWith('/autosave') ? ['409'] : []
    if (expected.includes(status)) {
      return
    }
    report.fail(`console error on ${page.url()}: ${message.text()} (${source})`)
  })
}

function describe (result) {
  const nodes = result.nodes
    .map((node) => `    ${node.target.join(' ')}\n      ${node.html}\n      ${(node.failureSummary ?? '').replace(/\n/g, '\n      ')}`)
    .join('\n')
  return `${result.id} [${result.impact}] ${result.help}\n${nodes}`
}

/**
 * Runs axe-core on the page as it is now; each violation is a failure. With AXE_REVIEW=1
 * in the environment it also prints, without failing, what axe could not decide, for a
 * person to judge.
 */
export async function checkAccessibility (page, report, name) {
  await page.evaluate(axeSource)
  const results = await page.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }),
    AXE_TAGS
  )
  for (const violation of results.violations) {
    report.fail(`axe on ${name} (${page.url()}): ${describe(violation)}`)
  }
  report.step(`axe: ${name}: ${results.violations.length} violation(s)`)
  if (process.env.AXE_REVIEW) {
    for (const finding of results.incomplete) {
      console.log(`  to review on ${name}: ${describe(finding)}`)
    }
  }
  return results.violations
}

/**
 * Opens `path`, expects a 200 and checks it with axe on a desktop and on a phone.
 */
export async function checkPage (page, report, path, name) {
  report.step(name)
  const response = await page.goto(path)
  report.equal(response.status(), 200, `status of ${name}`)
  await checkAccessibility(page, report, name)
  await page.setViewportSize({ width: 375, height: 740 })
  await checkAccessibility(page, report, `${name}, on a phone`)
  await page.setViewportSize({ width: 1280, height: 720 })
}
