// The fediverse pages in a real browser, checked by axe-core on a desktop and a phone:
// a post with replies, likes and boosts; the team's reply moderation, followers and
// fediverse settings; the admin's blocks, failed deliveries and reports.
//
// node tests/browser/fediverse.mjs --base-url http://127.0.0.1:PORT --username jane
//   --password ... --post-path /@ceo/...
// The Rust test tests/e2e/federation/browser.rs seeds the server and runs this.

import { parseArgs } from 'node:util'

import { Report, checkAccessibility, launch, newContext } from './lib.mjs'

const { values: args } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    'post-path': { type: 'string' }
  }
})
for (const required of ['base-url', 'username', 'password', 'post-path']) {
  if (!args[required]) {
    console.error(`missing --${required}`)
    process.exit(2)
  }
}

const WIDE = { width: 1280, height: 720 }
const NARROW = { width: 375, height: 740 }

const report = new Report()
const browser = await launch()

async function checkPage (page, path, name) {
  report.step(name)
  const response = await page.goto(path)
  report.equal(response.status(), 200, `status of ${name}`)
  await checkAccessibility(page, report, name)
  await page.setViewportSize(NARROW)
  await checkAccessibility(page, report, `${name}, on a phone`)
  await page.setViewportSize(WIDE)
}

try {
  const context = await newContext(browser, report, args['base-url'])
  context.setDefaultTimeout(10_000)
  const page = await context.newPage()

  await checkPage(page, args['post-path'], 'post with replies')
  report.check(
    (await page.locator('.rounds-conversation').innerText()).includes('1 like'),
    'the post page counts likes'
  )
  await page.locator('.rounds-conversation details summary').first().click()
  await checkAccessibility(page, report, 'post with a content warning opened')

  await page.goto('/login')
  await page.getByLabel('Username or email address').fill(args.username)
  await page.getByLabel('Password').fill(args.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL('**/dashboard**')

  await checkPage(page, '/dashboard/@ceo/replies', 'replies waiting for moderation')
  await checkPage(page, '/dashboard/@ceo/replies?show=approved', 'shown replies with the answer form')
  await checkPage(page, '/dashboard/@ceo/replies?show=removed', 'rejected and hidden replies')
  await checkPage(page, '/dashboard/@ceo/followers', 'followers and follow requests')
  await checkPage(page, '/dashboard/@ceo/fediverse', 'fediverse settings')
  await checkPage(page, '/dashboard/admin/fediverse', 'instance fediverse moderation')

  // Approving from the queue works with a click.
  await page.goto('/dashboard/@ceo/replies')
  await page.getByRole('button', { name: /^Approve/ }).first().click()
  await page.waitForURL('**done=approved')
  report.check(
    (await page.locator('.nhsuk-notification-banner').innerText()).includes('Reply approved'),
    'approving says so'
  )
  await context.close()
} catch (error) {
  report.fail(`unexpected error: ${error.stack || error}`)
} finally {
  await browser.close()
}
process.exit(report.finish())
