// The newsletter's pages in a real browser, checked by axe-core on a desktop and a phone:
// the subscribe form, the confirmation page, the preferences page, the one-click
// unsubscribe confirmation, and the editors' subscribers page.
//
// node tests/browser/newsletter.mjs --base-url http://127.0.0.1:PORT --username jane
//   --password ... --confirm-path ... --preferences-path ... --unsubscribe-path ...
// The Rust test tests/e2e/browser.rs seeds the server and runs this.

import { parseArgs } from 'node:util'

import { Report, checkPage, launch, newContext } from './lib.mjs'

const required = ['base-url', 'username', 'password', 'confirm-path', 'preferences-path', 'unsubscribe-path']
const { values: args } = parseArgs({
  options: Object.fromEntries(required.map(name => [name, { type: 'string' }]))
})
for (const name of required) {
  if (!args[name]) {
    console.error(`missing --${name}`)
    process.exit(2)
  }
}

const report = new Report()
const browser = await launch()

try {
  const context = await newContext(browser, report, args['base-url'])
  context.setDefaultTimeout(10_000)
  const page = await context.newPage()

  await checkPage(page, report, '/subscribe', 'subscribe form')
  await checkPage(page, report, args['confirm-path'], 'confirm a subscription')
  await checkPage(page, report, args['preferences-path'], 'preferences')
  await checkPage(page, report, args['unsubscribe-path'], 'one-click unsubscribe confirmation')

  await page.goto('/login')
  await page.getByLabel('Username or email address').fill(args.username)
  await page.getByLabel('Password').fill(args.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL('**/dashboard**')
  await checkPage(page, report, '/dashboard/@ceo/subscribers', 'subscribers')
  await context.close()
} catch (error) {
  report.fail(`unexpected error: ${error.stack || error}`)
} finally {
  await browser.close()
}
process.exit(report.finish())
