// The editorial workflow in a real browser: two people open the same draft and each
// sees the other there; they change the same words, and the second settles the clash on
// the conflict screen; the owner approves; axe-core finds nothing wrong on the editor,
// conflict screen, history, diff, review, previews, team, audit log and freeze pages.
//
// node tests/browser/editorial.mjs --base-url http://127.0.0.1:PORT --password ...
//   --post-id N [--screenshots DIR]
// The Rust test in tests/e2e/browser.rs seeds the server (owner jane, editor ed, admin
// root, a draft by ed) and runs this.

import { parseArgs } from 'node:util'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

import { Report, checkAccessibility, launch, newContext } from './lib.mjs'

const { values: args } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    password: { type: 'string' },
    'post-id': { type: 'string' },
    screenshots: { type: 'string' }
  }
})
for (const required of ['base-url', 'password', 'post-id']) {
  if (!args[required]) {
    console.error(`missing --${required}`)
    process.exit(2)
  }
}

const TIMEOUT_MS = 15_000
const WIDE = { width: 1280, height: 720 }
const NARROW = { width: 375, height: 740 }
const editorPath = `/dashboard/posts/${args['post-id']}`

async function signedIn (username) {
  const context = await newContext(browser, report, args['base-url'])
  context.setDefaultTimeout(TIMEOUT_MS)
  const page = await context.newPage()
  await page.goto('/login')
  await page.getByLabel('Username or email address').fill(username)
  await page.getByLabel('Password').fill(args.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL('**/dashboard**')
  return { context, page }
}

async function checkPage (page, name) {
  await checkAccessibility(page, report, name)
  await page.setViewportSize(NARROW)
  await checkAccessibility(page, report, `${name}, on a phone`)
  await page.setViewportSize(WIDE)
}

async function screenshot (page, name) {
  if (args.screenshots) {
    mkdirSync(args.screenshots, { recursive: true })
    await page.screenshot({ path: join(args.screenshots, `${name}.png`), fullPage: true })
  }
}

async function run () {
  const jane = await signedIn('jane')
  const ed = await signedIn('ed')

  report.step('presence: both open the draft and see each other')
  await jane.page.goto(editorPath)
  await ed.page.goto(editorPath)
  await jane.page.locator('#presence', { hasText: 'Also editing: ed' }).waitFor()
  await ed.page.locator('#presence', { hasText: 'Also editing: jane' }).waitFor()
  report.check(true, 'each sees the other in the editor')
  await checkPage(jane.page, 'editor with someone else present')
  await screenshot(jane.page, 'editor-presence')

  report.step('conflict: both change the same words')
  const janeBody = jane.page.getByRole('textbox', { name: 'Text', exact: true })
  const edBody = ed.page.getByRole('textbox', { name: 'Text', exact: true })
  const original = await janeBody.inputValue()
  await janeBody.fill(original.replace('three parts', 'four parts'))
  // jane's change is autosaved within a second or two.
  await jane.page.locator('#autosave-status', { hasText: 'Saved automatically' }).waitFor()
  await edBody.fill(original.replace('three parts', 'two parts'))
  // ed's editor learns that jane saved first (from its autosave or its presence update).
  await ed.page.locator('#autosave-status', { hasText: 'jane saved a newer version' }).waitFor()
  await ed.page.getByRole('button', { name: 'Save draft' }).click()
  await ed.page.locator('.nhsuk-error-summary__heading', { hasText: 'jane changed the same words' }).waitFor()
  report.check(
    (await ed.page.locator('#version-theirs').innerText()).includes('four parts'),
    'the conflict screen shows jane\'s version'
  )
  report.check(
    (await ed.page.locator('#version-ours').innerText()).includes('two parts'),
    'and ed\'s own, side by side'
  )
  await ed.page.waitForLoadState()
  await checkPage(ed.page, 'conflict screen')
  await screenshot(ed.page, 'conflict')

  report.step('conflict: ed settles it and saves')
  const proposal = await edBody.inputValue()
  report.check(proposal.includes('two parts'), `the form keeps ed's words: ${JSON.stringify(proposal)}`)
  await edBody.fill(proposal.replace('two parts', 'four parts'))
  await ed.page.getByRole('button', { name: 'Save draft' }).click()
  await ed.page.waitForURL(`**${editorPath}?done=saved`)
  report.equal(await edBody.inputValue(), original.replace('three parts', 'four parts'), 'the settled text is saved')

  report.step('review: the owner approves')
  await jane.page.goto(`${editorPath}/review`)
  await checkPage(jane.page, 'review page')
  await screenshot(jane.page, 'review')
  await jane.page.getByRole('button', { name: /^Approve revision/ }).click()
  await jane.page.waitForURL('**/review?done=approved')
  report.check(
    (await jane.page.locator('.nhsuk-notification-banner').innerText()).includes('Approved'),
    'the review page says it is approved'
  )
  report.check(
    (await jane.page.locator('main').innerText()).includes('Approved by jane'),
    'the sign-off names the owner'
  )
  await checkPage(jane.page, 'review page, approved')

  report.step('history and diff')
  await jane.page.getByRole('link', { name: 'History' }).click()
  await jane.page.waitForURL('**/history')
  await checkPage(jane.page, 'history')
  await jane.page.getByRole('button', { name: 'Compare' }).click()
  await jane.page.waitForURL('**/diff?**')
  report.check(await jane.page.locator('.rounds-diff__text ins, .rounds-diff__text del').count() > 0, 'the diff marks words added and removed')
  await checkPage(jane.page, 'diff')
  await screenshot(jane.page, 'diff')

  report.step('previews and team')
  for (const kind of ['web', 'mastodon', 'email']) {
    await jane.page.goto(`${editorPath}/preview/${kind}`)
    await checkPage(jane.page, `${kind} preview`)
  }
  await jane.page.goto('/dashboard/@ceo/team')
  await checkPage(jane.page, 'team')
  await jane.page.goto('/dashboard/@ceo')
  await checkPage(jane.page, 'post list with stages')

  await ed.context.close()
  await jane.context.close()

  report.step('administrators: audit log and freeze')
  const root = await signedIn('root')
  await root.page.goto('/dashboard/admin/audit')
  await checkPage(root.page, 'audit log')
  await root.page.getByRole('button', { name: 'Check the log has not been changed' }).click()
  await root.page.locator('.nhsuk-notification-banner', { hasText: 'intact' }).waitFor()
  await checkPage(root.page, 'audit log, verified')
  await root.page.goto('/dashboard/admin/freeze')
  await checkPage(root.page, 'publishing freeze')
  await root.page.getByLabel('Message everyone on the team will see').fill('Pre-election period until 8 May.')
  await root.page.getByRole('button', { name: 'Freeze publishing' }).click()
  await root.page.waitForURL('**/admin/freeze?done=started')
  await checkPage(root.page, 'publishing freeze, in force')
  await root.page.getByRole('button', { name: 'Lift the freeze' }).click()
  await root.page.waitForURL('**/admin/freeze?done=lifted')
  await root.context.close()
}

// Last, so that every declaration above exists when the run starts.
const report = new Report()
const browser = await launch()
let status = 1
try {
  await run()
  status = report.finish()
} catch (error) {
  report.fail(`stopped early: ${error.stack ?? error}`)
  status = report.finish()
} finally {
  await browser.close()
}
process.exit(status)
